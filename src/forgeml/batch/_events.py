"""What a batch scoring reports while it runs (events) and when it is done (its result).

Batch scoring prints nothing: it hands these frozen values to an ``on_event`` callable, and
the interface that called it decides how to show them (the command line draws a progress bar).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BatchEvent", "BatchResult", "ChunkScored", "ScoringFinished", "ScoringStarted"]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch scoring read and wrote.

    Attributes:
        model: the version that scored (``NAME@VERSION``, an alias resolved once at the start).
        input: the file scored.
        rows: rows scored and written to the output.
        skipped: input rows not scored because a value did not fit the model (with
            ``on_error="skip"`` or ``"quarantine"``; always 0 with ``"fail"``).
        seconds: wall time, from loading the model to the renamed output.
        output: the output file.
        jobs: workers that scored (1: in the calling thread).
        chunks: chunks read.
        executor: what ran the workers: ``local``, ``threads`` or ``processes``.
        quarantine: the file the skipped rows were written to, with their reasons, if any.
    """

    model: str
    input: Path
    rows: int
    skipped: int
    seconds: float
    output: Path
    jobs: int
    chunks: int
    executor: str
    quarantine: Path | None = None

    @property
    def rows_read(self) -> int:
        """Input rows read: scored plus skipped."""
        return self.rows + self.skipped

    @property
    def rows_per_second(self) -> float:
        """Input rows read per second over the whole call."""
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "model": self.model,
            "input": str(self.input),
            "rows_read": self.rows_read,
            "rows": self.rows,
            "skipped": self.skipped,
            "seconds": self.seconds,
            "rows_per_second": self.rows_per_second,
            "output": str(self.output),
            "quarantine": None if self.quarantine is None else str(self.quarantine),
            "jobs": self.jobs,
            "chunks": self.chunks,
            "executor": self.executor,
        }


@dataclass(frozen=True, slots=True)
class ScoringStarted:
    """The model is loaded and the input opened; nothing is scored yet.

    Attributes:
        model: ``NAME@VERSION`` of the model that scores.
        input: the file to score.
        total_rows: rows in the input when known (Parquet metadata), else ``None``.
        total_bytes: the input file's size (CSV), else ``None``.
        jobs: workers that score.
        executor: ``local``, ``threads`` or ``processes``.
    """

    model: str
    input: Path
    total_rows: int | None
    total_bytes: int | None
    jobs: int
    executor: str


@dataclass(frozen=True, slots=True)
class ChunkScored:
    """One more chunk is written (chunks are written in input order).

    Attributes:
        rows: input rows done so far (written plus skipped).
        written: rows written to the output so far.
        skipped: rows skipped so far (values that did not fit the model).
        total_rows: rows in the input when known (Parquet metadata), else ``None``.
        bytes_read: bytes of the input file read so far (CSV), else ``None``.
        total_bytes: the input file's size (CSV), else ``None``.
    """

    rows: int
    written: int
    skipped: int
    total_rows: int | None
    bytes_read: int | None
    total_bytes: int | None

    @property
    def fraction(self) -> float | None:
        """The part done, from rows when their total is known, else from bytes."""
        if self.total_rows:
            return min(1.0, self.rows / self.total_rows)
        if self.total_bytes and self.bytes_read is not None:
            return min(1.0, self.bytes_read / self.total_bytes)
        return None


@dataclass(frozen=True, slots=True)
class ScoringFinished:
    """The output (and quarantine file) are renamed into place.

    Attributes:
        result: what was read and written.
    """

    result: BatchResult


BatchEvent = ScoringStarted | ChunkScored | ScoringFinished
"""Any event a batch scoring emits."""

EventHandler = Callable[[BatchEvent], None]
"""What ``on_event`` takes: a callable given each event, on the calling thread."""
