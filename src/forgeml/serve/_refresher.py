"""``RouteRefresher``: keeps the served table in step with the registry and the stored routes.

A thread polls the registry (aliases) and the stored routes every ``poll_interval`` seconds, or
at once when woken (``refresh_now``, after an admin change). When a model's desired route
differs from the one served, it loads the versions the new route needs in that thread (never on
the event loop), then installs the new table on the event loop in one assignment
(``PredictionService.install``). A model that cannot be served keeps its current table and its
error is reported by readiness. A stored route that cannot be served (a retired version, a
bundle that fails to load) gives way to the reference the server was started with, and
readiness says so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from forgeml.errors import ConflictError, ForgeMLError, InputError, NotFoundError
from forgeml.registry import LoadedModel, load, parse_model_ref
from forgeml.serve._routing import Route, parse_route
from forgeml.serve._runners import Runner, runner_for
from forgeml.serve._service import PredictionService
from forgeml.store import Workspace

__all__ = ["RouteRefresher", "RouteSource"]

_log = logging.getLogger("forgeml.serve")
_RELOAD_AFTER = 30.0  # seconds before versions that failed to load are tried again


class RouteSource(Protocol):
    """Where stored routes are read: ``{model: (config, revision)}``."""

    def routes(self) -> dict[str, tuple[dict[str, Any], int]]: ...


class RouteRefresher:
    """The thread that loads versions and installs routing tables.

    Args:
        service: where tables are installed.
        workspace: the registry models are loaded from.
        routes: the stored routes (default: the workspace's).
        poll_interval: seconds between passes.
    """

    def __init__(
        self,
        service: PredictionService,
        workspace: Workspace,
        *,
        routes: RouteSource | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.service = service
        self.workspace = workspace
        self.routes = routes if routes is not None else workspace.routing
        self.poll_interval = poll_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._passes = 0
        self._passed = threading.Condition()
        # per model: a route whose versions failed to load, why, and when to try again
        self._failed: dict[str, tuple[Route, str, float]] = {}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start polling; tables are installed on ``loop``."""
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="forgeml-refresh", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for the thread (blocking: call it off the event loop)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # keep serving the current table; try again next poll
                _log.exception("refreshing the routing table failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def refresh(self) -> None:
        """Read aliases and stored routes; load and install whatever changed (one pass).

        A stored route that cannot be served (a retired version, a version that fails to
        load...) gives way to the reference the server was started with: the model stays
        served, ``PredictionService.fallbacks`` says why (``/health/ready`` shows it), and the
        problem is logged once, not on every poll.
        """
        stored = self.routes.routes()
        service = self.service
        for name, ref in service.refs.items():
            found = stored.get(name)
            try:
                try:
                    self._serve(name, self.desired_route(name, found))
                    self._fallback(name, None)
                except (ForgeMLError, ValueError) as e:
                    if found is None:
                        raise
                    self._fallback(
                        name,
                        f"cannot serve the stored route revision {found[1]} "
                        f"({_message(e)}); serving {ref}",
                    )
                    self._serve(name, self.desired_route(name, None))
            except (ForgeMLError, ValueError) as e:
                message = _message(e)
                if service.load_errors.get(name) != message:
                    _log.error("cannot serve %s: %s", ref, message)
                service.load_errors[name] = message
        with self._passed:
            self._passes += 1
            self._passed.notify_all()

    def _serve(self, name: str, route: Route) -> None:
        """Load what ``route`` needs and install it, unless it is served already."""
        service = self.service
        current = service.entries.get(name)
        if current is not None and current.route == route:
            return
        failed = self._failed.get(name)
        if failed is not None and failed[0] == route and time.monotonic() < failed[2]:
            raise ForgeMLError(failed[1])  # loading it failed just now: not again every poll
        kept = {} if current is None else current.versions
        fresh: dict[int, tuple[LoadedModel, Runner]] = {}
        try:
            for version in sorted(route.versions - kept.keys()):
                model = load(
                    f"{name}@{version}",
                    workspace=self.workspace,
                    for_serving=True,
                    unknown_categories=service.options.unknown_categories,
                    trust_pickle=service.options.trust_pickle,
                )
                fresh[version] = (model, runner_for(model))
        except (ForgeMLError, ValueError) as e:
            self._failed[name] = (route, _message(e), time.monotonic() + _RELOAD_AFTER)
            raise
        self._failed.pop(name, None)
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(service.install(name, route, fresh), self._loop).result(
            timeout=60
        )
        _log.info("serving %s: %s", name, route.to_dict())

    def _fallback(self, name: str, message: str | None) -> None:
        fallbacks = self.service.fallbacks
        if message is None:
            if fallbacks.pop(name, None) is not None:
                _log.info("%s: the stored route is served again", name)
            return
        if fallbacks.get(name) != message:
            _log.error("%s: %s", name, message)
        fallbacks[name] = message

    def wait_first_pass(self, timeout: float = 120.0) -> bool:
        """Wait until the thread finished its first pass (every model loaded or its error
        recorded); ``False`` after ``timeout`` seconds (blocking)."""
        with self._passed:
            return self._passed.wait_for(lambda: self._passes >= 1, timeout)

    def refresh_now(self, timeout: float = 60.0) -> None:
        """Wake the thread and wait until it finished a full pass (blocking)."""
        with self._passed:
            target = self._passes + 2  # the pass under way may have read the old state
            self._wake.set()
            self._passed.wait_for(lambda: self._passes >= target, timeout)

    def desired_route(self, name: str, stored: tuple[Mapping[str, Any], int] | None) -> Route:
        """The route ``name`` should be served by: its stored route, else its reference.

        Raises:
            InputError: a version or alias in the route does not exist.
            ConflictError: a version in it is retired.
        """
        models = self.workspace.models

        def resolve(which: str) -> int:
            try:
                record = models.resolve(name, which)
            except NotFoundError:
                raise InputError(f"{name} has no version or alias {which!r}") from None
            if record.status.value == "retired":
                raise ConflictError(f"{record.ref} is retired and cannot be served")
            return int(record.version)

        if stored is not None:
            config, revision = stored
            return parse_route(config, resolve, revision=revision)
        return Route(split=((resolve(parse_model_ref(self.service.refs[name])[1]), 1.0),))


def _message(e: Exception) -> str:
    return e.message if isinstance(e, ForgeMLError) else str(e)
