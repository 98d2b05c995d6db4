"""Active runs: buffered, crash-safe logging of parameters, metrics, tags and artifacts.

Logging calls only validate and append to an in-memory buffer; one background thread per
process writes every active run's buffer in batches (each batch one transaction) every
``flush_interval`` seconds and beats each run's heartbeat. Ending a run, ``flush()`` and a
normal interpreter exit write everything that is buffered. A process that is killed outright
loses at most the last ``flush_interval`` of points; its run stops beating and is then shown
as lost.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from forgeml.errors import ConflictError, ForgeMLError, InputError, NotFoundError, StoreError
from forgeml.security import Principal, actor_name
from forgeml.store import (
    ArtifactRef,
    Metric,
    RunRecord,
    RunStatus,
    Workspace,
    acting,
    current_acting,
    now_ms,
)
from forgeml.store._runs import check_key, param_to_text
from forgeml.tracking._environment import code_revision, environment

__all__ = ["ActiveRun"]

# Above this many buffered points the logging call writes them itself (back-pressure).
_BUFFER_HARD_LIMIT = 200_000
# Above this many the flusher is woken early.
_BUFFER_SOFT_LIMIT = 20_000


def _to_float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"Metric {key!r} must be a number; got {value!r}") from None
    return number


class ActiveRun:
    """A run this process is recording. Use as a context manager or call ``end()``.

    Thread safe: several threads may log to one run at once.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        experiment: str = "default",
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent: str | ActiveRun | None = None,
        capture_code: bool = True,
        actor: Principal | str | None = None,
    ) -> None:
        self._workspace = workspace
        self.experiment = experiment
        revision, dirty = code_revision() if capture_code else (None, None)
        parent_id = parent.run_id if isinstance(parent, ActiveRun) else parent
        self.run_id: str = workspace.runs.create_run(
            experiment,
            name=name,
            user=actor_name(actor, workspace.settings),
            parent_run_id=parent_id,
            code_revision=revision,
            code_dirty=dirty,
            environment=environment(),
            tags={k: str(v) for k, v in (tags or {}).items()},
        )
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._metrics: list[Metric] = []
        self._params: dict[str, Any] = {}
        self._tags: dict[str, str] = {}
        self._logged_params: dict[str, str] = {}
        self._next_step: dict[str, int] = {}
        self._failure: ForgeMLError | None = None
        self._ended = False
        self._acting = current_acting()  # the flusher thread writes as the run's starter
        _flusher.register(self)

    # -- logging ----------------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter. Parameters are write-once: another value raises ConflictError."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters."""
        checked: dict[str, tuple[Any, str]] = {}
        for key, value in params.items():
            check_key("parameter", key)
            text = param_to_text(value)[0]
            with self._lock:
                old = self._logged_params.get(key)
                if old is not None and old != text:
                    raise ConflictError(
                        f"Parameter {key!r} is already {old}; a parameter cannot change "
                        f"(got {text}). Log it under another name or start a new run"
                    )
            checked[key] = (value, text)
        with self._lock:
            self._check_open()
            for key, (value, text) in checked.items():
                self._logged_params[key] = text
                self._params[key] = value

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one metric point.

        Args:
            key: the metric name.
            value: a number (NaN and infinities are kept).
            step: the step; when omitted, one more than this key's last step in this run.
            timestamp: milliseconds since the epoch; now when omitted.
        """
        check_key("metric", key)
        number = _to_float(key, value)
        when = now_ms() if timestamp is None else int(timestamp)
        with self._lock:
            self._check_open()
            if step is None:
                step = self._next_step.get(key, 0)
            self._next_step[key] = max(self._next_step.get(key, 0), int(step) + 1)
            self._metrics.append(Metric(key, number, int(step), when))
            size = len(self._metrics)
        self._after_append(size)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record several metrics at one step (see ``log_metric`` for the step default)."""
        when = now_ms() if timestamp is None else int(timestamp)
        points = [(check_key("metric", k), _to_float(k, v)) for k, v in metrics.items()]
        with self._lock:
            self._check_open()
            for key, number in points:
                at = self._next_step.get(key, 0) if step is None else int(step)
                self._next_step[key] = max(self._next_step.get(key, 0), at + 1)
                self._metrics.append(Metric(key, number, at, when))
            size = len(self._metrics)
        self._after_append(size)

    def log_batch(self, metrics: list[Metric] | tuple[Metric, ...]) -> None:
        """Record many prepared points at once (the fastest path)."""
        for m in metrics:
            check_key("metric", m.key)
            if not isinstance(m.value, float | int):
                raise InputError(f"Metric {m.key!r} must be a number; got {m.value!r}")
        with self._lock:
            self._check_open()
            for m in metrics:
                self._next_step[m.key] = max(self._next_step.get(m.key, 0), m.step + 1)
            self._metrics.extend(metrics)
            size = len(self._metrics)
        self._after_append(size)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (tags can be overwritten)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        checked = {check_key("tag", k): str(v) for k, v in tags.items()}
        with self._lock:
            self._check_open()
            self._tags.update(checked)

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> ArtifactRef:
        """Store a file or folder in the artifact store and link it to this run.

        Args:
            path: the file or folder.
            name: the name under the run (default: the file or folder name).

        Returns:
            the artifact reference (its digest addresses the content).
        """
        source = Path(path)
        if not source.exists():
            raise InputError(f"Cannot log artifact: nothing at {source}")
        digest, kind = self._workspace.artifacts.put(source)
        size = (
            sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
            if kind == "dir"
            else source.stat().st_size
        )
        return self._link(name or source.name, digest, size, kind)

    def log_bytes(self, data: bytes, name: str) -> ArtifactRef:
        """Store bytes as an artifact named ``name``."""
        digest = self._workspace.artifacts.put_bytes(data)
        return self._link(name, digest, len(data), "file")

    def log_text(self, text: str, name: str) -> ArtifactRef:
        """Store text (UTF-8) as an artifact named ``name``."""
        return self.log_bytes(text.encode("utf-8"), name)

    def _link(self, name: str, digest: str, size: int, kind: str) -> ArtifactRef:
        check_key("artifact", name)
        self._check_open()
        ref = ArtifactRef(name, digest, size, kind, now_ms())
        self._workspace.runs.add_artifact(self.run_id, ref)
        return ref

    # -- writing ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._ended:
            raise ConflictError(f"Run {self.run_id} has ended; it takes no more data")
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _after_append(self, size: int) -> None:
        if size >= _BUFFER_HARD_LIMIT:
            self.flush()
        elif size >= _BUFFER_SOFT_LIMIT:
            _flusher.wake()

    def flush(self) -> None:
        """Write everything buffered now (one transaction)."""
        self._write(raise_errors=True)

    def _write(self, *, raise_errors: bool) -> None:
        with self._write_lock:
            with self._lock:
                points, params, tags = self._metrics, self._params, self._tags
                self._metrics, self._params, self._tags = [], {}, {}
            if not (points or params or tags):
                return
            try:
                with acting(*self._acting) if self._acting else contextlib.nullcontext():
                    self._workspace.runs.log_batch(
                        self.run_id, metrics=points, params=params, tags=tags
                    )
            except StoreError:
                # a passing failure (lock timeout, lost connection): keep the data for later
                with self._lock:
                    self._metrics[:0] = points
                    self._params = {**params, **self._params}
                    self._tags = {**tags, **self._tags}
                if raise_errors:
                    raise
            except (ConflictError, NotFoundError, InputError) as e:
                if raise_errors:
                    raise
                self._failure = e  # reported by the next logging call or end()

    def heartbeat(self) -> None:
        """Tell the store this run's process is alive."""
        self._workspace.runs.heartbeat([self.run_id])

    def end(
        self, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        """Write what is buffered and end the run (finished, failed or killed)."""
        if self._ended:
            return
        failure = None
        try:
            self._check_open()
            self.flush()
        except ForgeMLError as e:
            failure = e
        if failure is not None and status == RunStatus.FINISHED:
            status, error = RunStatus.FAILED, f"{type(failure).__name__}: {failure}"
        self._ended = True
        _flusher.unregister(self)
        self._workspace.runs.end_run(self.run_id, RunStatus(status), error=error)
        if failure is not None:
            raise failure

    # -- reading ----------------------------------------------------------------------------

    @property
    def info(self) -> RunRecord:
        """The run as stored now (buffered data is written first)."""
        if not self._ended:
            self.flush()
        return self._workspace.runs.get_run(self.run_id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit):
            self.end(RunStatus.KILLED, error=exc_type.__name__)
        else:
            self.end(RunStatus.FAILED, error=f"{exc_type.__name__}: {exc}"[:10_000])

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, experiment={self.experiment!r})"


class _Flusher:
    """One daemon thread per process that flushes and beats every active run."""

    def __init__(self) -> None:
        self._runs: weakref.WeakSet[ActiveRun] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._last_beat: dict[str, float] = {}
        atexit.register(self._at_exit)

    def register(self, run: ActiveRun) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread is not ours
                self._thread, self._pid = None, os.getpid()
                self._runs = weakref.WeakSet()
            self._runs.add(run)
            self._last_beat[run.run_id] = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="forgeml-flusher", daemon=True
                )
                self._thread.start()

    def unregister(self, run: ActiveRun) -> None:
        with self._lock:
            self._runs.discard(run)
            self._last_beat.pop(run.run_id, None)

    def wake(self) -> None:
        self._wake.set()

    def _active(self) -> list[ActiveRun]:
        with self._lock:
            return list(self._runs)

    def _loop(self) -> None:
        while True:
            runs = self._active()
            interval = min((r._workspace.settings.flush_interval for r in runs), default=1.0)
            self._wake.wait(interval)
            self._wake.clear()
            for run in self._active():
                try:
                    run._write(raise_errors=False)
                    beat_every = run._workspace.settings.heartbeat_interval
                    if time.monotonic() - self._last_beat.get(run.run_id, 0) >= beat_every:
                        run.heartbeat()
                        self._last_beat[run.run_id] = time.monotonic()
                except Exception:
                    continue

    def _at_exit(self) -> None:
        # A normal exit ends every run still open: failed if an exception is unwinding the
        # interpreter, finished otherwise. Nothing buffered is lost.
        crashed = getattr(sys, "last_type", None)
        for run in self._active():
            try:
                if crashed is not None:
                    run.end(RunStatus.FAILED, error=f"{crashed.__name__}: process ended")
                else:
                    run.end(RunStatus.FINISHED)
            except Exception:
                continue


_flusher = _Flusher()
