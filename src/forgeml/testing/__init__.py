"""Test helpers shipped with forgeml so that back ends and plugins can reuse the contract suites.

``store_url(backend)`` yields an isolated metadata store URL: a SQLite file in a temporary
folder, or a fresh schema on a PostgreSQL server (dropped afterwards). ``admin_token(ws)`` is
an admin key for a workspace where access control is on (every PostgreSQL store), else None.
"""

from forgeml.testing._access import admin_token, auth_headers
from forgeml.testing._stores import (
    DEFAULT_POSTGRES_URL,
    isolated_postgres_url,
    postgres_unavailable_reason,
)

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "admin_token",
    "auth_headers",
    "isolated_postgres_url",
    "postgres_unavailable_reason",
]
