"""Use cases over registered models: promote, remove an alias, change a version's status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forgeml.store import ModelEvent, ModelStatus, ModelVersionRecord
from forgeml.workflows._context import Context, use_case

__all__ = ["change_status", "promote", "remove_alias"]


@use_case("alias.move")
def promote(
    ctx: Context,
    name: str,
    version: int,
    *,
    alias: str = "production",
    reason: str | None = None,
    route: Mapping[str, Any] | None = None,
) -> ModelEvent:
    """Point ``NAME@ALIAS`` at ``version``, recorded as done by ``ctx.principal``.

    With ``route``, the model's traffic route is stored in the same transaction: both
    happen or neither does (a promotion that also ends a canary, say).

    Args:
        ctx: where and who.
        name: the model.
        version: the version number the alias will name.
        alias: the alias to move (``production``, ``staging``...).
        reason: why, kept in the model's history.
        route: a route to store with the promotion (see ``set_route``); its aliases are
            resolved after the alias moved.

    Returns:
        The recorded alias event (``from_version``, ``to_version``, ``actor``...).

    Raises:
        InputError: an invalid alias or version number.
        NotFoundError: no such model or version.
        ConflictError: the version is retired.
        PermissionDeniedError: the principal's role may not move aliases, or a guard on
            ``NAME@ALIAS`` excludes it.
    """
    from forgeml import registry

    ctx.authorize("alias.move", model=name, alias=alias)
    if route is None:
        return registry.promote(
            name, version, alias=alias, reason=reason, workspace=ctx.workspace, actor=ctx.principal
        )
    from forgeml.workflows._routes import set_route

    with ctx.workspace.unit_of_work():
        event = registry.promote(
            name, version, alias=alias, reason=reason, workspace=ctx.workspace, actor=ctx.principal
        )
        set_route(ctx, name, route)
    return event


@use_case("alias.move")
def remove_alias(ctx: Context, name: str, alias: str, *, reason: str | None = None) -> ModelEvent:
    """Remove ``NAME@ALIAS``, recorded as done by ``ctx.principal``.

    Raises:
        InputError: an invalid alias.
        NotFoundError: no such model or alias.
    """
    from forgeml import registry

    ctx.authorize("alias.move", model=name, alias=alias)
    return registry.remove_alias(
        name, alias, reason=reason, workspace=ctx.workspace, actor=ctx.principal
    )


@use_case("model.status")
def change_status(
    ctx: Context,
    name: str,
    version: int,
    status: ModelStatus | str,
    *,
    reason: str | None = None,
) -> ModelVersionRecord:
    """Archive, restore (``active``) or retire a version, recorded as done by ``ctx.principal``.

    Raises:
        InputError: an unknown status or invalid version number.
        NotFoundError: no such model or version.
        ConflictError: the change is not allowed (a retired version stays retired).
    """
    from forgeml import registry
    from forgeml.errors import InputError

    try:
        wanted = ModelStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in ModelStatus)
        raise InputError(f"status is one of {known}; got {status!r}") from None
    action = {
        ModelStatus.ACTIVE: registry.restore,
        ModelStatus.ARCHIVED: registry.archive,
        ModelStatus.RETIRED: registry.retire,
    }[wanted]
    return action(name, version, reason=reason, workspace=ctx.workspace, actor=ctx.principal)
