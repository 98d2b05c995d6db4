"""Use cases over traffic routes: set or clear how a served model splits and shadows traffic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forgeml.errors import InputError, NotFoundError
from forgeml.store import ModelStatus
from forgeml.workflows._context import Context, use_case

__all__ = ["RouteChange", "clear_route", "set_route"]


@dataclass(frozen=True, slots=True)
class RouteChange:
    """A stored route change.

    Attributes:
        model: the served model's name.
        config: the route as stored (split keys are versions or aliases, resolved by each
            server when it rebuilds its table), or ``None`` when the route was cleared.
        revision: the route's revision after the change (it only grows).
        resolved: the route with versions resolved now: ``split`` (version -> share),
            ``shadow``, ``shadow_fraction``, ``sticky``; empty when cleared.
        actor: who changed it.
    """

    model: str
    config: dict[str, Any] | None
    revision: int
    resolved: dict[str, Any]
    actor: str

    def to_dict(self) -> dict[str, Any]:
        """The change as plain values."""
        return {
            "model": self.model,
            "config": self.config,
            "revision": self.revision,
            "actor": self.actor,
            **self.resolved,
        }


@use_case("route.write")
def set_route(ctx: Context, name: str, config: Mapping[str, Any]) -> RouteChange:
    """Store the traffic route of model ``name``; running servers apply it when they next poll.

    The route is validated in full before anything is written: every weight is finite and
    above 0 with a finite sum, and every version or alias it names must exist now and not be
    retired (an alias is resolved again whenever a server rebuilds its table; a server that
    cannot serve a stored route serves the reference it was started with and says so).

    Args:
        ctx: where and who (recorded with the route).
        name: the registered model's name.
        config: ``{"split": {"production": 90, "7": 10}, "shadow": {"version": "staging",
            "fraction": 0.2}, "sticky": true}``.

    Returns:
        The stored change with its revision and the route as resolved now.

    Raises:
        NotFoundError: no model ``name``.
        InputError: the route is malformed, or names a version or alias the model lacks or
            a retired version (the message names the field, e.g. ``route.split['7']``).
    """
    from forgeml.serve._routing import parse_route

    ws = ctx.workspace
    ws.models.get_model(name)  # NotFoundError names the model
    if not isinstance(config, Mapping):
        raise InputError("A route is an object with 'split' and optionally 'shadow' and 'sticky'")

    def resolve(which: str) -> int:
        try:
            record = ws.models.resolve(name, which)
        except NotFoundError as e:
            raise InputError(
                f"The route names {which!r}, which model {name!r} lacks: {e.message}"
            ) from None
        if record.status is ModelStatus.RETIRED:
            raise InputError(f"{record.ref} is retired and cannot be served")
        return int(record.version)

    stored = dict(config)
    # The versions the route names are checked and the route written in one transaction: a
    # version retired in between cannot slip into a stored route.
    with ws.unit_of_work():
        route = parse_route(stored, resolve)
        revision = ws.routing.set_route(name, stored, user=ctx.principal.name)
    resolved = route.to_dict()
    resolved.pop("revision", None)
    return RouteChange(name, stored, revision, resolved, ctx.principal.name)


@use_case("route.write")
def clear_route(ctx: Context, name: str) -> RouteChange:
    """Drop model ``name``'s stored route: servers send all its traffic to the served reference.

    Args:
        ctx: where and who (recorded with the change).
        name: the registered model's name.

    Returns:
        The change (``config`` ``None``) with the route's new revision.

    Raises:
        NotFoundError: no model ``name``.
    """
    ws = ctx.workspace
    ws.models.get_model(name)
    revision = ws.routing.clear_route(name, user=ctx.principal.name)
    return RouteChange(name, None, revision, {}, ctx.principal.name)
