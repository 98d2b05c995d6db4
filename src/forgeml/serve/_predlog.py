"""The prediction log: records handed over by request handlers, written to the store in batches.

``submit`` is called once per answered request, on the event loop: it appends to a bounded
in-memory queue under a lock and, only when the writer may be waiting for it, notifies a
condition. One daemon thread takes up to ``batch_size`` records at a time and writes them in one
transaction. A failing store is retried with exponential backoff, keeping the batch; the queue
keeps accepting records until it is full, and then drops them (``when_full="drop"``) or makes
the caller wait (``when_full="block"``).

Counters always add up: ``submitted == written + dropped + rejected + spooled + depth``
(``rejected``: records the store refused as invalid, which no retry can fix).

With a ``spool`` folder (what the server uses), nothing answered is lost: ``submit`` first
appends the record to the log's journal on local disk (``PredictionSpool``: one JSON line,
written to the kernel before the request is answered, so a SIGKILL loses nothing; ``fsync``
at every batch the writer takes and at close, so a machine crash loses at most the records
since the last batch). Records the store did not take before ``close`` gave up (store down, a
table locked, the shutdown deadline), and records that found the queue full, stay in the
journal (``spooled``); the next log started on the same folder writes them to the store first
(``replayed``) and deletes the files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, Literal, Protocol

from forgeml.errors import ForgeMLError, InputError
from forgeml.serve._spool import PredictionSpool
from forgeml.store import PredictionRecord
from forgeml.store._encryption import PayloadCipher

__all__ = ["PredictionLog", "PredictionWriter"]

_log = logging.getLogger("forgeml.serve")

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0


class PredictionWriter(Protocol):
    """What the log needs from a store: ``PredictionLogStore.write_predictions``."""

    def write_predictions(
        self, records: list[PredictionRecord], *, on_invalid: Literal["raise", "skip"] = ...
    ) -> int: ...


class PredictionLog:
    """A bounded, non-blocking queue of prediction records written by one background thread.

    Args:
        store: where records are written (a ``PredictionLogStore``).
        capacity: the most records held in memory (queued or being written); a record
            submitted beyond it is dropped or waits, as ``when_full`` says.
        batch_size: the most records written in one transaction.
        interval: how long, in seconds, the writer lets records accumulate into a batch
            before writing fewer than ``batch_size`` (a full batch is written at once).
        when_full: ``drop``: ``submit`` never blocks and returns ``False`` when the log is
            full; ``block``: ``submit`` waits until there is room (back-pressure on the caller).
        spool: a folder for the write-ahead journal (see the module docstring); ``None``
            keeps records in memory only (a record is lost if the process dies first).
        segment_records: records per journal file.
        cipher: seals journal lines (the workspace's encryption key), and opens them on replay.

    Thread safety: ``submit``, ``flush`` and ``close`` may be called from any thread. Records
    are written in the order they were accepted; a record is never written twice (the store
    ignores a record it already holds, so even a retried batch adds no duplicate).

    Raises:
        InputError: a parameter is out of range.
    """

    def __init__(
        self,
        store: PredictionWriter,
        *,
        capacity: int = 100_000,
        batch_size: int = 2_000,
        interval: float = 0.1,
        when_full: str = "drop",
        spool: Path | None = None,
        segment_records: int = 50_000,
        cipher: PayloadCipher | None = None,
    ) -> None:
        for name, value in (("capacity", capacity), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise InputError(
                    f"The `{name}` parameter of PredictionLog must be a positive integer; "
                    f"got {value!r}"
                )
        if not isinstance(interval, int | float) or not interval >= 0:
            raise InputError(
                f"The `interval` parameter of PredictionLog must be a number of seconds >= 0; "
                f"got {interval!r}"
            )
        if when_full not in ("drop", "block"):
            raise InputError(
                f"The `when_full` parameter of PredictionLog must be 'drop' or 'block'; "
                f"got {when_full!r}"
            )
        self.store = store
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval = float(interval)
        self.when_full = when_full
        self._block = when_full == "block"
        self._queue: deque[tuple[PredictionRecord, int | None]] = deque()
        self._spool = (
            None
            if spool is None
            else PredictionSpool(spool, segment_records=segment_records, cipher=cipher)
        )
        self._cipher = cipher
        self.spool_folder = spool
        self._spooled = 0
        self._replayed = 0
        self._in_flight_spooled = False
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)  # the writer waits on it
        self._has_room = threading.Condition(self._lock)  # blocked submitters wait on it
        self._progress = threading.Condition(self._lock)  # flush waits on it
        self._in_flight = 0  # records taken by the writer and not yet settled
        self._accepted = 0  # records queued since the start
        self._settled = 0  # accepted records written, rejected or given up
        self._flushes = 0  # flush calls waiting: the writer skips the batching delay
        self._submitted = 0
        self._written = 0
        self._dropped = 0
        self._rejected = 0
        self._write_errors = 0
        self._closed = False
        self._abandon = False
        self._thread: threading.Thread | None = None

    # -- counters ---------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Records accepted and not written yet (queued, or in the batch being written)."""
        return len(self._queue) + self._in_flight

    @property
    def submitted(self) -> int:
        """Calls to ``submit`` so far, accepted or not."""
        return self._submitted

    @property
    def written(self) -> int:
        """Records written to the store."""
        return self._written

    @property
    def dropped(self) -> int:
        """Records not kept: the log was full (``drop`` mode), closed, or closing timed out."""
        return self._dropped

    @property
    def rejected(self) -> int:
        """Records the store refused as invalid (a request id over 36 characters...)."""
        return self._rejected

    @property
    def spooled(self) -> int:
        """Records kept in the journal on disk for the next start instead of written now."""
        return self._spooled

    @property
    def replayed(self) -> int:
        """Records of earlier logs' journals written to the store by this one."""
        return self._replayed

    @property
    def write_errors(self) -> int:
        """Failed write attempts (each was retried)."""
        return self._write_errors

    @property
    def closed(self) -> bool:
        """``close`` was called: the log accepts no more records."""
        return self._closed

    def stats(self) -> dict[str, Any]:
        """The counters as one consistent snapshot (for a metrics endpoint)."""
        with self._lock:
            return {
                "depth": len(self._queue) + self._in_flight,
                "submitted": self._submitted,
                "written": self._written,
                "dropped": self._dropped,
                "rejected": self._rejected,
                "spooled": self._spooled,
                "replayed": self._replayed,
                "write_errors": self._write_errors,
            }

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> PredictionLog:
        """Start the writer thread (once; later calls do nothing).

        Returns:
            The log itself.
        """
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="forgeml-prediction-log", daemon=True
                )
                self._thread.start()
        return self

    def submit(self, record: PredictionRecord) -> bool:
        """Hand a record over to be written.

        In ``drop`` mode this never blocks: a record that finds the log full is counted in
        ``dropped``. In ``block`` mode it waits until there is room. Records submitted before
        ``start`` are kept and written once the writer starts.

        Returns:
            ``True`` if the record was accepted, ``False`` if it was dropped (the log is full
            in ``drop`` mode, or closed).
        """
        with self._lock:
            self._submitted += 1
            spool = self._spool
            segment = None if spool is None or self._closed else spool.append(record)
            queue = self._queue
            if len(queue) + self._in_flight >= self.capacity and not self._closed:
                if not self._block:
                    if segment is not None:
                        self._spooled += 1  # on disk: written at the next start
                        return True
                    self._dropped += 1
                    return False
                while len(queue) + self._in_flight >= self.capacity and not self._closed:
                    self._has_room.wait()
            if self._closed:
                if segment is not None:
                    self._spooled += 1
                    return True
                self._dropped += 1
                return False
            queue.append((record, segment))
            self._accepted += 1
            n = len(queue)
            # The writer waits for the first record, then for a full batch; notifying only
            # then keeps the common submit to an append.
            if n == 1 or n == self.batch_size:
                self._has_work.notify()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record accepted before this call is written (or rejected).

        Args:
            timeout: the most seconds to wait; ``None`` waits as long as it takes.

        Returns:
            ``True`` when they are all settled, ``False`` on timeout or when the writer was
            never started.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._accepted
            if self._settled >= target:
                return True
            if self._thread is None or not self._thread.is_alive():
                return False
            self._flushes += 1
            self._has_work.notify()
            try:
                while self._settled < target:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._progress.wait(remaining)
                return True
            finally:
                self._flushes -= 1

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting records, write every record still held, stop the writer.

        Submitters blocked in ``block`` mode return ``False``. If the store cannot take the
        remaining records within ``timeout`` seconds, they are given up, counted in
        ``dropped`` and logged as a warning. Closing twice does nothing more.

        Args:
            timeout: the most seconds to wait for the remaining writes; ``None`` waits as
                long as it takes.
        """
        with self._lock:
            self._closed = True
            self._has_room.notify_all()
            self._has_work.notify_all()
            needs_writer = self._thread is None and bool(self._queue)
        if needs_writer:
            self.start()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._close_spool()
            return
        with self._lock:
            self._abandon = True
            lost = len(self._queue)
            kept = sum(1 for _, segment in self._queue if segment is not None)
            self._queue.clear()
            self._spooled += kept
            self._dropped += lost - kept
            if self._spool is not None and self._in_flight:
                # the batch being written is in the journal too, whatever its attempt gives
                self._spooled += self._in_flight
                self._in_flight_spooled = True
            self._has_work.notify_all()
            self._progress.notify_all()
        if self._spool is None:
            _log.warning(
                "The prediction log gave up after %s s: %d queued record(s) lost, %d still "
                "being written",
                timeout,
                lost,
                self._in_flight,
            )
        self._close_spool()

    def _close_spool(self) -> None:
        spool = self._spool
        if spool is None:
            return
        with self._lock:
            kept = spool.close()
        if kept:
            _log.warning(
                "The store did not take %d prediction record(s) in time; they are kept in %s "
                "and written to the store when the next server starts",
                kept,
                spool.path,
            )

    def __enter__(self) -> PredictionLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"PredictionLog(depth={self.depth}, submitted={self._submitted}, "
            f"written={self._written}, dropped={self._dropped}, rejected={self._rejected}, "
            f"write_errors={self._write_errors})"
        )

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        if self.spool_folder is not None:
            self._replay(self.spool_folder)
        while True:
            taken = self._next_batch()
            if taken is None:
                return
            if self._spool is not None:
                self._spool.sync()
            batch = [record for record, _ in taken]
            written = self._write(batch)
            if written and self._spool is not None:
                counts = Counter(segment for _, segment in taken if segment is not None)
                with self._lock:
                    self._spool.settle(counts)

    def _replay(self, folder: Path) -> None:
        """Write the journals that earlier logs left to the store, then delete them; stop
        (leaving them for the next start) when this log is abandoned first."""
        for _owner, paths in PredictionSpool.orphans(folder):
            for path in paths:
                try:
                    for batch in PredictionSpool.read(
                        path, batch_size=self.batch_size, cipher=self._cipher
                    ):
                        if not self._store_with_retries(batch):
                            return
                        with self._lock:
                            self._replayed += len(batch)
                except ForgeMLError as e:  # sealed with a key not given: keep the file
                    _log.error("%s; the file is kept", e)
                    continue
                path.unlink(missing_ok=True)
                _log.info("Prediction records of %s written to the store", path.name)

    def _store_with_retries(self, batch: list[PredictionRecord]) -> bool:
        backoff = _FIRST_BACKOFF
        while True:
            try:
                self.store.write_predictions(batch, on_invalid="skip")
                return True
            except Exception as e:  # keep the files, retry
                with self._lock:
                    self._write_errors += 1
                    if self._abandon or self._closed:
                        return False
                    _log.warning("Replaying spooled prediction records failed; retrying: %s", e)
                    self._has_work.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    def _next_batch(self) -> list[tuple[PredictionRecord, int | None]] | None:
        """The next records to write, ``None`` when the log is closed and empty."""
        with self._lock:
            queue = self._queue
            while not queue:
                if self._closed or self._abandon:
                    return None
                self._has_work.wait()
            # Let a batch fill up for ``interval`` unless closing or someone waits on flush.
            deadline = time.monotonic() + self.interval
            while len(queue) < self.batch_size and not self._closed and not self._flushes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._has_work.wait(remaining)
            n = min(len(queue), self.batch_size)
            batch = [queue.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _write(self, batch: list[PredictionRecord]) -> bool:
        """Write ``batch``, retrying until it is written (``True``) or the log is abandoned."""
        backoff = _FIRST_BACKOFF
        failures = 0
        while True:
            try:
                accepted = self.store.write_predictions(batch, on_invalid="skip")
            except Exception as e:  # any failure: keep the batch and retry
                failures += 1
                with self._lock:
                    self._write_errors += 1
                    if self._abandon:
                        self._settle(0, 0, lost=len(batch))
                        return False
                if failures == 1:
                    _log.warning(
                        "Writing %d prediction record(s) failed; retrying: %s", len(batch), e
                    )
                with self._lock:
                    # a close() or abandon wakes the wait early; retrying sooner is harmless
                    if not self._abandon:
                        self._has_work.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            rejected = len(batch) - accepted
            if rejected:
                _log.warning("The store refused %d invalid prediction record(s)", rejected)
            if failures:
                _log.info("Prediction records written after %d failed attempt(s)", failures)
            with self._lock:
                self._settle(accepted, rejected, lost=0)
            return True

    def _settle(self, written: int, rejected: int, *, lost: int) -> None:
        # called with the lock held
        if self._in_flight_spooled:  # counted as spooled when close gave up on it
            self._in_flight_spooled = False
            self._spooled -= written + rejected
            lost = 0
        self._written += written
        self._rejected += rejected
        if self._spool is not None:
            self._spooled += lost  # still in the journal
        else:
            self._dropped += lost
        self._settled += written + rejected + lost
        self._in_flight = 0
        self._progress.notify_all()
        if self._block:
            self._has_room.notify_all()
