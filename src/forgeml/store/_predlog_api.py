"""The prediction log's two sides, as interfaces: what the server writes, what monitoring reads.

``PredictionLogStore`` (rows in the metadata store's ``predictions`` table) implements both
and is what a workspace opens today. Team mode plans a second implementation for logs too
large for row storage: each flush of the server's log writer becomes one Parquet chunk in the
artifact store (one model, one hour), and an index table in PostgreSQL records each chunk's
model, versions, time range, record, row and error counts and a latency sketch. Readers then
select chunks by time from the index and stream them, and aggregates per window come from the
index without reading chunks. The interfaces below are the seam that implementation plugs
into; callers depend on them, not on the table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from forgeml.store._predlog import PredictionRecord, WindowStats

__all__ = ["PredictionLogReader", "PredictionLogWriter"]


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
