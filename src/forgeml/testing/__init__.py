"""Test helpers shipped with forgeml so that back ends and plugins can reuse the contract suites.

``store_url(backend)`` yields an isolated metadata store URL: a SQLite file in a temporary
folder, or a fresh schema on a PostgreSQL server (dropped afterwards).
"""

from forgeml.testing._stores import (
    DEFAULT_POSTGRES_URL,
    isolated_postgres_url,
    postgres_unavailable_reason,
)

__all__ = ["DEFAULT_POSTGRES_URL", "isolated_postgres_url", "postgres_unavailable_reason"]
