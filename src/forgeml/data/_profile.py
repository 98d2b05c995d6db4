"""The profile of a table: per-column statistics, stored with a version as the drift reference.

Values are plain numbers and strings so that the profile is compact JSON (a few kilobytes per
column). Datetime statistics are ISO 8601 text; datetime histograms have edges in seconds since
the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from forgeml.data._schema import ColumnKind
from forgeml.errors import InputError, NotFoundError

__all__ = ["ColumnProfile", "Histogram", "Profile"]

PROFILE_FORMAT = "forgeml.profile/1"


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of values in ``len(edges) - 1`` bins; the last bin includes its right edge."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"edges": list(self.edges), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram | None:
        """The histogram described by ``to_dict``'s output; ``None`` for one whose edges were
        not all finite numbers when stored (JSON wrote them as ``null``): no histogram."""
        edges = data.get("edges") or ()
        if not edges or any(not isinstance(e, int | float) for e in edges):
            return None
        return cls(tuple(float(e) for e in edges), tuple(int(c) for c in data["counts"]))


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Statistics of one column.

    Attributes:
        name: the column.
        kind: its kind in the version's schema.
        count: values present.
        missing: values missing.
        distinct: distinct values present.
        min, max, mean, std: for numbers (``mean``/``std`` are ``None`` otherwise); ``min``,
            ``max`` and ``mean`` are ISO text for datetimes.
        quantiles: ``{"p1": ..., "p5": ..., "p25": ..., "p50": ..., "p75": ..., "p95": ...,
            "p99": ...}`` for numbers and datetimes (ISO text).
        histogram: value counts in equal-width bins (numbers and datetimes).
        top: the most frequent values with their counts, most frequent first.
        top_share: share of present values taken by the most frequent value.
        outliers: values beyond three interquartile ranges from the quartiles (numbers).
        numeric_share: share of present values that parse as numbers (text columns).
        unparseable: values of a datetime column kept as text that do not parse as dates.
        mean_length: mean length in characters (text columns).
        association: strength of association with the target, 0 to 1 (Cramér's V for a
            classification target, the correlation ratio for a regression target).
        predictive_power: how well this column alone predicts the target, 0 (no better than
            the majority class or the mean) to 1 (perfectly).
        digest: the content hash of the column's values.
    """

    name: str
    kind: ColumnKind
    count: int
    missing: int
    distinct: int
    min: float | int | str | None = None
    max: float | int | str | None = None
    mean: float | str | None = None
    std: float | None = None
    quantiles: dict[str, float | str] = field(default_factory=dict)
    histogram: Histogram | None = None
    top: tuple[tuple[Any, int], ...] = ()
    top_share: float = 0.0
    outliers: int = 0
    numeric_share: float | None = None
    unparseable: int = 0
    mean_length: float | None = None
    association: float | None = None
    predictive_power: float | None = None
    digest: str | None = None

    @property
    def missing_share(self) -> float:
        """Share of values missing."""
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "count": self.count,
            "missing": self.missing,
            "distinct": self.distinct,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "quantiles": dict(self.quantiles),
            "histogram": None if self.histogram is None else self.histogram.to_dict(),
            "top": [[value, count] for value, count in self.top],
            "top_share": self.top_share,
            "outliers": self.outliers,
            "numeric_share": self.numeric_share,
            "unparseable": self.unparseable,
            "mean_length": self.mean_length,
            "association": self.association,
            "predictive_power": self.predictive_power,
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        """The column profile described by ``to_dict``'s output."""
        histogram = data.get("histogram")
        return cls(
            name=str(data["name"]),
            kind=ColumnKind(data["kind"]),
            count=int(data["count"]),
            missing=int(data["missing"]),
            distinct=int(data["distinct"]),
            min=data.get("min"),
            max=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            quantiles={k: v for k, v in (data.get("quantiles") or {}).items() if v is not None},
            histogram=None if histogram is None else Histogram.from_dict(histogram),
            top=tuple((value, int(count)) for value, count in data.get("top") or ()),
            top_share=float(data.get("top_share") or 0.0),
            outliers=int(data.get("outliers") or 0),
            numeric_share=data.get("numeric_share"),
            unparseable=int(data.get("unparseable") or 0),
            mean_length=data.get("mean_length"),
            association=data.get("association"),
            predictive_power=data.get("predictive_power"),
            digest=data.get("digest"),
        )


@dataclass(frozen=True, slots=True)
class Profile:
    """The profile of a table.

    Attributes:
        n_rows: rows.
        n_columns: columns.
        columns: one ``ColumnProfile`` per column, in table order.
        memory_bytes: the table's size in memory.
        duplicate_rows: rows equal to an earlier row (``None`` when not computed).
        target: the target column, if one was declared.
        task: ``"classification"`` or ``"regression"`` when there is a target.
        seconds: how long profiling took.
    """

    n_rows: int
    n_columns: int
    columns: tuple[ColumnProfile, ...]
    memory_bytes: int = 0
    duplicate_rows: int | None = None
    target: str | None = None
    task: str | None = None
    seconds: float = 0.0
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c.name: i for i, c in enumerate(self.columns)})

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[self._index[name]]
        except KeyError:
            raise NotFoundError(f"No column {name!r} in the profile") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[ColumnProfile]:
        return iter(self.columns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "format": PROFILE_FORMAT,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "memory_bytes": self.memory_bytes,
            "duplicate_rows": self.duplicate_rows,
            "target": self.target,
            "task": self.task,
            "seconds": self.seconds,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """The profile described by ``to_dict``'s output.

        Raises:
            InputError: ``data`` is not a profile document.
        """
        if not isinstance(data, Mapping) or data.get("format") != PROFILE_FORMAT:
            raise InputError("Not a forgeml profile document")
        return cls(
            n_rows=int(data["n_rows"]),
            n_columns=int(data["n_columns"]),
            columns=tuple(ColumnProfile.from_dict(c) for c in data["columns"]),
            memory_bytes=int(data.get("memory_bytes") or 0),
            duplicate_rows=data.get("duplicate_rows"),
            target=data.get("target"),
            task=data.get("task"),
            seconds=float(data.get("seconds") or 0.0),
        )
