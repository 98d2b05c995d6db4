"""``PredictionService``: serving without a web framework.

For one request's decoded rows: choose the version (``ModelEntry.choose``: canary split,
sticky keys), validate against its signature (``Validator``: data-quality issues counted per
column and flagged on the logged record), look up the cache, predict through
the version's micro-batcher (``Batcher``, which sheds load with 503), log the prediction (the
prediction log's queue, never waited on) and, when the route has a shadow, predict a copy in a
background task whose answer is logged, never returned. Wire protocols (``_native``,
``_mlflow``, ``_v2``) decode and encode around it; the route-table refresher (``_refresher``)
installs the versions it serves.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from forgeml.registry import LoadedModel
from forgeml.serve._batcher import Batcher
from forgeml.serve._cache import PredictionCache
from forgeml.serve._metrics import ServerMetrics
from forgeml.serve._options import ServeOptions
from forgeml.serve._routing import ModelEntry, Route, Served
from forgeml.serve._runners import Runner
from forgeml.serve._types import Outputs, RequestError, Rows
from forgeml.serve._validate import Quality, Validator
from forgeml.store import PredictionRecord

__all__ = ["PredictionService", "PredictionSink"]

_log = logging.getLogger("forgeml.serve")
GRACE_SECONDS = 30.0  # a replaced version keeps answering requests already queued on it
STOP_SECONDS = 3.0  # at shutdown, how long background work (shadow predictions) may take
EXPLAIN_ROWS = 100


class PredictionSink(Protocol):
    """Where answered predictions go: ``PredictionLog`` (``submit`` never blocks in drop mode)."""

    def submit(self, record: PredictionRecord) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


class PredictionService:
    """The served models of one process and the prediction path over them.

    Args:
        options: how to serve (batching, cache, validation, routing seed).
        metrics: the Prometheus metrics updated on the request path (default: new ones).

    Thread safety: every method runs on the event loop except ``entry`` and ``describe``
    (plain reads of an immutable table, safe anywhere); ``install`` is scheduled onto the loop
    by the refresher thread.
    """

    def __init__(self, options: ServeOptions, *, metrics: ServerMetrics | None = None) -> None:
        from forgeml.registry import parse_model_ref

        self.options = options
        self.refs: dict[str, str] = {parse_model_ref(r)[0]: r for r in options.models}
        self.entries: dict[str, ModelEntry] = {}
        self.metrics = metrics or ServerMetrics(self._live)
        # more gauges read at scrape time (the stored monitored values)
        self.gauges: Callable[[], dict[str, list[tuple[dict[str, str], float]]]] | None = None
        self.log: PredictionSink | None = None
        self.load_errors: dict[str, str] = {}
        # models served by their reference because their stored route cannot be served: why
        self.fallbacks: dict[str, str] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="forgeml-predict")
        self._slow = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeml-explain")
        self._background: set[asyncio.Future[Any]] = set()
        self._counters: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}

    @property
    def ready(self) -> bool:
        """Every served model is loaded."""
        return all(name in self.entries for name in self.refs)

    def waiting(self) -> dict[str, str]:
        """Models not loaded yet, with the reason (``loading`` or the last load error)."""
        return {n: self.load_errors.get(n, "loading") for n in self.refs if n not in self.entries}

    async def stop(self) -> None:
        """Finish background work (shadows, retirements) and every queued batch."""
        if self._background:
            # Shadows get a few seconds (the shutdown deadline is short); a retirement's wait
            # is cut short, its batcher stops below with every other.
            _, pending = await asyncio.wait(self._background, timeout=STOP_SECONDS)
            for task in pending:
                task.cancel()
        for entry in list(self.entries.values()):
            for served in entry.versions.values():
                await served.batcher.stop()
        self._executor.shutdown(wait=True)
        self._slow.shutdown(wait=True)

    # -- the table --------------------------------------------------------------------------

    async def install(
        self, name: str, route: Route, fresh: Mapping[int, tuple[LoadedModel, Runner]]
    ) -> None:
        """Serve ``name`` by ``route`` from now on (runs on the event loop): versions kept
        from the current table keep their batcher and cache, ``fresh`` ones start; replaced
        versions stop after a grace period."""
        current = self.entries.get(name)
        versions: dict[int, Served] = {}
        for version in route.versions:
            if current is not None and version in current.versions:
                versions[version] = current.versions[version]
            else:
                model, runner = fresh[version]
                versions[version] = self._served(model, runner)
        self.entries[name] = ModelEntry(
            name=name, ref=self.refs[name], route=route, versions=versions, seed=self.options.seed
        )
        self.load_errors.pop(name, None)
        # What is loaded now lives as long as the server: keep it out of the collector's
        # scans, so that full collections stay short under load.
        gc.freeze()
        if current is not None:
            self.metrics.switches.labels(name).inc()
            for version, served in current.versions.items():
                if version not in versions:
                    self._spawn(self._retire(served))

    def _served(self, model: LoadedModel, runner: Runner) -> Served:
        labels = (model.name, str(model.version))
        batch_rows = self.metrics.batch_rows.labels(*labels)
        batch_seconds = self.metrics.batch_seconds.labels(*labels)
        unseen = self.metrics.unseen

        def observe(rows: int, seconds: float) -> None:
            batch_rows.observe(rows)
            batch_seconds.observe(seconds)

        def on_unseen(column: str, count: int) -> None:
            unseen.labels(*labels, column).inc(count)

        quality = self.metrics.quality
        counters: dict[tuple[str, str], Any] = {}

        def on_issue(column: str, issue: str, count: int) -> None:
            counter = counters.get((column, issue))
            if counter is None:
                counter = counters[(column, issue)] = quality.labels(*labels, column, issue)
            counter.inc(count)

        options = self.options
        batcher = Batcher(
            runner,
            self._executor,
            max_batch_rows=options.max_batch_rows,
            max_wait_ms=options.max_wait_ms,
            max_queue=options.max_queue,
            latency_budget_ms=options.latency_budget_ms,
            observe=observe,
        )
        batcher.start()
        cache = PredictionCache(options.cache_size) if options.cache_size else None
        validator = Validator(
            model.signature,
            unknown_categories=options.unknown_categories,
            max_rows=options.max_rows,
            on_unseen=on_unseen,
            on_issue=on_issue,
            transform=model.apply_pii if model.pii.changed else None,
        )
        return Served(model=model, runner=runner, validator=validator, batcher=batcher, cache=cache)

    async def _retire(self, served: Served) -> None:
        try:
            await asyncio.sleep(min(GRACE_SECONDS, 5 * self.options.poll_interval))
        finally:
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
            reason = self.load_errors.get(name, "it is loading")
            raise RequestError(
                f"Model {name!r} is not ready: {reason}",
                field="model",
                status=503,
                code="not_ready",
                headers={"Retry-After": "1"},
            )
        served = ", ".join(sorted(self.refs))
        raise RequestError(
            f"Model {name!r} is not served here; served: {served}",
            field="model",
            status=404,
            code="not_found",
        )

    def version(self, name: str, version: int) -> Served:
        """One served version of ``name``.

        Raises:
            RequestError: 404 when the model or that version is not served, 503 while loading.
        """
        entry = self.entry(name)
        found = entry.versions.get(version)
        if found is None:
            raise RequestError(
                f"Version {version} of {name!r} is not served; served: {sorted(entry.versions)}",
                field="version",
                status=404,
                code="not_found",
            )
        return found

    def describe(self, name: str, *, signature: bool = False) -> dict[str, Any]:
        """A served model as JSON: reference, readiness, route, versions (and signature).

        Raises:
            RequestError: 404 when ``name`` is not served.
        """
        if name not in self.refs:
            self.entry(name)  # 404
        entry = self.entries.get(name)
        out: dict[str, Any] = {"name": name, "ref": self.refs[name], "ready": entry is not None}
        if entry is not None:
            out["route"] = entry.route.to_dict()
            out["versions"] = sorted(entry.versions)
            if signature:
                out["signature"] = entry.primary.model.signature.to_dict()
        error = self.load_errors.get(name)
        if error is not None:
            out["error"] = error
        fallback = self.fallbacks.get(name)
        if fallback is not None:
            out["fallback"] = fallback
        return out

    # -- prediction ---------------------------------------------------------------------------

    async def predict(
        self,
        name: str,
        rows: Rows,
        *,
        protocol: str,
        request_id: str,
        started: float,
        served: Served | None = None,
        shadow: Served | None = None,
        probabilities: bool = True,
        client_request_id: str | None = None,
    ) -> Outputs:
        """Validate, predict (through the cache and the batcher), log, and copy to a shadow.

        Args:
            name: the served model.
            rows: the decoded rows (``rows.key`` routes sticky assignments).
            protocol: the wire protocol, as logged and counted.
            request_id: the id the prediction is logged under.
            started: ``time.perf_counter()`` when the request arrived.
            served: the version when the caller chose it already (it needed the version's
                signature to decode the request); ``shadow`` goes with it.
            shadow: the shadow chosen with ``served``.
            probabilities: include class probabilities in the outputs.
            client_request_id: the caller's own id of the request (``X-Request-ID``), logged
                beside ``request_id``, which is unique even when a caller reuses its ids.

        Raises:
            RequestError: 404/503 (model), 422/413 (rows), 503 with ``Retry-After`` (overload).
        """
        if served is None:
            served, shadow = self.entry(name).choose(rows.key)
        columns, quality = served.validator.check_quality(rows)
        labels, proba = await self._run(served, columns, rows.n)
        version = served.version
        classes = served.runner.classes
        outputs = Outputs(
            predictions=labels,
            probabilities=None if proba is None or not probabilities else proba,  # type: ignore[arg-type]
            classes=classes if probabilities else None,
            model=name,
            version=version,
            request_id=request_id,
        )
        latency = time.perf_counter() - started
        counters = self._counters.get((name, version, protocol))
        if counters is None:
            name_version = (name, str(version))
            counters = self._counters[(name, version, protocol)] = (
                self.metrics.latency.labels(*name_version),
                self.metrics.requests.labels(*name_version, protocol, "200"),
                self.metrics.rows.labels(*name_version),
            )
        counters[0].observe(latency)
        counters[1].inc()
        counters[2].inc(rows.n)
        self._record(
            name,
            served,
            "primary",
            request_id,
            columns,
            rows.n,
            labels,
            proba,
            latency,
            protocol,
            quality,
            client_request_id,
        )
        if shadow is not None and shadow is not served:
            self._spawn(self._shadow(name, shadow, rows, request_id, protocol, client_request_id))
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
        self,
        name: str,
        served: Served,
        rows: Rows,
        request_id: str,
        protocol: str,
        client_request_id: str | None = None,
    ) -> None:
        started = time.perf_counter()
        counter = self.metrics.shadow
        version = str(served.version)
        try:
            columns, quality = served.validator.check_quality(rows)
            labels, proba = await served.batcher.predict(columns, rows.n)
        except RequestError as e:
            counter.labels(name, version, "shed" if e.status == 503 else "invalid").inc()
            return
        except Exception:
            _log.exception("shadow %s@%s failed", name, version)
            counter.labels(name, version, "error").inc()
            return
        counter.labels(name, version, "ok").inc()
        latency = time.perf_counter() - started
        self._record(
            name,
            served,
            "shadow",
            request_id,
            columns,
            rows.n,
            labels,
            proba,
            latency,
            protocol,
            quality,
            client_request_id,
        )

    def _record(
        self,
        name: str,
        served: Served,
        role: str,
        request_id: str,
        columns: dict[str, list[Any]],
        n: int,
        labels: list[Any],
        proba: np.ndarray | None,
        latency: float,
        protocol: str,
        quality: Quality | None = None,
        client_request_id: str | None = None,
    ) -> None:
        if self.log is None:
            return
        self.log.submit(
            PredictionRecord(
                request_id=request_id,
                model=name,
                version=served.version,
                role=role,
                time_ms=int(time.time() * 1000),
                latency_ms=latency * 1000.0,
                n_rows=n,
                inputs=columns,
                outputs={
                    "predictions": labels,
                    "probabilities": proba,
                    "classes": served.runner.classes,
                },
                protocol=protocol,
                quality=quality,
                client_request_id=client_request_id,
            )
        )

    def log_failure(
        self,
        name: str,
        served: Served | None,
        *,
        request_id: str,
        code: str,
        started: float,
        protocol: str,
        client_request_id: str | None = None,
    ) -> None:
        """Log a prediction request that got no prediction, with its error code (no inputs,
        no outputs): the log counts errors beside predictions. Nothing is logged for a model
        this server does not serve or has not loaded.

        Args:
            name: the model the request named.
            served: the version chosen for it, if it got that far (else the primary).
            request_id: the id it is logged under.
            code: the error code it was answered with.
            started: ``time.perf_counter()`` when the request arrived.
            protocol: the wire protocol.
            client_request_id: the caller's own id of the request.
        """
        if self.log is None:
            return
        if served is None:
            entry = self.entries.get(name)
            if entry is None:
                return
            served = entry.primary
        self.log.submit(
            PredictionRecord(
                request_id=request_id,
                model=name,
                version=served.version,
                role="primary",
                time_ms=int(time.time() * 1000),
                latency_ms=(time.perf_counter() - started) * 1000.0,
                n_rows=0,
                inputs={},
                outputs={},
                protocol=protocol,
                error=code[:64] or "error",
                client_request_id=client_request_id,
            )
        )

    async def explain(self, name: str, rows: Rows) -> dict[str, Any]:
        """Per-feature contributions (SHAP) of the version ``rows.key`` routes to, as JSON.

        Raises:
            RequestError: 404/503 (model), 413 (more than ``EXPLAIN_ROWS`` rows), 422 (rows).
        """
        if rows.n > EXPLAIN_ROWS:
            raise RequestError(
                f"Explanations take at most {EXPLAIN_ROWS} rows per request; got {rows.n}",
                field="body",
                status=413,
                code="too_many_rows",
            )
        served, _ = self.entry(name).choose(rows.key)
        columns = served.validator.check(rows)
        import pandas as pd

        explanation = await asyncio.get_running_loop().run_in_executor(
            self._slow, served.model.explain, pd.DataFrame(columns)
        )
        return {
            "model": name,
            "version": served.version,
            "columns": list(explanation.columns),
            "contributions": np.asarray(explanation.contributions),
            "base_values": np.asarray(explanation.base_values),
            "output": explanation.output,
            "outputs": [o.item() if isinstance(o, np.generic) else o for o in explanation.outputs],
            "method": explanation.method,
        }

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
        if self.gauges is not None:
            out.update(self.gauges())
        return {k: v for k, v in out.items() if v}
