"""Test helpers shipped with forgeml so that back ends and plugins can reuse the contract suites.

``store_url(backend)`` yields an isolated metadata store URL: a SQLite file in a temporary
folder, or a fresh schema on a PostgreSQL server (dropped afterwards). ``admin_token(ws)`` is
an admin key for a workspace where access control is on (every PostgreSQL store), else None.
``ServerThread(ws, **options)`` runs a real prediction server (``forgeml.http.create_app``) on
a free port of 127.0.0.1 in a thread, as a context manager.
"""

from forgeml.testing._access import admin_token, auth_headers
from forgeml.testing._server import ServerThread, free_port
from forgeml.testing._stores import (
    DEFAULT_POSTGRES_URL,
    isolated_postgres_url,
    postgres_unavailable_reason,
)

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "ServerThread",
    "admin_token",
    "auth_headers",
    "free_port",
    "isolated_postgres_url",
    "postgres_unavailable_reason",
]
