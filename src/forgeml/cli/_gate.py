"""The access check of every command, before it runs: the command's action in the written
matrix (``security.CLI_COMMANDS``), the API key of the invocation, the role it has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forgeml.config import Settings
from forgeml.errors import InputError
from forgeml.security import (
    CLI_COMMANDS,
    PUBLIC,
    Principal,
    access_control_on,
    authenticate,
    authorize,
)

__all__ = ["command_path", "gate"]

#: The action of a command missing from the matrix: only an admin may run it.
_UNLISTED = "workspace.admin"


def command_path(command: Any, args: Sequence[str]) -> tuple[str | None, dict[str, Any]]:
    """The command ``args`` run (``models promote``) and the root options they give.

    Returns ``(None, ...)`` when the arguments ask for help or name no command (the command
    line then prints its usage, which needs no key).
    """
    if any(a in ("--help", "-h") for a in args):
        return None, {}
    try:
        ctx = command.make_context("forgeml", list(args), resilient_parsing=True)
    except Exception:
        return None, {}
    protected = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None)
    rest = [*(protected or []), *ctx.args]
    path: list[str] = []
    node = command
    while rest and hasattr(node, "get_command"):
        name = rest.pop(0)
        node = node.get_command(ctx, name)
        if node is None:
            return None, {}
        path.append(name)
    if hasattr(node, "get_command") or not path:
        return None, {}
    return " ".join(path), dict(ctx.params)


def gate(settings: Settings, path: str) -> Principal:
    """Who runs command ``path``, after checking they may.

    Without any key in the workspace (the embedded default) that is the local user, unchecked.
    With access control on, the invocation's API key decides, by its role.

    Raises:
        AuthenticationError: access control is on and no valid key was given.
        PermissionDeniedError: the key's role may not run the command.
        InputError: the key file cannot be read.
    """
    from forgeml.store import Workspace, acting

    action = CLI_COMMANDS.get(path, _UNLISTED)
    local = Principal.from_settings(settings)
    if action == PUBLIC:
        return local
    try:
        key = settings.api_key_value()
    except OSError as e:
        raise InputError(
            f"Cannot read the API key file {settings.api_key_file}: {e.strerror}"
        ) from None
    with acting(local.name, local.kind, "cli"):  # opening creates or upgrades the store
        ws = Workspace(settings)
    with ws:
        principal = authenticate(ws, key) if key is not None else local
        if path == "keys create" and not ws.keys.any():
            return principal  # the first key bootstraps access control
        if not access_control_on(ws) and key is None:
            return local
        return authorize(ws, principal, action)
