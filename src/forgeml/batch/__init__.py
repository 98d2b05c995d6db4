"""Batch scoring: a registered model over CSV or Parquet files larger than memory.

``predict_file("churn@production", "in.parquet", "out.parquet")`` scores a file chunk by
chunk, in input order, behind an executor chosen by configuration (``local``, ``threads``,
``processes``; ``ray`` planned), and reports its progress as events (``ScoringStarted``,
``ChunkScored``, ``ScoringFinished``) to an ``on_event`` callable: it prints nothing itself.

Modules: ``_source`` reads and chunks, ``_scorer`` scores one chunk and finds its bad rows,
``_executors`` runs the scorers, ``_writer`` writes whole-or-nothing files, ``_score`` is the
loop that ties them, ``_events`` what it reports.
"""

from __future__ import annotations

from forgeml.batch._events import (
    BatchEvent,
    BatchResult,
    ChunkScored,
    EventHandler,
    ScoringFinished,
    ScoringStarted,
)
from forgeml.batch._executors import EXECUTORS, Executor
from forgeml.batch._score import ON_ERROR, QUARANTINE_COLUMNS, predict_file

__all__ = [
    "EXECUTORS",
    "ON_ERROR",
    "QUARANTINE_COLUMNS",
    "BatchEvent",
    "BatchResult",
    "ChunkScored",
    "EventHandler",
    "Executor",
    "ScoringFinished",
    "ScoringStarted",
    "predict_file",
]
