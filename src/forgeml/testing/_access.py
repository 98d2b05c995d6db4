"""An API key for tests that act on a workspace where access control may be on."""

from __future__ import annotations

import threading

from forgeml.store import Workspace

_lock = threading.Lock()
_tokens: dict[str, str] = {}


def admin_token(workspace: Workspace) -> str | None:
    """An admin key's token for ``workspace``, or None where access control is off.

    Access control is on in every PostgreSQL store (team mode) and in any workspace with a key.
    The first call on such a workspace creates its first (admin) key; later calls return the
    same token, so a test and the servers it starts present one key.
    """
    from forgeml.security import access_control_on, create_key

    store = workspace.settings.store_url or str(workspace.home)
    with _lock:
        if store in _tokens:
            return _tokens[store]
        if not access_control_on(workspace):
            return None
        token = create_key(workspace, role="admin", name="test-admin").token
        _tokens[store] = token
        return token


def auth_headers(workspace: Workspace) -> dict[str, str]:
    """The ``Authorization`` header carrying ``admin_token(workspace)``, or no header."""
    token = admin_token(workspace)
    return {"Authorization": f"Bearer {token}"} if token else {}
