"""The prediction log's two sides, as interfaces: what the server writes, what monitoring reads.

``PredictionLogStore`` (rows in the metadata store's ``predictions`` table) implements both
and is what a workspace opens today. Team mode plans a second implementation for logs too
large for row storage: each flush of the server's log writer becomes one Parquet chunk in the
artifact store (one model, one hour), and an index table in PostgreSQL records each chunk's
model, versions, time range, record, row and error counts and a latency sketch. Readers then
select chunks by time from the index and stream them, and aggregates per window come from the
index without reading chunks. The interfaces and values below are the seam that implementation plugs
into; callers depend on them, not on the table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["PredictionLogReader", "PredictionLogWriter", "PredictionRecord", "WindowStats"]


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One request answered by one model version, as logged.

    Attributes:
        request_id: the request's id (at most 36 characters, a UUID string).
        model: the served model's name.
        version: the version that answered.
        role: ``primary`` (its answer went to the caller) or ``shadow`` (it saw the request
            and its answer was only logged).
        time_ms: when the request arrived, milliseconds since the epoch.
        latency_ms: how long this version took to answer, in milliseconds.
        n_rows: the number of rows predicted (at least 1).
        inputs: input column name -> one value per row (JSON-like values or NumPy arrays).
        outputs: ``{"predictions": [one per row], "probabilities": [[one per class] per row]
            or None, "classes": [class labels] or None}``.
        protocol: the request protocol the caller used (``json``, ``v2``...).
        error: for a request that got no prediction, its error code (``schema_mismatch``,
            ``internal``..., at most 64 characters); then ``outputs`` is empty, ``n_rows``
            may be 0 and ``inputs`` may be empty. ``None`` for a prediction.
        quality: the request's input data-quality issues, column -> issue
            (``out_of_range``, ``unseen_category``, ``unexpected_missing``) -> how many of
            its values have it; ``None`` when there were none. Stored with the outputs
            (their document's ``quality`` key).
        client_request_id: the id the caller gave the request (``X-Request-ID``, at most 64
            characters), kept beside ``request_id``, the log's own unique key (a caller may
            reuse its ids). Stored with the outputs (their document's ``client_request_id``
            key).
    """

    request_id: str
    model: str
    version: int
    role: str
    time_ms: int
    latency_ms: float
    n_rows: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protocol: str
    error: str | None = None
    quality: dict[str, dict[str, int]] | None = None
    client_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Aggregates of one time window of a model's prediction log.

    Attributes:
        start_ms: the window's start (included), ms since the epoch.
        end_ms: its end (excluded).
        requests: the logged requests (records) in the window, failed ones included; the
            latency percentiles and the error rate are computed on these.
        rows: the rows predicted by its successful requests.
        errors: its failed requests.
        latency_ms: percentile (50.0, 90.0...) -> nearest-rank latency in milliseconds.
    """

    start_ms: int
    end_ms: int
    requests: int
    rows: int
    errors: int
    latency_ms: Mapping[float, float]

    @property
    def error_rate(self) -> float:
        """The share of the window's requests that failed."""
        return self.errors / self.requests

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "requests": self.requests,
            "rows": self.rows,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_ms": {f"p{q:g}": v for q, v in self.latency_ms.items()},
        }


class PredictionLogWriter(Protocol):
    """Where the server's log writer stores records.

    Contract: thread safe; a batch is stored whole or not at all; idempotent per
    ``(request_id, role)`` (a retried batch adds nothing); ``InputError`` names an invalid
    record; ``StoreError`` means nothing was written and the batch may be retried.
    """

    def write_predictions(
        self,
        records: Sequence[PredictionRecord],
        *,
        on_invalid: Literal["raise", "skip"] = "raise",
    ) -> int:
        """Store records; return how many were accepted."""
        ...


class PredictionLogReader(Protocol):
    """How monitoring, reports and the CLI read a model's log.

    Contract: thread safe; results are fresh values the store never changes; reads that
    stream (``batches``, ``windows``) hold memory for one page or window and no transaction
    between the items they yield; aggregates are computed where the log lives, not by
    loading it.
    """

    def count_predictions(self, model: str | None = None) -> int:
        """The number of logged records."""
        ...

    def predictions(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        limit: int | None = None,
    ) -> pd.DataFrame:
        """One DataFrame row per predicted row, oldest first."""
        ...

    def batches(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        page_size: int = ...,
        output: Literal["arrow", "pandas"] = "arrow",
    ) -> Iterator[pa.Table | pd.DataFrame]:
        """Consecutive batches of predictions, oldest first."""
        ...

    def windows(
        self,
        model: str,
        *,
        every_ms: int = ...,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        page_size: int = ...,
        output: Literal["arrow", "pandas"] = "arrow",
    ) -> Iterator[tuple[int, pa.Table | pd.DataFrame]]:
        """``(window_start_ms, table)`` per time window holding predictions."""
        ...

    def window_stats(
        self,
        model: str,
        *,
        every_ms: int = ...,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        percentiles: Sequence[float] = ...,
    ) -> list[WindowStats]:
        """Request counts, error rate and latency percentiles per window."""
        ...
