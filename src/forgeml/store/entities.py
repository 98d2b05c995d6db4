"""Immutable values the stores return. Rows never leave a store; these do."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = [
    "ArtifactRef",
    "Experiment",
    "Metric",
    "Page",
    "RunRecord",
    "RunStatus",
]


class RunStatus(StrEnum):
    """The state of a run. ``LOST`` is never stored: it is a running run without heartbeat."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


def ms_to_datetime(ms: int | None) -> datetime | None:
    """Milliseconds since the epoch as an aware UTC datetime (``None`` stays ``None``)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    experiment_id: int
    name: str
    created_at: int
    description: str | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric point. ``timestamp`` is milliseconds since the epoch."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0

    @property
    def is_nan(self) -> bool:
        return math.isnan(self.value)


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """An artifact of a run: a name under the run and the content digest it points to."""

    path: str
    digest: str
    size: int
    kind: str  # "file" or "dir"
    created_at: int


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored: its fields, parameters, latest metrics, tags and artifacts."""

    run_id: str
    experiment_id: int
    experiment: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    heartbeat_at: int | None = None
    user: str | None = None
    parent_run_id: str | None = None
    code_revision: str | None = None
    code_dirty: bool | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[ArtifactRef, ...] = ()

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (``None`` while running)."""
        return None if self.end_time is None else (self.end_time - self.start_time) / 1000

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (times as ISO 8601 strings)."""
        start, end = ms_to_datetime(self.start_time), ms_to_datetime(self.end_time)
        return {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status.value,
            "start_time": start.isoformat() if start else None,
            "end_time": end.isoformat() if end else None,
            "duration_s": self.duration_s,
            "user": self.user,
            "parent_run_id": self.parent_run_id,
            "code_revision": self.code_revision,
            "code_dirty": self.code_dirty,
            "environment": self.environment,
            "error": self.error,
            "params": self.params,
            "metrics": {k: (None if math.isnan(v) else v) for k, v in self.metrics.items()},
            "tags": self.tags,
            "artifacts": [
                {"path": a.path, "digest": a.digest, "size": a.size, "kind": a.kind}
                for a in self.artifacts
            ],
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_page_token`` back to get the next one."""

    items: tuple[T, ...]
    next_page_token: str | None = None
