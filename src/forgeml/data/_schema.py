"""The schema of a table: one logical kind per column, nullability, categories and ranges.

The kind says how a column should be treated (training, serving signatures, drift), which the
storage dtype alone does not tell: an integer column of row numbers is an identifier, a string
column of dates is a datetime. ``Schema`` is immutable and round-trips through JSON.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from forgeml.errors import InputError, NotFoundError

__all__ = [
    "ColumnKind",
    "ColumnSchema",
    "Schema",
    "bin_labels",
    "bin_values",
    "sensitive_values",
]

SCHEMA_FORMAT = "forgeml.schema/1"


class ColumnKind(StrEnum):
    """How a column is to be treated."""

    NUMERIC = "numeric"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    DATETIME = "datetime"
    TEXT = "text"
    IDENTIFIER = "identifier"

    @classmethod
    def parse(cls, value: str, *, column: str | None = None) -> ColumnKind:
        """The kind named ``value`` (case-insensitive).

        Raises:
            InputError: ``value`` names no kind.
        """
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            where = f" for column {column!r}" if column else ""
            raise InputError(
                f"Unknown column type {value!r}{where}; expected one of "
                + ", ".join(k.value for k in cls)
            ) from None


@dataclass(frozen=True, slots=True)
class ColumnSchema:
    """One column.

    Attributes:
        name: the column's name.
        kind: its logical kind.
        nullable: whether it had missing values when the schema was inferred.
        dtype: the pandas dtype it is stored with (``int64``, ``float64``, ``str``...).
        categories: the known values of a categorical or boolean column, sorted; ``None`` when
            there are too many to list (an open set) or for other kinds.
        min: the smallest value (numbers; ISO 8601 text for datetimes), ``None`` if unknown.
        max: the largest value, likewise.
        overridden: the kind was set by the user, not inferred.
        bins: the inner edges that group a numeric sensitive column into ranges for fairness
            audits (``(25, 40, 65)``: below 25, 25 to 40, 40 to 65, 65 and over).
        pii: the PII rule applied to the column's values before they were stored
            (``{"action": "hash" | "mask" | "keep", "reason": ..., "key_id": ...}``), or
            ``None`` for a column stored as given.
    """

    name: str
    kind: ColumnKind
    nullable: bool = True
    dtype: str = "object"
    categories: tuple[Any, ...] | None = None
    min: float | int | str | None = None
    max: float | int | str | None = None
    overridden: bool = False
    bins: tuple[float, ...] | None = None
    pii: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "nullable": self.nullable,
            "dtype": self.dtype,
            "categories": None if self.categories is None else list(self.categories),
            "min": self.min,
            "max": self.max,
            "overridden": self.overridden,
            **({"bins": list(self.bins)} if self.bins is not None else {}),
            **({"pii": dict(self.pii)} if self.pii is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSchema:
        """The column described by ``to_dict``'s output."""
        categories = data.get("categories")
        return cls(
            name=str(data["name"]),
            kind=ColumnKind.parse(data["kind"], column=str(data["name"])),
            nullable=bool(data.get("nullable", True)),
            dtype=str(data.get("dtype", "object")),
            categories=None if categories is None else tuple(categories),
            min=data.get("min"),
            max=data.get("max"),
            overridden=bool(data.get("overridden", False)),
            bins=None if data.get("bins") is None else tuple(float(b) for b in data["bins"]),
            pii=None if data.get("pii") is None else dict(data["pii"]),
        )


@dataclass(frozen=True, slots=True)
class Schema:
    """The columns of a table, in order."""

    columns: tuple[ColumnSchema, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c.name: i for i, c in enumerate(self.columns)})

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnSchema:
        try:
            return self.columns[self._index[name]]
        except KeyError:
            raise NotFoundError(f"No column {name!r} in the schema") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[ColumnSchema]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def of_kind(self, *kinds: ColumnKind | str) -> tuple[str, ...]:
        """Names of the columns whose kind is one of ``kinds``."""
        wanted = {ColumnKind(k) for k in kinds}
        return tuple(c.name for c in self.columns if c.kind in wanted)

    def with_column(self, column: ColumnSchema) -> Schema:
        """A copy with ``column`` replacing the column of the same name."""
        index = self._index[column.name]
        columns = list(self.columns)
        columns[index] = column
        return Schema(tuple(columns))

    def replace(self, name: str, **changes: Any) -> Schema:
        """A copy with fields of column ``name`` changed."""
        return self.with_column(replace(self[name], **changes))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``{"format": ..., "columns": [...]}``)."""
        return {"format": SCHEMA_FORMAT, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """The schema described by ``to_dict``'s output.

        Raises:
            InputError: ``data`` is not a schema document.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("columns"), list):
            raise InputError("A schema document is a mapping with a 'columns' list")
        return cls(tuple(ColumnSchema.from_dict(c) for c in data["columns"]))


def _edge(value: float) -> str:
    return f"{value:g}"


def bin_labels(edges: Sequence[float]) -> list[str]:
    """The names of the ranges ``edges`` cut: ``<25``, ``25-40``, ``40-65``, ``>=65``."""
    inner = [f"{_edge(a)}-{_edge(b)}" for a, b in itertools.pairwise(edges)]
    return [f"<{_edge(edges[0])}", *inner, f">={_edge(edges[-1])}"]


def bin_values(values: Any, edges: Sequence[float]) -> Any:
    """A numeric column as the ranges ``edges`` cut it into (a pandas categorical series;
    missing values stay missing).

    Args:
        values: the numbers (a pandas Series).
        edges: increasing inner edges; a value equal to an edge belongs to the range above it.
    """
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce")
    cut = [-np.inf, *edges, np.inf]
    return pd.cut(numbers, cut, right=False, labels=bin_labels(edges))


def sensitive_values(
    frame: Any, columns: Sequence[str], bins: Mapping[str, Sequence[float]] | None = None
) -> Any:
    """The sensitive columns of a table as a fairness audit groups them: numeric ones in their
    recorded ranges (``bins``; the quartiles for a numeric column without any and with more
    than 10 values), others as they are.

    Args:
        frame: the rows (a DataFrame holding ``columns``).
        columns: the sensitive columns.
        bins: inner edges by column (a dataset version's ``schema[col].bins``).

    Returns:
        A DataFrame with one column per sensitive column, or ``None`` without any.
    """
    import numpy as np
    import pandas as pd

    if not columns:
        return None
    out = {}
    for column in columns:
        series = frame[column]
        edges = (bins or {}).get(column)
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        )
        if edges is None and numeric and series.nunique() > 10:
            edges = sorted(set(np.quantile(series.dropna(), [0.25, 0.5, 0.75]).tolist()))
        out[column] = bin_values(series, edges) if edges else series.reset_index(drop=True)
    return pd.DataFrame({c: pd.Series(v).reset_index(drop=True) for c, v in out.items()})
