"""``Context``: the workspace a use case acts on and the principal acting."""

from __future__ import annotations

from dataclasses import dataclass

from forgeml.errors import InputError
from forgeml.security import Principal
from forgeml.store import Workspace

__all__ = ["Context"]


@dataclass(frozen=True, slots=True)
class Context:
    """What every use case is given: where it acts and who acts.

    Interfaces build one per request or command (the CLI from its settings, the server from
    the authenticated caller, the loop as itself) and pass it in; no use case reads the
    acting user from anywhere else.

    Attributes:
        workspace: the stores the use case reads and writes.
        principal: who acts; recorded on every change the use case makes.
    """

    workspace: Workspace
    principal: Principal

    def __post_init__(self) -> None:
        if not isinstance(self.workspace, Workspace):
            raise InputError(
                f"Context.workspace is a Workspace; got {type(self.workspace).__name__}"
            )
        if not isinstance(self.principal, Principal):
            raise InputError(
                f"Context.principal is a Principal; got {type(self.principal).__name__}"
            )
