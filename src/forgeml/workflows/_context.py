"""``Context``: the workspace a use case acts on and the principal acting; the access check
every use case starts with."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from forgeml.errors import InputError
from forgeml.security import Principal, authorize
from forgeml.store import Workspace, acting

__all__ = ["Context", "use_case"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Context:
    """What every use case is given: where it acts and who acts.

    Interfaces build one per request or command (the CLI from its settings and API key, the
    server from the authenticated caller, the loop as itself) and pass it in; no use case
    reads the acting user from anywhere else.

    Attributes:
        workspace: the stores the use case reads and writes.
        principal: who acts; recorded on every change the use case makes. When access
            control is on, a principal from ``security.authenticate`` (an API key).
        origin: where the request came from, for the audit log (``cli``, ``http:10.0.0.7``,
            ``python``).
    """

    workspace: Workspace
    principal: Principal
    origin: str = "python"

    def __post_init__(self) -> None:
        if not isinstance(self.workspace, Workspace):
            raise InputError(
                f"Context.workspace is a Workspace; got {type(self.workspace).__name__}"
            )
        if not isinstance(self.principal, Principal):
            raise InputError(
                f"Context.principal is a Principal; got {type(self.principal).__name__}"
            )

    def authorize(self, action: str, *, model: str | None = None, alias: str | None = None) -> None:
        """Check that the principal may do ``action`` (see ``security.authorize``)."""
        authorize(self.workspace, self.principal, action, model=model, alias=alias)

    @contextmanager
    def acting(self) -> Iterator[None]:
        """Changes made in this block are audited as the principal's, from ``origin``."""
        with acting(self.principal.name, self.principal.kind, self.origin):
            yield


def use_case(
    action: str,
) -> Callable[[Callable[Concatenate[Context, P], R]], Callable[Concatenate[Context, P], R]]:
    """Make a use case check ``action`` (the written matrix) before it runs, and audit what it
    changes as the context's principal."""

    def decorate(fn: Callable[Concatenate[Context, P], R]) -> Callable[Concatenate[Context, P], R]:
        @functools.wraps(fn)
        def run(ctx: Context, *args: P.args, **kwargs: P.kwargs) -> R:
            if not isinstance(ctx, Context):
                raise InputError(f"A use case takes a Context first; got {type(ctx).__name__}")
            ctx.authorize(action)
            with ctx.acting():
                return fn(ctx, *args, **kwargs)

        run.action = action  # type: ignore[attr-defined]
        return run

    return decorate
