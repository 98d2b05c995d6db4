"""``PredictionSpool``: the prediction log's write-ahead journal on local disk.

Every record the server hands to the prediction log is appended, as one JSON line, to a file of
this process *before* the request is answered (``write``: in the kernel's page cache, so a
process killed with SIGKILL loses nothing it answered), and the file is flushed to the disk
(``fsync``) every time the log's writer takes a batch, and when the log closes (so a machine
crash loses at most the records since the last batch). A file holds ``segment_records``
records; once every record of a file is in the store, the file is deleted. What the store did
not take (it failed, a table was locked, the shutdown deadline passed, the queue was full)
stays on disk, and the next log started on the same folder writes it to the store and deletes
it (``orphans`` / ``read``). Writing a record twice is harmless: the store keeps one row per
request id and role.

Files: ``<folder>/<owner>.lock`` and ``<folder>/<owner>-<n>.jsonl``, ``owner`` unique per log.
The owner holds an exclusive ``flock`` on its lock file while it runs; the kernel releases it
when the process dies, however it dies. A log that can take the lock of another owner knows
that owner is gone and replays its files; workers of one server share a folder safely.

The line is written by the C library's ``write`` called with the GIL held (``ctypes.PyDLL``),
not by ``os.write``, which releases the GIL for the system call: the event loop appends a line
per answer, and each release handed the GIL to a thread waiting for it (the prediction log's
writer, building its batch) until that thread's switch interval ended. Measured with
``benchmarks/serving.py``'s LightGBM model at 32 connections (fresh workspaces, wrk 6 s points
alternated, 3 rounds, load average 5.5-6 on 2 cores): 4,410 / 4,475 / 4,395 req/s with
``os.write``, 5,207 / 5,324 / 5,142 without the release; server CPU 227 / 201 / 207 against
171 / 178 / 159 us a request. A write to a file in the page cache takes microseconds, and the
loop waits for it either way.

Thread safety: ``append`` and ``settle`` are called under the prediction log's lock; ``sync``
and ``close`` may be called from any thread.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from forgeml._json import dumps
from forgeml.store import PredictionRecord
from forgeml.store._encryption import PAYLOAD_PREFIX, PayloadCipher, open_payload

__all__ = ["PredictionSpool"]

_log = logging.getLogger("forgeml.serve")
_SEGMENT = re.compile(r"^(?P<owner>.+)-(?P<n>\d+)\.jsonl$")
_FIELDS = PredictionRecord.__dataclass_fields__
_SPOOL_AAD = b"spool.predictions"
_SEALED = PAYLOAD_PREFIX.encode()


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    fd: int
    journaled: int = 0
    settled: int = 0
    synced: bool = True
    closed: bool = field(default=False)


class PredictionSpool:
    """The journal files of one prediction log.

    Args:
        folder: where the files live (created if missing).
        segment_records: records per file before a new one is started.
    """

    def __init__(
        self,
        folder: Path,
        *,
        segment_records: int = 50_000,
        cipher: PayloadCipher | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.cipher = cipher
        self.folder = folder
        self.segment_records = segment_records
        self.owner = f"{os.getpid()}-{time.time_ns()}-{os.urandom(3).hex()}"
        self._lock_path = folder / f"{self.owner}.lock"
        self._lock_fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._next = 0
        self._sync_lock = threading.Lock()
        self._closed = False

    @property
    def path(self) -> Path:
        return self.folder

    # -- writing --------------------------------------------------------------------------------

    def append(self, record: PredictionRecord) -> int | None:
        """Journal ``record``; its segment number, or ``None`` when it has no JSON form (the
        store will refuse it too) or the spool is closed."""
        if self._closed:
            return None
        try:
            # the dataclass as orjson writes it natively: the same bytes as its dict, at
            # half the cost on the event loop (about 7 against 13 us on a loaded machine)
            line = dumps(record)
        except TypeError:
            try:
                line = dumps(_as_dict(record))
            except TypeError:
                return None
        if self.cipher is not None:  # the workspace encrypts logged payloads at rest
            line = self.cipher.seal(line.decode(), _SPOOL_AAD).encode()
        line += b"\n"
        segment = self._current
        if segment is None or segment.journaled >= self.segment_records:
            segment = self._start_segment()
        _write_all(segment.fd, line)
        segment.journaled += 1
        segment.synced = False
        return segment.number

    def _start_segment(self) -> _Segment:
        number = self._next
        self._next += 1
        path = self.folder / f"{self.owner}-{number}.jsonl"
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        segment = _Segment(number, path, fd)
        self._segments[number] = segment
        previous = self._current
        self._current = segment
        if previous is not None:
            self._drop_if_done(previous)
        return segment

    def settle(self, counts: dict[int, int]) -> None:
        """Records of these segments are in the store (or refused by it for good)."""
        for number, n in counts.items():
            segment = self._segments.get(number)
            if segment is None:
                continue
            segment.settled += n
            if segment is not self._current:
                self._drop_if_done(segment)

    def _drop_if_done(self, segment: _Segment) -> None:
        if segment.settled < segment.journaled:
            return
        del self._segments[segment.number]
        with self._sync_lock:
            segment.closed = True
            os.close(segment.fd)
        segment.path.unlink(missing_ok=True)

    def pending(self) -> int:
        """Records journaled and not settled."""
        return sum(s.journaled - s.settled for s in self._segments.values())

    def sync(self) -> None:
        """Flush every journaled record to the disk (``fsync``)."""
        with self._sync_lock:
            for segment in list(self._segments.values()):
                if not segment.synced and not segment.closed:
                    segment.synced = True
                    os.fsync(segment.fd)

    def close(self) -> int:
        """Flush to disk, delete what the store holds, keep the rest for the next start.

        Returns:
            The number of records kept on disk.
        """
        if self._closed:
            return 0
        self._closed = True
        self.sync()
        kept = 0
        for segment in list(self._segments.values()):
            left = segment.journaled - segment.settled
            with self._sync_lock:
                segment.closed = True
                os.close(segment.fd)
            if left <= 0:
                segment.path.unlink(missing_ok=True)
            kept += max(left, 0)
        self._segments.clear()
        self._current = None
        if kept == 0:
            self._lock_path.unlink(missing_ok=True)
        os.close(self._lock_fd)  # releases the flock
        return kept

    # -- replaying ------------------------------------------------------------------------------

    @staticmethod
    def orphans(folder: Path) -> Iterator[tuple[str, list[Path]]]:
        """The files of owners that are gone, one owner at a time, oldest file first.

        The owner's lock is held while the caller works on its files (until the next item),
        so two logs never replay the same files.
        """
        if not folder.is_dir():
            return
        owners: dict[str, list[tuple[int, Path]]] = {}
        for path in folder.iterdir():
            match = _SEGMENT.match(path.name)
            if match:
                owners.setdefault(match["owner"], []).append((int(match["n"]), path))
            elif path.suffix == ".lock":
                owners.setdefault(path.stem, [])
        for owner, segments in sorted(owners.items()):
            lock_path = folder / f"{owner}.lock"
            try:
                fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        continue  # its owner runs
                    raise
                yield owner, [p for _, p in sorted(segments)]
                # The caller deleted the files it replayed; the lock goes once none is left.
                if not any(p.exists() for _, p in segments):
                    lock_path.unlink(missing_ok=True)
            finally:
                os.close(fd)

    @staticmethod
    def reseal(folder: Path, cipher: PayloadCipher) -> dict[str, int]:
        """Seal the journal files of owners that are gone with ``cipher``'s current key (a key
        rotation): lines in clear and lines of its old keys are rewritten, a torn last line
        (a crash mid-write, never read) is dropped. Each file is replaced whole (a new file,
        ``fsync``, then ``rename``), so a crash leaves the old file or the new one. Files of a
        running log are left alone (its owner holds its lock and writes with the key it
        started with) and counted.

        Returns:
            ``{"files": rewritten, "lines": resealed, "torn": dropped, "in_use": skipped}``.

        Raises:
            ArtifactIntegrityError: a line is sealed with a key ``cipher`` was not given, or
                changed; its file is left as it was.
        """
        counts = {"files": 0, "lines": 0, "torn": 0, "in_use": 0}
        if not folder.is_dir():
            return counts
        free: set[Path] = set()
        for _owner, paths in PredictionSpool.orphans(folder):
            for path in paths:
                free.add(path)
                changed, lines, torn = _resealed(path, cipher)
                if not changed and not torn:
                    continue
                temporary = path.with_name(f".{path.name}.reseal")
                fd = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
                try:
                    _write_all(fd, b"".join(lines))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temporary, path)
                counts["files"] += 1
                counts["lines"] += changed
                counts["torn"] += torn
        if counts["files"]:
            directory = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        counts["in_use"] = sum(
            1 for p in folder.iterdir() if _SEGMENT.match(p.name) and p not in free
        )
        return counts

    @staticmethod
    def read(
        path: Path, *, batch_size: int, cipher: PayloadCipher | None = None
    ) -> Iterator[list[PredictionRecord]]:
        """The records of one journal file in batches; a line that does not parse (a line torn
        by a crash) is skipped with a warning.

        Raises:
            ArtifactIntegrityError: a sealed line and no key, or not the key that sealed it.
        """
        batch: list[PredictionRecord] = []
        bad = 0
        with path.open("rb") as f:
            for line in f:
                if line.startswith(_SEALED) and line.endswith(b"\n"):
                    line = open_payload(
                        cipher, line.strip().decode(), _SPOOL_AAD, f"Journal file {path}"
                    ).encode()
                try:
                    values = orjson.loads(line)
                    batch.append(
                        PredictionRecord(**{k: v for k, v in values.items() if k in _FIELDS})
                    )
                except (orjson.JSONDecodeError, TypeError, AttributeError):
                    bad += 1
                    continue
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch
        if bad:
            _log.warning("%s: %d unreadable line(s) skipped (torn by a crash)", path, bad)


def _resealed(path: Path, cipher: PayloadCipher) -> tuple[int, list[bytes], int]:
    """(lines sealed anew, every line of the file as it is to be, torn lines dropped)."""
    out: list[bytes] = []
    changed = torn = 0
    with path.open("rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                torn += 1  # the reader skips it: nothing was answered from it
                continue
            text = line[:-1].decode()
            if cipher.is_current(text):
                out.append(line)
                continue
            plain = cipher.open(text, _SPOOL_AAD, f"Journal file {path}")
            out.append(cipher.seal(plain, _SPOOL_AAD).encode() + b"\n")
            changed += 1
    return changed, out, torn


def _as_dict(record: PredictionRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in _FIELDS}


def _gil_holding_write() -> Callable[[int, bytes, int], int] | None:
    """The C library's ``write``, called without releasing the GIL (see the module docstring),
    or ``None`` where the C library cannot be loaded so."""
    try:
        write = ctypes.PyDLL(None, use_errno=True).write
    except (OSError, AttributeError, TypeError):
        return None
    write.restype = ctypes.c_ssize_t
    write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    return write  # type: ignore[no-any-return]


_WRITE = _gil_holding_write()


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (a file), holding the GIL when the C library allows."""
    write = _WRITE
    if write is None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return
    while data:
        written = write(fd, data, len(data))
        if written < 0:
            code = ctypes.get_errno()
            if code == errno.EINTR:
                continue
            raise OSError(code, os.strerror(code))
        data = data[written:]
