"""Executors: what runs the scoring of chunks, chosen by configuration.

An executor takes chunks of the model's columns (``submit``) and gives back a future of each
chunk's ``ScoredChunk``; the scoring loop writes them in input order. Kinds:

``local``
    In the calling thread, one chunk after the other (the models' own threads use the cores).
``threads``
    A pool of threads of this process sharing one loaded model (for flavors that release the
    GIL while predicting).
``processes``
    Worker processes, forked from a fork server that imported the model's libraries once
    (spawned where there is none), each loading the model once. This process never forks
    itself: its Arrow and OpenMP thread pools do not survive a fork (LightGBM hangs in a child
    forked after its parent predicted). Until the first worker is ready, a thread of this
    process scores chunks on one core. Each worker limits its OpenMP and Arrow threads to its
    share of the cores.
``ray``
    Planned (team mode: chunks scored over a Ray cluster); not available yet.
``auto``
    ``local`` below four cores (measured on 2 cores: the pool lost to in-process LightGBM by
    1.2-1.6x), else ``processes`` with one worker per core, as long as each gets two chunks.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pyarrow as pa

from forgeml.batch._scorer import ScoredChunk, Scorer
from forgeml.errors import ForgeMLError, InputError

if TYPE_CHECKING:
    from forgeml.config import Settings

__all__ = [
    "EXECUTORS",
    "Executor",
    "InProcess",
    "Processes",
    "Threads",
    "choose",
    "cores",
    "died",
    "plan",
]

EXECUTORS = ("auto", "local", "threads", "processes", "ray")
PLANNED = ("ray",)
_POOL_MIN_CORES = 4


class Executor(Protocol):
    """Runs the scoring of chunks.

    ``submit`` is called from one thread (the scoring loop's); the futures it returns may
    complete in any order and carry the chunk's failure as their exception. ``close`` waits
    for the workers to stop and cancels chunks not yet started.
    """

    name: str
    jobs: int

    def submit(self, table: pa.Table) -> Future[ScoredChunk]:
        """Start scoring one chunk of the model's columns."""
        ...

    def close(self) -> None:
        """Stop every worker."""
        ...


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover - macOS, Windows


def died() -> ForgeMLError:
    """The error of a worker process that disappeared."""
    return ForgeMLError(
        "A scoring process died (out of memory?); try fewer rows per chunk or fewer jobs"
    )


def plan(kind: str, jobs: int | None, rows: int | None, chunk_rows: int) -> tuple[str, int]:
    """The executor kind and worker count for ``kind`` and ``jobs`` as asked.

    Raises:
        InputError: an unknown or planned kind, or ``local`` with more than one job.
    """
    if kind not in EXECUTORS:
        raise InputError(
            f"The `executor` parameter must be one of {', '.join(EXECUTORS)}; got {kind!r}"
        )
    if kind in PLANNED:
        raise InputError(
            f"The {kind!r} executor is planned (team mode) and not available yet; use "
            "'auto', 'local', 'threads' or 'processes'"
        )
    if kind == "local":
        if jobs not in (None, 1):
            raise InputError(f"The 'local' executor scores with one job; got jobs={jobs}")
        return "local", 1
    if kind in ("threads", "processes"):
        return kind, jobs if jobs is not None else cores()
    if jobs is None:
        jobs = cores()
        if jobs < _POOL_MIN_CORES:
            # The models predict on every core already; workers only add their start-up
            # and the copies of each chunk.
            return "local", 1
        if rows is not None:
            # Starting workers costs seconds (their imports), paid back over a few chunks
            # each: at least two chunks per worker, else this process scores them all.
            jobs = min(jobs, math.ceil(rows / chunk_rows) // 2)
    return ("local", 1) if jobs <= 1 else ("processes", jobs)


def choose(kind: str, jobs: int, ref: str, settings: Settings, local: Scorer) -> Executor:
    """The executor of a kind ``plan`` returned."""
    if kind == "local":
        return InProcess(local)
    if kind == "threads":
        return Threads(local, jobs)
    return Processes(ref, settings, local, jobs)


class InProcess:
    """Scores each chunk as it is submitted, in the calling thread."""

    name = "local"
    jobs = 1

    def __init__(self, scorer: Scorer) -> None:
        self._scorer = scorer

    def submit(self, table: pa.Table) -> Future[ScoredChunk]:
        future: Future[ScoredChunk] = Future()
        try:
            future.set_result(self._scorer.score(table))
        except Exception as e:
            future.set_exception(e)
        return future

    def close(self) -> None:
        pass


class Threads:
    """Threads of this process sharing one loaded model."""

    name = "threads"

    def __init__(self, scorer: Scorer, jobs: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.jobs = jobs
        self._scorer = scorer
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="forgeml-batch")

    def submit(self, table: pa.Table) -> Future[ScoredChunk]:
        return self._pool.submit(self._scorer.score, table)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Processes:
    """Worker processes that each load the model once and score the chunks they are given.

    Starting the workers takes as long as importing the model's libraries (seconds), and
    starting the first one blocks until the fork server has imported them; so a thread starts
    them, and until the first is ready another thread of this process scores one chunk at a
    time on one core (``score_while_starting``), while the next chunks wait for the workers.
    """

    name = "processes"
    score_while_starting: ClassVar[bool] = True

    def __init__(self, ref: str, settings: Settings, local: Scorer, jobs: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

        context: Any
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            # Takes effect when the server starts (the first pool of this process).
            flavor = str(local.model.metadata.get("flavor"))
            context.set_forkserver_preload([__name__, *_PRELOAD.get(flavor, ())])
        else:  # pragma: no cover - Windows
            context = multiprocessing.get_context("spawn")
        self.jobs = jobs
        self._local = local
        self._here = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeml-batch")
        self._here_busy: Future[ScoredChunk] | None = None
        self._executor = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_start_worker,
            initargs=(ref, settings, local.probabilities, local.find_all, max(1, cores() // jobs)),
        )
        self._ready: Future[None] = Future()  # a worker is ready, or starting them failed
        self._start_error: BaseException | None = None
        self._lock = threading.Lock()
        self._starter = threading.Thread(target=self._start, args=(jobs,), daemon=True)
        self._starter.start()

    def _start(self, jobs: int) -> None:
        """Start every worker (one task each: the executor starts one process per task)."""
        try:
            for _ in range(jobs):
                self._executor.submit(_worker_ready).add_done_callback(self._note_ready)
        except BaseException as e:  # raised by the next submit
            self._start_error = e
            self._note_ready(None)

    def _note_ready(self, _: Future[None] | None) -> None:
        # A worker that could not load the model is ready too: every chunk it is given
        # raises that error, which reports it.
        with self._lock:
            if not self._ready.done():
                self._ready.set_result(None)

    def submit(self, table: pa.Table) -> Future[ScoredChunk]:
        while not self._ready.done():
            if not self.score_while_starting:
                wait([self._ready])
            elif self._here_busy is None or self._here_busy.done():
                self._here_busy = self._here.submit(self._score_here, table)
                return self._here_busy
            else:
                either: list[Future[Any]] = [self._here_busy, self._ready]
                wait(either, return_when=FIRST_COMPLETED)
        if self._start_error is not None:
            raise self._start_error
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._executor.submit(_score_in_worker, table)
        except BrokenProcessPool as e:
            raise died() from e

    def _score_here(self, table: pa.Table) -> ScoredChunk:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):  # the other cores start the workers
            return self._local.score(table)

    def close(self) -> None:
        self._starter.join()
        self._here.shutdown(wait=True, cancel_futures=True)
        self._executor.shutdown(wait=True, cancel_futures=True)


# What a worker imports to load each flavor, imported once in the fork server.
_PRELOAD: dict[str, tuple[str, ...]] = {
    "lightgbm": ("pandas", "forgeml.registry", "forgeml.store", "lightgbm"),
    "xgboost": ("pandas", "forgeml.registry", "forgeml.store", "xgboost"),
    "sklearn": ("pandas", "forgeml.registry", "forgeml.store", "sklearn", "skops.io"),
}

_worker: Scorer | Exception | None = None
_worker_limits: Any = None


def _start_worker(
    ref: str, settings: Settings, probabilities: bool, find_all: bool, threads: int
) -> None:
    """Load the model once per worker process (the pool's initializer)."""
    global _worker, _worker_limits
    try:
        from threadpoolctl import threadpool_limits

        from forgeml.registry import load
        from forgeml.store import Workspace

        _worker_limits = threadpool_limits(limits=threads)
        pa.set_cpu_count(threads)
        model = load(ref, workspace=Workspace(settings))
        _worker = Scorer(model, probabilities, find_all=find_all)
    except Exception as e:  # given back with the first chunk, as one error in the parent
        _worker = e


def _worker_ready() -> None:
    """Raise the error that kept this worker from loading the model, if any."""
    if isinstance(_worker, Exception):
        raise _worker
    if _worker is None:  # pragma: no cover - the initializer always sets it
        raise ForgeMLError("The scoring process was not started")


def _score_in_worker(table: pa.Table) -> ScoredChunk:
    _worker_ready()
    assert isinstance(_worker, Scorer)
    return _worker.score(table)
