"""The prediction server's ASGI application: the wire protocols over one ``PredictionService``.

Request path (every protocol): read the body (bounded) → decode (the protocol's module) →
``PredictionService.predict`` (choose the version, validate, cache, micro-batch, log, shadow)
→ encode → answer. Each path is one plain Starlette route; the OpenAPI description at
``/openapi.json`` (and ``/docs``, served offline) is built from a FastAPI declaration of each
operation that is never routed. ``RouteRefresher`` keeps the served table in step with the
registry and the stored routes.

Middleware, outermost first (``_middleware``): the access log, then whatever the caller adds
(authentication, in ``forgeml.http``). They run in front of FastAPI itself (``ServingApp``),
so that the prediction routes that have a raw form (``Operation.raw``: the native ``predict``,
MLflow's ``/invocations`` and the v2 ``infer``) are answered right after them, without
Starlette's routing, request and response layers; every other request goes on through FastAPI
as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from forgeml._version import __version__
from forgeml.config import Settings
from forgeml.serve import _mlflow, _native, _v2
from forgeml.serve import _schemas as docs
from forgeml.serve._access import AccessLogMiddleware, AccessLogWriter
from forgeml.serve._docs import docs_routes
from forgeml.serve._http import (
    Operation,
    RawRoute,
    error_response,
    json_response,
    operation,
)
from forgeml.serve._monitor_gauges import MonitorGauges
from forgeml.serve._options import ServeOptions
from forgeml.serve._predlog import PredictionLog
from forgeml.serve._refresher import RouteRefresher
from forgeml.serve._service import PredictionService
from forgeml.serve._types import RequestError
from forgeml.serve._v2 import v2_error_body
from forgeml.store import Workspace

__all__ = ["Serving", "ServingApp", "create_app"]

_TITLE = "forgeml prediction server"
#: Seconds the prediction log gets at shutdown to write what it holds to the store; the rest
#: stays in the spool (on disk) and is written when the next server starts.
LOG_CLOSE_SECONDS = 5.0


def spool_folder(ws: Workspace) -> Path:
    """Where a server's prediction-log journal lives: ``<home>/spool/predictions``."""
    return Path(ws.settings.home) / "spool" / "predictions"


@dataclass(frozen=True, slots=True)
class Serving:
    """What one server process is made of, for the operations added around it.

    Attributes:
        options: how it serves.
        workspace: where models, routes and predictions are stored.
        service: the prediction path and the served table.
        refresher: keeps the table in step with the registry and the stored routes.
    """

    options: ServeOptions
    workspace: Workspace
    service: PredictionService
    refresher: RouteRefresher


class ServingApp(FastAPI):
    """FastAPI behind the server's middleware and its raw routes.

    A request goes through the middleware (the access log, then the caller's), then to the
    raw route it matches, else into FastAPI (its own middleware, router and exception
    handlers). ``front`` is set once the application is assembled (``create_app``).
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        front = self.front
        if front is None:
            await super().__call__(scope, receive, send)
        else:
            await front(scope, receive, send)


class _RawRoutes:
    """Answers the requests of the raw routes; passes every other one on to ``app``."""

    def __init__(self, app: ASGIApp, routes: Sequence[RawRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method, parts = scope["method"], scope["path"].split("/")
            for route in self.routes:
                parameters = route.match(method, parts)
                if parameters is not None:
                    await route.endpoint(scope, receive, send, parameters)
                    return
        await self.app(scope, receive, send)


def create_app(
    options: ServeOptions,
    *,
    workspace: Workspace | None = None,
    settings: Settings | None = None,
    extensions: Sequence[Callable[[Serving], Sequence[Operation]]] = (),
    middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """The ASGI application serving ``options.models``.

    Args:
        options: how to serve.
        workspace: the workspace the models come from (default: from ``settings``).
        settings: the settings used to open the workspace when none is given.
        extensions: builders of more operations (the admin routes of ``forgeml.http``).
        middleware: pure ASGI middleware inside the access log (authentication).
    """
    own_workspace = workspace is None
    ws = workspace or Workspace(settings or Settings())
    service = PredictionService(options)
    service.gauges = MonitorGauges(ws.monitor, lambda: list(service.refs))
    refresher = RouteRefresher(service, ws, poll_interval=options.poll_interval)
    serving = Serving(options=options, workspace=ws, service=service, refresher=refresher)
    access = AccessLogWriter(options.access_log)
    log_holder: list[PredictionLog] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if options.log_predictions:
            log = PredictionLog(
                ws.predlog,
                capacity=options.log_capacity,
                when_full=options.when_full,
                spool=spool_folder(ws),
                cipher=ws.predlog.cipher,
            )
            log_holder.append(log.start())
            service.log = log
        refresher.start(loop)
        # Accept requests once the models are loaded (or failed to load): with several worker
        # processes on one socket, a worker still loading would answer 503 beside a ready one.
        await loop.run_in_executor(None, refresher.wait_first_pass)
        try:
            yield
        finally:
            # The HTTP server stopped accepting and answered its in-flight requests.
            await loop.run_in_executor(None, refresher.stop, 2.0)
            await service.stop()
            for log in log_holder:
                # What the store does not take by then stays in the spool for the next start.
                await loop.run_in_executor(None, log.close, LOG_CLOSE_SECONDS)
            if own_workspace:
                ws.close()
            access.close()

    def attach_feedback(labels: dict[str, list[Any]], user: str | None) -> None:
        store = ws.predlog
        known = store.known_requests(list(labels))
        if len(known) < len(labels) and log_holder:
            log_holder[0].flush(timeout=10.0)  # the prediction may still be queued
        store.add_feedback(labels, user=user)

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        # FastAPI's OpenTelemetry hooks check their providers on every request; the server
        # has its own Prometheus metrics and access log.
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = ServingApp(
        title=_TITLE,
        version=__version__,
        description=docs.DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        **extra,
    )
    app.state.serving = serving
    max_body = options.max_body_bytes
    operations = [
        *_native.operations(
            service,
            max_body=max_body,
            attach_feedback=attach_feedback if options.log_predictions else None,
        ),
        *_mlflow.operations(service, max_body=max_body),
        *_v2.operations(service, max_body=max_body),
        *_operations(service),
    ]
    for build in extensions:
        operations.extend(build(serving))
    app.router.routes.extend(op.route for op in operations)
    app.router.routes.extend(docs_routes(_TITLE))
    _describe(app, [op.doc for op in operations])
    _errors(app)
    front: ASGIApp = _RawRoutes(
        functools.partial(FastAPI.__call__, app), [op.raw for op in operations if op.raw]
    )
    for cls, args, kwargs in reversed(_middleware(access, middleware)):
        front = cls(front, *args, **kwargs)
    app.front = front
    return app


def _middleware(access: AccessLogWriter, inner: Sequence[Middleware]) -> list[Middleware]:
    """The middleware stack, outermost first."""
    return [Middleware(AccessLogMiddleware, log=access), *inner]  # type: ignore[arg-type]


def _describe(app: FastAPI, documented: list[Any]) -> None:
    """``/openapi.json`` from the operations' declarations."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*app.routes, *documented],
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(service: PredictionService) -> list[Operation]:
    async def live(request: Request) -> Response:
        return json_response({"status": "live"})

    async def ready(request: Request) -> Response:
        waiting = service.waiting()
        body: dict[str, Any] = {"status": "ready" if not waiting else "loading"}
        if waiting:
            body["waiting"] = waiting
        if service.fallbacks:
            # served, but by the reference the server was started with, not the stored route
            body["fallback"] = dict(service.fallbacks)
        return json_response(body, 200 if not waiting else 503)

    async def prometheus(request: Request) -> Response:
        return Response(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def doc_none() -> None: ...

    tags = ["operations"]
    text = {
        "responses": {
            "200": {
                "description": "Successful Response",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    }
    return [
        operation("/health/live", live, "GET", doc=doc_none, tags=tags, summary="Liveness"),
        operation(
            "/health/ready",
            ready,
            "GET",
            doc=doc_none,
            tags=tags,
            summary="Readiness: every model loaded",
        ),
        operation(
            "/metrics",
            prometheus,
            "GET",
            doc=doc_none,
            tags=tags,
            summary="Prometheus metrics",
            openapi_extra=text,
        ),
    ]


def _errors(app: FastAPI) -> None:
    """Errors outside the handlers (unknown paths, wrong methods) as JSON, in the protocol's
    shape under ``/v2``."""

    def in_protocol(request: Request, error: RequestError) -> Response:
        path = request.url.path
        if path == "/v2" or path.startswith("/v2/"):
            return json_response(v2_error_body(error), error.status, error.headers or None)
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        error = RequestError(str(e.detail), field="path", status=e.status_code, code=code)
        response = in_protocol(request, error)
        response.headers.update(e.headers or {})  # a 405 names the allowed methods (Allow)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> Response:
        problems = e.errors()
        first_problem = problems[0] if problems else {}
        field = ".".join(str(p) for p in first_problem.get("loc", ())[1:]) or None
        message = first_problem.get("msg", "invalid request")
        return in_protocol(request, RequestError(f"{field}: {message}", field=field, status=422))
