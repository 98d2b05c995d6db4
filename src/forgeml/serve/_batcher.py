"""The micro-batcher of one served model version, with load shedding.

Requests put a ``Job(enqueue_time, columns, n, future)`` on a bounded queue and await the
future. One dispatcher task takes the first waiting job plus every job queued behind it (up to
``max_batch_rows`` rows), predicts them in a worker thread as one batch and resolves every
future; a batch that fails is retried one job at a time, and a job that fails alone gets its
exception through ``future.set_exception``. With ``max_wait_ms=0`` (the default, *adaptive*) the
dispatcher never waits for more rows: a lone request is predicted at once, and under load the
batch is whatever arrived while the previous batch ran. The dispatcher sleeps on an event while
the queue is empty (no polling), and ``stop`` wakes it to drain the queue and end.

Overload
    The queue holds at most ``max_queue`` jobs. An online latency model (``LatencyModel``,
    batch seconds = ``a * rows + b``, fitted by exponentially weighted least squares on every
    batch) predicts how long a new job would wait before its own batch starts: what remains of
    the running batch, then the queued rows in batches of ``max_batch_rows``. A job that finds
    the queue full, or whose predicted wait exceeds ``latency_budget_ms``, is refused at once
    with ``Overloaded`` (HTTP 503 with ``Retry-After``: the predicted seconds until the queue
    has drained, at least 1), so that a flood is answered quickly instead of piling up memory
    and latency (MLflow and BentoML queue without bound). A job's own rows are not counted:
    a large request on an idle server is predicted, however long it takes.

Inline answers
    Handing a batch to the worker thread and back costs two thread switches and the GIL's
    hand-over: 0.2-0.7 ms per request on a loaded 2-core machine (profiled: ``SimpleQueue.put``
    of the executor alone took 0.23 ms a call), where a compiled model answers one row in
    0.03-0.5 ms. So a request of at most ``INLINE_ROWS`` rows that finds the version idle (no
    other request inside ``predict``, nothing queued or running) is predicted on the event
    loop itself when the runner's own time on such small batches (the median of the last
    ``INLINE_WINDOW``, after at least ``INLINE_AFTER``), is under
    ``inline_ms`` (default 1 ms). The loop is held at most about 1 ms, little more than the
    hand-over it saves, and only while no other request is ready: the request first yields to
    the loop once, counted in flight, so that requests already readable reach ``predict`` and
    queue, and then it joins their batch instead. Measured with
    ``benchmarks/serving.py``'s fixed auto model (two XGBoost bags and one LightGBM bag on
    Adult, about 0.43 ms a row in the server), medians of 3 rounds of 5 s, servers alternated,
    load average 3-4 on 2 cores: ``inline_ms=0.25`` (the model not inlined) p50 0.75 ms at 1
    connection and 2,702 req/s at 32; ``inline_ms=1`` p50 0.60 ms and 2,661 req/s; 1 ms
    without the yield 0.59 ms but 1,742 req/s (32 concurrent clients answered one by one on
    the loop); the floor (the compiled model under Starlette) 0.42 ms and 2,492 req/s.

Batches on the loop
    Under concurrency requests gather into batches, and a batch of at most ``INLINE_BATCH_ROWS``
    rows is predicted on the event loop too when the runner's own time per row (the median of
    the last ``INLINE_WINDOW`` such batches, after at least ``INLINE_AFTER``, of any size: under
    steady load every batch may be larger than ``INLINE_ROWS``) times its rows is under
    ``inline_ms``: the loop is held
    about as long as for a lone request, once per batch, then yields before the next. In the
    worker thread such a batch waited for the GIL the loop held at every call into the model
    that released it (each wait up to the switch interval): ``benchmarks/serving.py``'s
    LightGBM model at 32 connections gathered batches of 16 rows on average, which took 4.7 ms
    each from the queue to the answer against 0.3 ms on the loop.

    The runner's own time in the worker thread is that thread's CPU time (``own_clock``,
    ``time.thread_time``): its wall time also counts those waits for the GIL, so a busy loop
    would have kept every batch off it. On the loop, which holds the GIL throughout, it is
    the wall time (``clock``): ``time.thread_time`` is a system call, in which the loop spent
    about 40 us a request at 32 connections (py-spy, loaded 2-core machine).

The clocks are injectable (``clock``, ``own_clock``) so that the latency model, shedding and
the choice of the loop are tested on a fake clock with a fake runner.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from forgeml.serve._options import DEFAULT_LATENCY_BUDGET_MS, DEFAULT_MAX_QUEUE
from forgeml.serve._types import RequestError

__all__ = ["Batcher", "Job", "LatencyModel", "Overloaded"]

# Rows of a request that may be predicted on the event loop (see "Inline answers").
INLINE_ROWS = 8
# Small batches timed in the worker thread before any request is predicted inline.
INLINE_AFTER = 5
# Small batches whose median time decides.
INLINE_WINDOW = 16
# The most rows of a batch predicted on the event loop (see "Batches on the loop").
INLINE_BATCH_ROWS = 256


Result = tuple[list[Any], np.ndarray | None]


class BatchRunner(Protocol):
    """What predicts a batch: ``Runner.run`` (``serve/_runners.py``)."""

    def run(self, columns: dict[str, list[Any]], n: int) -> Result: ...


@dataclass(slots=True)
class Job:
    """One request waiting for a batch."""

    enqueue_time: float
    columns: dict[str, list[Any]]
    n: int
    future: asyncio.Future[Result]


class Overloaded(RequestError):
    """The version cannot take the request now: 503 with ``Retry-After`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"{message}; retry in {seconds} s",
            field=None,
            status=503,
            code="overloaded",
            headers={"Retry-After": str(seconds)},
        )
        self.retry_after = seconds


class LatencyModel:
    """Batch duration as ``a * rows + b``, fitted online by exponentially weighted least squares.

    Until two batches of different sizes were seen the intercept is 0 and ``a`` is the mean
    seconds per row (a conservative estimate for small batches).

    Args:
        decay: weight kept by past observations at each new one (0 < decay < 1).
    """

    def __init__(self, *, decay: float = 0.98) -> None:
        self.decay = decay
        self.observations = 0
        self._w = self._x = self._y = self._xx = self._xy = 0.0

    def observe(self, rows: int, seconds: float) -> None:
        """Add one batch's size and duration."""
        d = self.decay
        x, y = float(rows), max(0.0, float(seconds))
        self._w = self._w * d + 1.0
        self._x = self._x * d + x
        self._y = self._y * d + y
        self._xx = self._xx * d + x * x
        self._xy = self._xy * d + x * y
        self.observations += 1

    @property
    def coefficients(self) -> tuple[float, float]:
        """``(a, b)``: seconds per row and seconds per batch (both >= 0)."""
        if self.observations == 0 or self._x <= 0:
            return 0.0, 0.0
        denominator = self._w * self._xx - self._x * self._x
        if denominator <= 1e-9 * max(1.0, self._w * self._xx):
            return self._y / self._x, 0.0
        a = (self._w * self._xy - self._x * self._y) / denominator
        b = (self._y - a * self._x) / self._w
        if a < 0:
            return 0.0, self._y / self._w
        if b < 0:
            return self._xy / self._xx, 0.0
        return a, b

    def predict(self, rows: int) -> float:
        """Predicted seconds of one batch of ``rows`` rows."""
        a, b = self.coefficients
        return a * rows + b


class Batcher:
    """Gathers concurrent requests for one model version into batches; sheds load.

    Args:
        runner: what predicts a batch.
        executor: the threads batches run on (the event loop runs only a lone small request
            of a model whose small batches take less than ``inline_ms``).
        max_batch_rows: the most rows in one batch (a single larger request runs alone).
        max_wait_ms: how long to wait for more rows once a request is waiting (0: adaptive).
        max_queue: the most jobs waiting; beyond, requests get 503.
        latency_budget_ms: the longest predicted wait accepted; beyond, requests get 503.
        observe: called with each batch's row count and the seconds it took.
        clock: seconds, monotonic (``time.perf_counter`` by default).
        inline_ms: predict a lone small request, or a batch, on the event loop when the
            runner's own time on it is predicted below this (0: never; see the module
            docstring).
        own_clock: seconds of the runner's own work in the worker thread, read there (that
            thread's CPU time, ``time.thread_time``, by default).
    """

    def __init__(
        self,
        runner: BatchRunner,
        executor: Executor,
        *,
        max_batch_rows: int = 512,
        max_wait_ms: float = 0.0,
        max_queue: int = DEFAULT_MAX_QUEUE,
        latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS,
        observe: Callable[[int, float], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        inline_ms: float = 1.0,
        own_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.runner = runner
        self.inline = inline_ms / 1000.0
        self._in_flight = 0
        self._small_window: deque[float] = deque(maxlen=INLINE_WINDOW)
        self._small_seconds = 0.0  # the runner's own time on small batches (median)
        self._small_batches = 0
        self._row_window: deque[float] = deque(maxlen=INLINE_WINDOW)
        self._row_seconds = math.inf  # the runner's own time per row of a batch (median)
        self.inlined = 0
        self.batches_inline = 0
        self._own_clock = own_clock
        self._executor = executor
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.budget = latency_budget_ms / 1000.0
        self._observe = observe
        self.clock = clock
        self.latency = LatencyModel()
        self._queue: deque[Job] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._running: tuple[float, int] | None = None  # start time and rows of the batch
        self.batches = 0
        self.rows = 0
        self.shed = 0

    @property
    def depth(self) -> int:
        """Jobs waiting for a batch."""
        return len(self._queue)

    def start(self) -> None:
        """Start the dispatcher task on the running event loop."""
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._dispatch())

    async def stop(self) -> None:
        """Predict what is queued, then end the dispatcher (new requests get 503)."""
        self._closing = True
        if self._task is None:
            return
        assert self._wakeup is not None
        self._wakeup.set()
        await self._task
        self._task = None

    def predicted_wait(self) -> float:
        """Seconds a job queued now would wait before its batch starts."""
        wait = 0.0
        if self._running is not None:
            started, rows = self._running
            wait = max(0.0, self.latency.predict(rows) - (self.clock() - started))
        queued = self._queued_rows
        if queued:
            a, b = self.latency.coefficients
            wait += a * queued + b * math.ceil(queued / self.max_batch_rows)
        return wait

    async def predict(self, columns: dict[str, list[Any]], n: int) -> Result:
        """Predictions and probabilities for one request's rows.

        Raises:
            Overloaded: the queue is full or the predicted wait exceeds the budget.
            RequestError: (503) the batcher is stopped.
        """
        if self._closing or self._task is None:
            raise RequestError(
                "This model version is being replaced or the server is stopping",
                status=503,
                code="not_ready",
                headers={"Retry-After": "1"},
            )
        if len(self._queue) >= self.max_queue:
            self.shed += 1
            raise Overloaded(
                f"The queue of this model version is full ({self.max_queue} requests)",
                self.predicted_wait(),
            )
        if self.latency.observations and (wait := self.predicted_wait()) > self.budget:
            self.shed += 1
            raise Overloaded(
                f"The predicted wait ({wait * 1000:.0f} ms) exceeds the latency budget "
                f"({self.budget * 1000:.0f} ms)",
                wait,
            )
        if (
            n <= INLINE_ROWS
            and self._in_flight == 0
            and not self._queue
            and self._running is None
            and self._small_batches >= INLINE_AFTER
            and self._small_seconds < self.inline
        ):
            # Yield to the loop once, counted in flight: requests that are already readable
            # (concurrent clients) reach ``predict`` meanwhile and queue; then this one joins
            # them in a batch instead of answering them one by one on the loop.
            self._in_flight += 1
            try:
                await asyncio.sleep(0)
            finally:
                self._in_flight -= 1
            if not self._queue and self._running is None:
                return self._run_inline(columns, n)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(Job(self.clock(), columns, n, future))
        self._queued_rows += n
        assert self._wakeup is not None
        self._wakeup.set()
        self._in_flight += 1
        try:
            return await future
        finally:
            self._in_flight -= 1

    def _run_inline(self, columns: dict[str, list[Any]], n: int) -> Result:
        """One lone small request predicted on the event loop (see the module docstring)."""
        started = self.clock()
        result = self.runner.run(columns, n)
        seconds = self.clock() - started  # its own: the loop held the GIL throughout
        self._small(seconds)
        self._per_row(n, seconds)
        self.latency.observe(n, seconds)
        self.batches += 1
        self.rows += n
        self.inlined += 1
        if self._observe is not None:
            self._observe(n, seconds)
        return result

    def _small(self, seconds: float) -> None:
        """One more measurement of the runner's own time on a small batch: the median of the
        last ``INLINE_WINDOW`` (a median, not a mean: on a busy machine a call that lost the
        CPU takes milliseconds, which says nothing about the model)."""
        self._small_seconds = _median_with(self._small_window, seconds)
        self._small_batches += 1

    def _per_row(self, rows: int, seconds: float) -> None:
        """One more measurement of the runner's own time per row of a batch of at most
        ``INLINE_BATCH_ROWS`` rows: the median of the last ``INLINE_WINDOW``."""
        if rows > INLINE_BATCH_ROWS:
            return
        self._row_seconds = _median_with(self._row_window, seconds / rows)

    def _on_loop(self, rows: int) -> bool:
        """Whether a batch of ``rows`` rows is predicted on the event loop (see "Batches on
        the loop")."""
        return (
            rows <= INLINE_BATCH_ROWS
            and len(self._row_window) >= INLINE_AFTER
            and rows * self._row_seconds < self.inline
        )

    def _timed(
        self, columns: dict[str, list[Any]], rows: int, clock: Callable[[], float]
    ) -> tuple[Result, float]:
        """The runner's answer and its own seconds on ``clock``."""
        started = clock()
        result = self.runner.run(columns, rows)
        return result, clock() - started

    def _take(self) -> tuple[list[Job], int]:
        first = self._queue.popleft()
        batch, rows = [first], first.n
        while self._queue and rows + self._queue[0].n <= self.max_batch_rows:
            job = self._queue.popleft()
            batch.append(job)
            rows += job.n
        self._queued_rows -= rows
        return batch, rows

    async def _dispatch(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            if self.max_wait > 0 and not self._closing:
                await self._fill(wakeup)
            batch, rows = self._take()
            await self._run(batch, rows)

    async def _fill(self, wakeup: asyncio.Event) -> None:
        """Wait up to ``max_wait`` after the first job's arrival for a full batch."""
        deadline = self._queue[0].enqueue_time + self.max_wait
        while self._queued_rows < self.max_batch_rows and not self._closing:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _run(self, batch: list[Job], rows: int) -> None:
        loop = asyncio.get_running_loop()
        if len(batch) == 1:
            columns = batch[0].columns
        else:
            columns = {name: [] for name in batch[0].columns}
            for job in batch:
                for name, values in job.columns.items():
                    columns[name].extend(values)
        here = self._on_loop(rows)
        started = self.clock()
        self._running = (started, rows)
        try:
            if here:  # the loop holds the GIL throughout: its wall time is the runner's own
                (labels, proba), own = self._timed(columns, rows, self.clock)
            else:
                (labels, proba), own = await loop.run_in_executor(
                    self._executor, self._timed, columns, rows, self._own_clock
                )
        except Exception as e:  # the whole batch failed: retry each request alone
            self._running = None
            if len(batch) > 1:
                for job in batch:
                    await self._run([job], job.n)
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(e)
            return
        self._running = None
        seconds = self.clock() - started
        if rows <= INLINE_ROWS and self.inline > 0:
            self._small(own)
        self._per_row(rows, own)
        self.latency.observe(rows, seconds)
        self.batches += 1
        self.batches_inline += here
        self.rows += rows
        if self._observe is not None:
            self._observe(rows, seconds)
        start = 0
        for job in batch:
            if not job.future.done():
                end = start + job.n
                job.future.set_result(
                    (labels[start:end], None if proba is None else proba[start:end])
                )
            start += job.n
        if here:  # let the answers leave and new requests in before the next batch
            await asyncio.sleep(0)


def _median_with(window: deque[float], value: float) -> float:
    """The median of ``window`` (bounded) once ``value`` is appended to it."""
    window.append(value)
    return sorted(window)[len(window) // 2]
