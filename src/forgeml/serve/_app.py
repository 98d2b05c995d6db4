"""The prediction server: a FastAPI application over the runtime in ``_runtime``.

Request path (every protocol): read the body (bounded) → decode (``_codecs``) → pick a version
(``ModelEntry.choose``) → validate against its signature (``Validator``) → cache lookup →
``Batcher.predict`` (the model runs in a worker thread) → encode → answer. After the answer
is built, the prediction is put on the prediction log's queue (never waited on) and, when the
route has a shadow, a copy of the request is predicted by the shadow in a background task.

A refresher thread polls the registry (aliases) and the stored routes every
``poll_interval`` seconds; when either changes it loads the versions the new table needs in
that thread, then installs the new table on the event loop in one assignment.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import inspect
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route as HTTPRoute

from forgeml._version import __version__
from forgeml.config import Settings
from forgeml.errors import ConflictError, ForgeMLError, InputError, NotFoundError, http_status_for
from forgeml.registry import LoadedModel, load, parse_model_ref
from forgeml.serve import _codecs as codecs
from forgeml.serve import _schemas as docs
from forgeml.serve._metrics import ServerMetrics
from forgeml.serve._options import ServeOptions
from forgeml.serve._predlog import PredictionLog
from forgeml.serve._runners import runner_for
from forgeml.serve._runtime import (
    Batcher,
    ModelEntry,
    PredictionCache,
    Route,
    Served,
    parse_route,
)
from forgeml.serve._types import Outputs, RequestError, Rows
from forgeml.serve._validate import Validator
from forgeml.store import PredictionRecord, Workspace

__all__ = ["PredictionServer", "create_app"]

_log = logging.getLogger("forgeml.serve")
_access = logging.getLogger("forgeml.serve.access")
_JSON = "application/json"
_GRACE_SECONDS = 30.0  # a replaced version keeps answering requests already queued on it
_EXPLAIN_ROWS = 100


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = orjson.dumps(
        content, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    )
    return Response(body, status_code=status, media_type=_JSON, headers=headers)


def _error(e: RequestError) -> Response:
    return _json(e.body(), e.status)


def _from_forgeml(e: ForgeMLError, field: str | None = None) -> RequestError:
    return RequestError(e.message, field=field, status=http_status_for(e), code=e.code)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 36 and given.isascii() and given.replace("-", "").isalnum():
        return given
    return os.urandom(16).hex()


class PredictionServer:
    """The state of one server process: the workspace, the served models and their routing
    tables, the prediction log, the metrics and the refresher thread.

    Args:
        options: how to serve.
        workspace: the workspace the models come from (default: opened from ``settings``).
        settings: used when ``workspace`` is not given.
    """

    def __init__(
        self,
        options: ServeOptions,
        *,
        workspace: Workspace | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.options = options
        self._own_workspace = workspace is None
        self.workspace = workspace or Workspace(settings or Settings())
        self.refs = {parse_model_ref(r)[0]: r for r in options.models}
        self.entries: dict[str, ModelEntry] = {}
        self.metrics = ServerMetrics(self._live)
        self.log: PredictionLog | None = None
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="forgeml-predict")
        self._slow = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeml-io")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._refresher: threading.Thread | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._load_errors: dict[str, str] = {}
        self._refreshes = 0
        self._refreshed = threading.Condition()
        self._counters: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the prediction log and start loading models (readiness follows)."""
        self._loop = asyncio.get_running_loop()
        if self.options.log_predictions:
            self.log = PredictionLog(
                self.workspace.predlog,
                capacity=self.options.log_capacity,
                when_full=self.options.when_full,
            )
            self.log.start()
        self._refresher = threading.Thread(
            target=self._refresh_loop, name="forgeml-refresh", daemon=True
        )
        self._refresher.start()

    async def stop(self) -> None:
        """Finish in-flight work and write every logged prediction (called after the HTTP
        server stopped accepting and answered its in-flight requests)."""
        self._stop.set()
        self._wake.set()
        if self._background:
            await asyncio.wait(self._background, timeout=_GRACE_SECONDS)
        for entry in list(self.entries.values()):
            for served in entry.versions.values():
                await served.batcher.stop()
        if self._refresher is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._refresher.join, 10.0)
        if self.log is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.log.close, 60.0)
        self._executor.shutdown(wait=True)
        self._slow.shutdown(wait=True)
        if self._own_workspace:
            self.workspace.close()

    @property
    def ready(self) -> bool:
        """Every served model is loaded."""
        return all(name in self.entries for name in self.refs)

    # -- routing table --------------------------------------------------------------------------

    def _refresh_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # keep serving the current table; try again next poll
                _log.exception("refreshing the routing table failed")
            self._wake.wait(self.options.poll_interval)
            self._wake.clear()

    def refresh(self) -> None:
        """Read aliases and stored routes; load and install whatever changed (runs in the
        refresher thread)."""
        ws = self.workspace
        stored = ws.routing.routes()
        for name, ref in self.refs.items():
            try:
                route = self._desired_route(name, ref, stored.get(name))
                current = self.entries.get(name)
                if current is not None and current.route == route:
                    continue
                kept = {} if current is None else current.versions
                fresh: dict[int, tuple[LoadedModel, Any]] = {}
                for version in sorted(route.versions - kept.keys()):
                    model = load(
                        f"{name}@{version}",
                        workspace=ws,
                        for_serving=True,
                        unknown_categories=self.options.unknown_categories,
                    )
                    fresh[version] = (model, runner_for(model))
                assert self._loop is not None
                asyncio.run_coroutine_threadsafe(
                    self._install(name, ref, route, fresh), self._loop
                ).result(timeout=60)
                self._load_errors.pop(name, None)
                _log.info("serving %s: %s", name, route.to_dict())
            except (ForgeMLError, ValueError) as e:
                message = e.message if isinstance(e, ForgeMLError) else str(e)
                if self._load_errors.get(name) != message:
                    _log.error("cannot serve %s: %s", ref, message)
                self._load_errors[name] = message
        with self._refreshed:
            self._refreshes += 1
            self._refreshed.notify_all()

    def refresh_now(self, timeout: float = 60.0) -> None:
        """Wake the refresher and wait until it finished a full pass."""
        with self._refreshed:
            target = self._refreshes + 2  # the pass under way may have read the old state
            self._wake.set()
            self._refreshed.wait_for(lambda: self._refreshes >= target, timeout)

    def _desired_route(self, name: str, ref: str, stored: tuple[dict, int] | None) -> Route:
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
        return Route(split=((resolve(parse_model_ref(ref)[1]), 1.0),))

    async def _install(
        self,
        name: str,
        ref: str,
        route: Route,
        fresh: Mapping[int, tuple[LoadedModel, Any]],
    ) -> None:
        current = self.entries.get(name)
        versions: dict[int, Served] = {}
        for version in route.versions:
            if current is not None and version in current.versions:
                versions[version] = current.versions[version]
            else:
                model, runner = fresh[version]
                versions[version] = self._served(model, runner)
        self.entries[name] = ModelEntry(
            name=name, ref=ref, route=route, versions=versions, seed=self.options.seed
        )
        # What is loaded now lives as long as the server: keep it out of the collector's
        # scans, so that full collections stay short under load.
        gc.freeze()
        if current is not None:
            self.metrics.switches.labels(name).inc()
            for version, served in current.versions.items():
                if version not in versions:
                    self._spawn(self._retire(served))

    def _served(self, model: LoadedModel, runner: Any) -> Served:
        labels = (model.name, str(model.version))
        batch_rows = self.metrics.batch_rows.labels(*labels)
        batch_seconds = self.metrics.batch_seconds.labels(*labels)

        def observe(rows: int, seconds: float) -> None:
            batch_rows.observe(rows)
            batch_seconds.observe(seconds)

        batcher = Batcher(
            runner,
            self._executor,
            max_batch_rows=self.options.max_batch_rows,
            max_wait_ms=self.options.max_wait_ms,
            observe=observe,
        )
        batcher.start()
        cache = PredictionCache(self.options.cache_size) if self.options.cache_size else None
        validator = Validator(
            model.signature,
            unknown_categories=self.options.unknown_categories,
            max_rows=self.options.max_rows,
        )
        return Served(model=model, runner=runner, validator=validator, batcher=batcher, cache=cache)

    async def _retire(self, served: Served) -> None:
        await asyncio.sleep(min(_GRACE_SECONDS, 5 * self.options.poll_interval))
        await served.batcher.stop()

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def entry(self, name: str) -> ModelEntry:
        """The served model ``name``.

        Raises:
            RequestError: 404 when it is not served, 503 while it loads.
        """
        found = self.entries.get(name)
        if found is not None:
            return found
        if name in self.refs:
            reason = self._load_errors.get(name, "it is loading")
            raise RequestError(
                f"Model {name!r} is not ready: {reason}",
                field="model",
                status=503,
                code="not_ready",
            )
        served = ", ".join(sorted(self.refs))
        raise RequestError(
            f"Model {name!r} is not served here; served: {served}",
            field="model",
            status=404,
            code="not_found",
        )

    # -- prediction -----------------------------------------------------------------------------

    async def predict(
        self,
        entry: ModelEntry,
        rows: Rows,
        *,
        protocol: str,
        request_id: str,
        started: float,
        served: Served | None = None,
        shadow: Served | None = None,
        probabilities: bool = True,
    ) -> Outputs:
        """Validate, predict (through the cache and the batcher), log, and copy to a shadow.

        ``served`` and ``shadow`` are the route's choice when the caller made it already (it
        needed the version's signature to decode the request); else the route chooses by
        ``rows.key``. Refusals are counted in the error metrics by the handler."""
        if served is None:
            served, shadow = entry.choose(rows.key)
        columns = served.validator.check(rows)
        labels, proba = await self._run(served, columns, rows.n)
        version = served.version
        classes = served.runner.classes
        outputs = Outputs(
            predictions=labels,
            probabilities=None if proba is None or not probabilities else proba,  # type: ignore[arg-type]
            classes=classes if probabilities else None,
            model=entry.name,
            version=version,
            request_id=request_id,
        )
        latency = time.perf_counter() - started
        counters = self._counters.get((entry.name, version, protocol))
        if counters is None:
            name_version = (entry.name, str(version))
            counters = self._counters[(entry.name, version, protocol)] = (
                self.metrics.latency.labels(*name_version),
                self.metrics.requests.labels(*name_version, protocol, "200"),
                self.metrics.rows.labels(*name_version),
            )
        counters[0].observe(latency)
        counters[1].inc()
        counters[2].inc(rows.n)
        self._record(
            entry.name,
            version,
            "primary",
            request_id,
            columns,
            rows.n,
            labels,
            proba,
            classes,
            latency,
            protocol,
        )
        if shadow is not None and shadow is not served:
            self._spawn(self._shadow(entry.name, shadow, rows, request_id, protocol))
        return outputs

    async def _run(
        self, served: Served, columns: dict[str, list[Any]], n: int
    ) -> tuple[list[Any], np.ndarray | None]:
        cache = served.cache
        if cache is None or n != 1:
            return await served.batcher.predict(columns, n)
        key = cache.key(columns)
        hit = cache.get(key)
        labels = self.metrics.cache.labels(
            served.model.name, str(served.version), "hit" if hit else "miss"
        )
        labels.inc()
        if hit is not None:
            return hit  # type: ignore[return-value]
        result = await served.batcher.predict(columns, n)
        cache.put(key, result)
        return result

    async def _shadow(
        self, name: str, served: Served, rows: Rows, request_id: str, protocol: str
    ) -> None:
        started = time.perf_counter()
        counter = self.metrics.shadow
        version = str(served.version)
        try:
            columns = served.validator.check(rows)
            labels, proba = await served.batcher.predict(columns, rows.n)
        except RequestError:
            counter.labels(name, version, "invalid").inc()
            return
        except Exception:
            _log.exception("shadow %s@%s failed", name, version)
            counter.labels(name, version, "error").inc()
            return
        counter.labels(name, version, "ok").inc()
        self._record(
            name,
            served.version,
            "shadow",
            request_id,
            columns,
            rows.n,
            labels,
            proba,
            served.runner.classes,
            time.perf_counter() - started,
            protocol,
        )

    def _record(
        self,
        name: str,
        version: int,
        role: str,
        request_id: str,
        columns: dict[str, list[Any]],
        n: int,
        labels: list[Any],
        proba: np.ndarray | None,
        classes: list[Any] | None,
        latency: float,
        protocol: str,
    ) -> None:
        if self.log is None:
            return
        self.log.submit(
            PredictionRecord(
                request_id=request_id,
                model=name,
                version=version,
                role=role,
                time_ms=int(time.time() * 1000),
                latency_ms=latency * 1000.0,
                n_rows=n,
                inputs=columns,
                outputs={"predictions": labels, "probabilities": proba, "classes": classes},
                protocol=protocol,
            )
        )

    # -- metrics read at scrape time ------------------------------------------------------------

    def _live(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        depth, cache, ready, weights = [], [], [], []
        for name in self.refs:
            entry = self.entries.get(name)
            ready.append(({"model": name}, 1.0 if entry is not None else 0.0))
            if entry is None:
                continue
            total = sum(w for _, w in entry.route.split)
            for version, weight in entry.route.split:
                weights.append(({"model": name, "version": str(version)}, weight / total))
            for version, served in entry.versions.items():
                labels = {"model": name, "version": str(version)}
                depth.append((labels, float(served.batcher.depth)))
                if served.cache is not None:
                    cache.append((labels, float(len(served.cache))))
        out = {
            "forgeml_batch_queue_depth": depth,
            "forgeml_cache_entries": cache,
            "forgeml_model_ready": ready,
            "forgeml_route_weight": weights,
        }
        if self.log is not None:
            for key, value in self.log.stats().items():
                out[f"forgeml_prediction_log_{key}"] = [({}, float(value))]
        return {k: v for k, v in out.items() if v}


class _AccessLog:
    """Pure ASGI middleware: one JSON line per HTTP request (time, method, path, status,
    milliseconds, client; model, version and request id for predictions).

    The event loop only appends a tuple to a queue; a writer thread turns them into JSON
    lines and hands them to the ``forgeml.serve.access`` logger, several lines per record.
    """

    def __init__(self, app: Any, log: _AccessWriter) -> None:
        self.app = app
        self.enabled = log.enabled
        self._pending = log.pending

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self._pending.append(
                (
                    time.time(),
                    scope["method"],
                    scope["path"],
                    status[0],
                    time.perf_counter() - started,
                    scope.get("client"),
                    scope.get("forgeml"),
                )
            )


class _AccessWriter:
    """The access log's queue and the thread that writes it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and _access.isEnabledFor(logging.INFO)
        self.pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        if self.enabled:
            self._writer = threading.Thread(
                target=self._write_loop, name="forgeml-access-log", daemon=True
            )
            self._writer.start()

    def _write_loop(self) -> None:
        while not self._stop.wait(0.05):
            self._write()
        self._write()

    def _write(self) -> None:
        pending = self.pending
        lines = []
        while pending:
            at, method, path, status, seconds, client, info = pending.popleft()
            line: dict[str, Any] = {
                "time": round(at, 3),
                "method": method,
                "path": path,
                "status": status,
                "ms": round(seconds * 1000, 3),
                "client": client[0] if client else "",
            }
            if info:
                line.update(zip(("model", "version", "request_id"), info, strict=False))
            lines.append(orjson.dumps(line).decode())
        if lines:
            _access.info("\n".join(lines))

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=10)


def create_app(
    options: ServeOptions,
    *,
    workspace: Workspace | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The ASGI application serving ``options.models``.

    Args:
        options: how to serve.
        workspace: the workspace the models come from (default: from ``settings``).
        settings: the settings used to open the workspace when none is given.
    """
    server = PredictionServer(options, workspace=workspace, settings=settings)

    access = _AccessWriter(options.access_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()
            access.close()

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        # FastAPI's OpenTelemetry hooks check their providers on every request; the server
        # has its own Prometheus metrics and access log.
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title="forgeml prediction server",
        version=__version__,
        description=docs.DESCRIPTION,
        lifespan=lifespan,
        **extra,
    )
    app.state.server = server
    _routes(app, server, options)
    app.add_middleware(_AccessLog, log=access)  # type: ignore[arg-type]
    return app


def _routes(app: FastAPI, server: PredictionServer, options: ServeOptions) -> None:
    max_body = options.max_body_bytes
    metrics = server.metrics

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            raise RequestError(
                f"The body holds {length} bytes; at most {max_body}",
                field="body",
                status=413,
                code="too_large",
            )
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise RequestError(
                    f"The body exceeds {max_body} bytes", field="body", status=413, code="too_large"
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        encoding = request.headers.get("content-encoding")
        if encoding:
            body = _decompress(body, encoding.strip().lower(), max_body)
        if not body:
            raise RequestError("The request body is empty; expected JSON", field="body")
        return body

    def failed(name: str | None, e: Exception) -> Response:
        if isinstance(e, RequestError):
            error = e
        elif isinstance(e, ForgeMLError):
            error = _from_forgeml(e)
        else:
            _log.exception("internal error answering a request")
            error = RequestError(
                "Internal error; the server logged it", status=500, code="internal"
            )
        metrics.errors.labels(name or "", str(error.status), error.code).inc()
        return _error(error)

    async def guarded(name: str | None, handler: Callable[[], Awaitable[Response]]) -> Response:
        try:
            return await handler()
        except Exception as e:
            return failed(name, e)

    def native_body(outputs: Outputs) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": outputs.request_id,
            "model": outputs.model,
            "version": outputs.version,
            "predictions": outputs.predictions,
        }
        if outputs.probabilities is not None:
            body["probabilities"] = outputs.probabilities
            body["classes"] = outputs.classes
        return body

    # -- native -----------------------------------------------------------------------------

    @app.post(
        "/v1/models/{name}/predict",
        tags=["native"],
        summary="Predict rows (records or columns)",
        openapi_extra=docs.native_predict(),
        response_class=Response,
    )
    async def predict_native(name: str, request: Request, probabilities: bool = True) -> Response:
        started = time.perf_counter()

        async def handle() -> Response:
            entry = server.entry(name)
            rows = codecs.decode_native(await read_body(request))
            if rows.key is None:
                rows.key = request.headers.get("x-routing-key")
            request_id = _request_id(request)
            outputs = await server.predict(
                entry,
                rows,
                protocol="native",
                request_id=request_id,
                started=started,
                probabilities=probabilities,
            )
            request.scope["forgeml"] = (name, outputs.version, request_id)
            return _json(native_body(outputs), headers={"x-request-id": request_id})

        return await guarded(name, handle)

    @app.post(
        "/v1/models/{name}/explain",
        tags=["native"],
        summary="Per-feature contributions (SHAP) for rows",
        openapi_extra=docs.native_predict(),
        response_class=Response,
    )
    async def explain(name: str, request: Request) -> Response:
        async def handle() -> Response:
            entry = server.entry(name)
            rows = codecs.decode_native(await read_body(request))
            if rows.n > _EXPLAIN_ROWS:
                raise RequestError(
                    f"Explanations take at most {_EXPLAIN_ROWS} rows per request; got {rows.n}",
                    field="body",
                    status=413,
                    code="too_many_rows",
                )
            served, _ = entry.choose(rows.key or request.headers.get("x-routing-key"))
            columns = served.validator.check(rows)
            import pandas as pd

            loop = asyncio.get_running_loop()
            explanation = await loop.run_in_executor(
                server._slow, served.model.explain, pd.DataFrame(columns)
            )
            return _json(
                {
                    "model": name,
                    "version": served.version,
                    "columns": list(explanation.columns),
                    "contributions": np.asarray(explanation.contributions),
                    "base_values": np.asarray(explanation.base_values),
                    "output": explanation.output,
                    "outputs": [_plain(o) for o in explanation.outputs],
                    "method": explanation.method,
                }
            )

        return await guarded(name, handle)

    @app.get("/v1/models", tags=["native"], summary="The served models and their routes")
    async def list_models() -> Response:
        return _json({"models": [describe(n) for n in server.refs]})

    @app.get("/v1/models/{name}", tags=["native"], summary="One served model: route, signature")
    async def show_model(name: str) -> Response:
        return await guarded(name, lambda: _ok(describe(name, signature=True)))

    def describe(name: str, *, signature: bool = False) -> dict[str, Any]:
        entry = server.entries.get(name)
        if entry is None:
            server.entry(name)  # 404 or 503
        out: dict[str, Any] = {
            "name": name,
            "ref": server.refs.get(name),
            "ready": entry is not None,
        }
        if entry is not None:
            out["route"] = entry.route.to_dict()
            out["versions"] = sorted(entry.versions)
            if signature:
                out["signature"] = entry.primary.model.signature.to_dict()
        return out

    @app.post(
        "/v1/feedback",
        tags=["native"],
        summary="Attach ground-truth labels to logged requests",
        openapi_extra=docs.feedback(),
        response_class=Response,
    )
    async def feedback(request: Request) -> Response:
        async def handle() -> Response:
            labels = docs.parse_feedback(await read_body(request))
            if server.log is None:
                raise RequestError(
                    "This server does not log predictions, so there is nothing to label",
                    field="request_id",
                    status=409,
                    code="conflict",
                )
            log = server.log
            store = server.workspace.predlog

            def attach() -> None:
                known = store.known_requests(list(labels))
                if len(known) < len(labels):
                    log.flush(timeout=10.0)  # the prediction may still be queued
                store.add_feedback(labels, user=None)

            try:
                await asyncio.get_running_loop().run_in_executor(server._slow, attach)
            except ForgeMLError as e:
                raise _from_forgeml(e, field="request_id") from None
            return _json({"accepted": len(labels)})

        return await guarded(None, handle)

    # -- MLflow scoring protocol --------------------------------------------------------------

    async def mlflow_invoke(name: str, request: Request) -> Response:
        started = time.perf_counter()

        async def handle() -> Response:
            entry = server.entry(name)
            served, shadow = entry.choose(request.headers.get("x-routing-key"))
            body = await read_body(request)
            rows = codecs.decode_mlflow(
                body, request.headers.get("content-type"), served.model.signature.names
            )
            request_id = _request_id(request)
            outputs = await server.predict(
                entry,
                rows,
                protocol="mlflow",
                request_id=request_id,
                started=started,
                served=served,
                shadow=shadow,
                probabilities=False,
            )
            request.scope["forgeml"] = (name, outputs.version, request_id)
            return Response(
                codecs.encode_mlflow(outputs),
                media_type=_JSON,
                headers={"x-request-id": request_id},
            )

        return await guarded(name, handle)

    first = next(iter(server.refs))

    @app.post(
        "/invocations",
        tags=["mlflow"],
        summary=f"MLflow scoring protocol (model {first})",
        openapi_extra=docs.mlflow_invocations(),
        response_class=Response,
    )
    async def invocations(request: Request) -> Response:
        return await mlflow_invoke(first, request)

    @app.post(
        "/v1/models/{name}/invocations",
        tags=["mlflow"],
        summary="MLflow scoring protocol for one of several served models",
        openapi_extra=docs.mlflow_invocations(),
        response_class=Response,
    )
    async def invocations_named(name: str, request: Request) -> Response:
        return await mlflow_invoke(name, request)

    @app.get("/ping", tags=["mlflow"], summary="MLflow health check")
    async def ping() -> Response:
        return _json(
            {"status": "ready" if server.ready else "loading"}, 200 if server.ready else 503
        )

    @app.get(
        "/version",
        tags=["mlflow"],
        summary="Server version",
        response_class=PlainTextResponse,
    )
    async def version() -> Response:
        return Response(__version__, media_type="text/plain")

    # -- Open Inference Protocol v2 -------------------------------------------------------------

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def v2_server() -> Response:
        return _json(codecs.v2_server_metadata(__version__))

    @app.get("/v2/health/live", tags=["v2"], summary="Server liveness")
    async def v2_live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready", tags=["v2"], summary="Server readiness")
    async def v2_ready() -> Response:
        return _json({"ready": server.ready}, 200 if server.ready else 503)

    def v2_metadata(name: str, version: int | None) -> Response:
        entry = server.entry(name)
        served = entry.primary if version is None else v2_version(entry, version)
        return _json(codecs.v2_model_metadata(name, sorted(entry.versions), served.model.signature))

    def v2_version(entry: ModelEntry, version: int) -> Served:
        found = entry.versions.get(version)
        if found is None:
            raise RequestError(
                f"Version {version} of {entry.name!r} is not served; served: "
                f"{sorted(entry.versions)}",
                field="version",
                status=404,
                code="not_found",
            )
        return found

    @app.get("/v2/models/{name}", tags=["v2"], summary="Model metadata")
    async def v2_model(name: str) -> Response:
        return v2_error(await guarded(name, lambda: _ok_response(v2_metadata(name, None))))

    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], summary="Version metadata")
    async def v2_model_version(name: str, version: int) -> Response:
        return v2_error(await guarded(name, lambda: _ok_response(v2_metadata(name, version))))

    @app.get("/v2/models/{name}/ready", tags=["v2"], summary="Model readiness")
    async def v2_model_ready(name: str) -> Response:
        return await v2_readiness(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], summary="Version readiness")
    async def v2_model_version_ready(name: str, version: int) -> Response:
        return await v2_readiness(name, version)

    async def v2_readiness(name: str, version: int | None) -> Response:
        async def handle() -> Response:
            entry = server.entry(name)
            if version is not None:
                v2_version(entry, version)
            return _json({"name": name, "ready": True})

        return v2_error(await guarded(name, handle))

    async def v2_infer(name: str, version: int | None, request: Request) -> Response:
        started = time.perf_counter()

        async def handle() -> Response:
            entry = server.entry(name)
            shadow = None
            if version is None:
                served, shadow = entry.choose(request.headers.get("x-routing-key"))
            else:
                served = v2_version(entry, version)
            header_length = codecs.v2_header_length(
                request.headers.get("inference-header-content-length")
            )
            rows, v2 = codecs.decode_v2(
                await read_body(request), header_length, served.model.signature
            )
            request_id = _request_id(request)
            outputs = await server.predict(
                entry,
                rows,
                protocol="v2",
                request_id=request_id,
                started=started,
                served=served,
                shadow=shadow,
            )
            request.scope["forgeml"] = (name, outputs.version, request_id)
            body, headers = codecs.encode_v2(outputs, v2)
            media = headers.pop("content-type", None) or headers.pop("Content-Type", None)
            return Response(body, media_type=media or _JSON, headers=headers)

        return v2_error(await guarded(name, handle))

    def v2_error(response: Response) -> Response:
        """The Open Inference Protocol's error body: ``{"error": "<message>"}`` (with the
        code and field beside it)."""
        if response.status_code < 400:
            return response
        error = orjson.loads(response.body)["error"]
        return _json(
            {"error": error["message"], "code": error["code"], "field": error["field"]},
            response.status_code,
        )

    @app.post(
        "/v2/models/{name}/infer",
        tags=["v2"],
        summary="Inference (Open Inference Protocol v2)",
        openapi_extra=docs.v2_infer(),
        response_class=Response,
    )
    async def v2_infer_model(name: str, request: Request) -> Response:
        return await v2_infer(name, None, request)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["v2"],
        summary="Inference on one version (Open Inference Protocol v2)",
        openapi_extra=docs.v2_infer(),
        response_class=Response,
    )
    async def v2_infer_version(name: str, version: int, request: Request) -> Response:
        return await v2_infer(name, version, request)

    # -- operations ---------------------------------------------------------------------------

    @app.get("/health/live", tags=["operations"], summary="Liveness")
    async def live() -> Response:
        return _json({"status": "live"})

    @app.get("/health/ready", tags=["operations"], summary="Readiness: every model loaded")
    async def ready() -> Response:
        waiting = [n for n in server.refs if n not in server.entries]
        body: dict[str, Any] = {"status": "ready" if not waiting else "loading"}
        if waiting:
            body["waiting"] = {n: server._load_errors.get(n, "loading") for n in waiting}
        return _json(body, 200 if not waiting else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- admin ----------------------------------------------------------------------------------

    def admin(request: Request) -> None:
        token = options.admin_token
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if given != f"Bearer {token}":
            raise RequestError(
                "The admin endpoints need 'Authorization: Bearer <admin token>'",
                field="Authorization",
                status=401,
                code="unauthorized",
            )

    @app.get("/admin/routes", tags=["admin"], summary="The routing table of every served model")
    async def routes(request: Request) -> Response:
        async def handle() -> Response:
            admin(request)
            return _json({name: describe_route(name) for name in server.refs})

        return await guarded(None, handle)

    def describe_route(name: str) -> dict[str, Any]:
        entry = server.entries.get(name)
        return {
            "ref": server.refs[name],
            "route": None if entry is None else entry.route.to_dict(),
            "error": server._load_errors.get(name),
        }

    @app.put(
        "/admin/models/{name}/route",
        tags=["admin"],
        summary="Set a model's traffic split and shadow (applied without restart)",
        openapi_extra=docs.route(),
        response_class=Response,
    )
    async def set_route(name: str, request: Request) -> Response:
        async def handle() -> Response:
            admin(request)
            server.entry(name)
            try:
                config = orjson.loads(await read_body(request))
            except orjson.JSONDecodeError as e:
                raise RequestError(f"The body is not JSON: {e}", field="body") from None

            def apply() -> None:
                stored = server.workspace.routing.routes().get(name)
                revision = (stored[1] if stored else 0) + 1
                server._desired_route(name, server.refs[name], (config, revision))  # validates
                server.workspace.routing.set_route(name, config)
                server.refresh_now()

            try:
                await asyncio.get_running_loop().run_in_executor(server._slow, apply)
            except ForgeMLError as e:
                raise _from_forgeml(e, field="route") from None
            return _json(describe_route(name))

        return await guarded(name, handle)

    @app.delete(
        "/admin/models/{name}/route",
        tags=["admin"],
        summary="Drop a model's stored route: all traffic to the served reference",
    )
    async def clear_route(name: str, request: Request) -> Response:
        async def handle() -> Response:
            admin(request)
            server.entry(name)

            def apply() -> None:
                server.workspace.routing.clear_route(name)
                server.refresh_now()

            await asyncio.get_running_loop().run_in_executor(server._slow, apply)
            return _json(describe_route(name))

        return await guarded(name, handle)

    # -- errors outside the handlers: unknown paths, wrong methods, bad path parameters -------

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        error = RequestError(str(e.detail), field="path", status=e.status_code, code=code)
        response = in_protocol(request, _error(error))
        response.headers.update(e.headers or {})  # a 405 names the allowed methods (Allow)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> Response:
        problems = e.errors()
        first_problem = problems[0] if problems else {}
        field = ".".join(str(p) for p in first_problem.get("loc", ())[1:]) or None
        message = first_problem.get("msg", "invalid request")
        error = RequestError(f"{field}: {message}", field=field, status=422)
        return in_protocol(request, _error(error))

    # The prediction paths, served first by plain Starlette routes: the FastAPI routes above
    # document them (OpenAPI) but their parameter resolution costs more than the rest of a
    # one-row request's handling. Same handlers, same answers.
    flags = {
        "true": True,
        "1": True,
        "yes": True,
        "on": True,
        "false": False,
        "0": False,
        "no": False,
        "off": False,
    }

    async def native_fast(request: Request) -> Response:
        given = request.query_params.get("probabilities")
        probabilities = True if given is None else flags.get(given.lower())
        if probabilities is None:
            error = RequestError(
                f"probabilities is true or false; got {given[:20]!r}",
                field="probabilities",
                status=422,
            )
            return _error(error)
        return await predict_native(request.path_params["name"], request, probabilities)

    async def v2_fast(request: Request) -> Response:
        return await v2_infer_model(request.path_params["name"], request)

    fast = [
        HTTPRoute("/v1/models/{name}/predict", native_fast, methods=["POST"]),
        HTTPRoute("/invocations", invocations, methods=["POST"]),
        HTTPRoute("/v2/models/{name}/infer", v2_fast, methods=["POST"]),
    ]
    app.router.routes[:0] = fast

    def in_protocol(request: Request, response: Response) -> Response:
        """Errors under /v2 in the Open Inference Protocol's shape (its clients read
        ``error`` as the message)."""
        path = request.url.path
        return v2_error(response) if path == "/v2" or path.startswith("/v2/") else response


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body, inflated to at most ``limit`` bytes."""
    import zlib

    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise RequestError(
            f"Content-Encoding {encoding!r} is not supported; use gzip or deflate",
            field="Content-Encoding",
            status=415,
            code="unsupported_media_type",
        )
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise RequestError(
            f"The body is not valid {encoding}: {e}", field="Content-Encoding"
        ) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestError(
            f"The inflated body exceeds {limit} bytes", field="body", status=413, code="too_large"
        )
    return out


async def _ok(content: Any) -> Response:
    return _json(content)


async def _ok_response(response: Response) -> Response:
    return response


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
