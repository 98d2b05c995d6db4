"""Access checks: is access control on, and may this principal do this action.

Access control is on in a workspace once its first key exists (keys are never deleted, so it
stays on), and always on a PostgreSQL store (team mode). Off, the embedded single-user default,
nothing is checked and changes are recorded as the local user.
"""

from __future__ import annotations

from forgeml.errors import AuthenticationError, PermissionDeniedError
from forgeml.security._keys import INVALID_KEY, principal_for
from forgeml.security._matrix import ACTIONS, allowed
from forgeml.security._principal import Principal
from forgeml.store import Workspace, now_ms

__all__ = ["NEED_KEY", "access_control_on", "authorize", "check_alias_guard"]

NEED_KEY = (
    "Access control is on in this workspace: present an API key (FORGEML_API_KEY, "
    "FORGEML_API_KEY_FILE or --api-key)"
)


def access_control_on(workspace: Workspace) -> bool:
    """Whether keys are required: a PostgreSQL store, or any key was ever created."""
    return workspace.db.dialect == "postgresql" or workspace.keys.any()


def authorize(
    workspace: Workspace,
    principal: Principal,
    action: str,
    *,
    model: str | None = None,
    alias: str | None = None,
) -> Principal:
    """Check that ``principal`` may do ``action`` (on ``model@alias`` for alias moves).

    Returns:
        The principal, with its key's stored role when it has a key.

    Raises:
        AuthenticationError: access control is on and the principal has no active key.
        PermissionDeniedError: its role may not do the action, or an alias guard excludes it.
    """
    spec = ACTIONS[action]
    if not spec.roles or not access_control_on(workspace):
        return principal
    if principal.key_id is None:
        raise AuthenticationError(NEED_KEY)
    record = workspace.keys.get(principal.key_id)
    if record is None or record.state(now_ms()) != "active":
        raise AuthenticationError(INVALID_KEY)
    acting = principal_for(record)
    if not allowed(record.role, action):
        roles = ", ".join(spec.roles)
        raise PermissionDeniedError(
            f"Key {record.name!r} (role {record.role}) may not {spec.description}; "
            f"that needs the role {roles}"
        )
    if model is not None and alias is not None:
        check_alias_guard(workspace, acting, model, alias)
    return acting


def check_alias_guard(workspace: Workspace, principal: Principal, model: str, alias: str) -> None:
    """Refuse to move ``model@alias`` when a guard on it excludes ``principal``.

    Raises:
        PermissionDeniedError: a guard names neither the principal's role nor its name.
    """
    for guard in workspace.guards.guards_for(model, alias):
        if principal.role in guard.roles or principal.name in guard.principals:
            continue
        who = [f"role {r}" for r in guard.roles] + [repr(p) for p in guard.principals]
        raise PermissionDeniedError(
            f"{model}@{alias} is protected: only {', '.join(who) or 'nobody'} may move it"
        )
