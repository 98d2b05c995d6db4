"""Differences between two tables: schema changes, rows added and removed, changed cells and
the change in each column's distribution.

Rows are compared as multisets of row hashes over the shared columns, so reordered rows are
not reported as changes. Cells are compared when rows line up: by the declared id column when
both versions have the same unique one, else by position when the row counts are equal. The
distribution statistic is the two-sample Kolmogorov-Smirnov distance for numbers and datetimes
and the total variation distance of value frequencies for everything else (both 0 to 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeml.data._hash import hash_table, value_family
from forgeml.data._schema import Schema

__all__ = ["ColumnDiff", "DatasetDiff", "diff_tables"]


@dataclass(frozen=True, slots=True)
class ColumnDiff:
    """How one column changed.

    Attributes:
        name: the column.
        status: ``added``, ``removed``, ``changed`` (values differ) or ``unchanged``.
        kind_before, kind_after: its kinds (``None`` where absent).
        cells_changed: cells whose value differs, when rows line up (``None`` otherwise).
        statistic: the distribution change (KS distance or total variation distance).
        statistic_name: ``"ks"`` or ``"tvd"``.
        missing_before, missing_after: shares of missing values.
    """

    name: str
    status: str
    kind_before: str | None = None
    kind_after: str | None = None
    cells_changed: int | None = None
    statistic: float | None = None
    statistic_name: str | None = None
    missing_before: float | None = None
    missing_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "status": self.status,
            "kind_before": self.kind_before,
            "kind_after": self.kind_after,
            "cells_changed": self.cells_changed,
            "statistic": self.statistic,
            "statistic_name": self.statistic_name,
            "missing_before": self.missing_before,
            "missing_after": self.missing_after,
        }


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """The difference from version ``before`` to version ``after``."""

    before: str
    after: str
    rows_before: int
    rows_after: int
    rows_added: int
    rows_removed: int
    aligned_by: str | None
    schema_changes: tuple[str, ...]
    columns: tuple[ColumnDiff, ...]

    @property
    def changed_columns(self) -> tuple[str, ...]:
        """Columns added, removed or with changed values."""
        return tuple(c.name for c in self.columns if c.status != "unchanged")

    @property
    def identical(self) -> bool:
        """No schema, row or value change."""
        return (
            not self.schema_changes
            and not self.changed_columns
            and not self.rows_added
            and (not self.rows_removed)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "before": self.before,
            "after": self.after,
            "rows_before": self.rows_before,
            "rows_after": self.rows_after,
            "rows_added": self.rows_added,
            "rows_removed": self.rows_removed,
            "aligned_by": self.aligned_by,
            "schema_changes": list(self.schema_changes),
            "changed_columns": list(self.changed_columns),
            "columns": [c.to_dict() for c in self.columns],
        }


def _ks(a: pd.Series, b: pd.Series) -> float:
    def numbers(s: pd.Series) -> np.ndarray:
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            values = s.dropna().to_numpy().view(np.int64).astype(np.float64)
        else:
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
            values = values[~np.isnan(values)]
        return np.sort(values)

    x, y = numbers(a), numbers(b)
    if len(x) == 0 or len(y) == 0:
        return 0.0 if len(x) == len(y) else 1.0
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / len(x)
    cdf_y = np.searchsorted(y, grid, side="right") / len(y)
    return float(np.max(np.abs(cdf_x - cdf_y)))


def _tvd(a: pd.Series, b: pd.Series) -> float:
    p = a.astype("str").value_counts(normalize=True, dropna=True)
    q = b.astype("str").value_counts(normalize=True, dropna=True)
    if p.empty or q.empty:
        return 0.0 if p.empty and q.empty else 1.0
    both = p.index.union(q.index)
    return float(0.5 * np.abs(p.reindex(both, fill_value=0) - q.reindex(both, fill_value=0)).sum())


def _cells_changed(a: pd.Series, b: pd.Series) -> int:
    left, right = a.reset_index(drop=True), b.reset_index(drop=True)
    if value_family(left.dtype) != value_family(right.dtype):
        left, right = left.astype("str"), right.astype("str")
    both_missing = (left.isna() & right.isna()).to_numpy()
    differ = (left != right).to_numpy(dtype=bool, na_value=True)
    return int(np.count_nonzero(differ & ~both_missing))


def _row_changes(a: pd.DataFrame, b: pd.DataFrame, shared: list[str]) -> tuple[int, int]:
    if not shared:
        return len(b), len(a)
    ha, hb = hash_table(a[shared]).rows, hash_table(b[shared]).rows
    ua, ca = np.unique(ha, return_counts=True)
    ub, cb = np.unique(hb, return_counts=True)
    _, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
    kept = int(np.minimum(ca[ia], cb[ib]).sum())
    return len(b) - kept, len(a) - kept


def diff_tables(
    before: pd.DataFrame,
    after: pd.DataFrame,
    *,
    schema_before: Schema,
    schema_after: Schema,
    names: tuple[str, str] = ("before", "after"),
    id_before: str | None = None,
    id_after: str | None = None,
    digests_before: dict[str, str | None] | None = None,
    digests_after: dict[str, str | None] | None = None,
) -> DatasetDiff:
    """Compare two tables with their schemas (see the module docstring for the method)."""
    cols_a, cols_b = list(before.columns), list(after.columns)
    shared = [c for c in cols_a if c in set(cols_b)]
    changes: list[str] = []
    for c in cols_b:
        if c not in schema_before:
            changes.append(f"added column {c!r} ({schema_after[c].kind.value})")
    for c in cols_a:
        if c not in schema_after:
            changes.append(f"removed column {c!r}")
    for c in shared:
        sa, sb = schema_before[c], schema_after[c]
        if sa.kind != sb.kind:
            changes.append(f"{c!r} changed kind: {sa.kind.value} -> {sb.kind.value}")
        if sa.nullable != sb.nullable:
            changes.append(f"{c!r} is {'now' if sb.nullable else 'no longer'} nullable")
        if sa.categories is not None and sb.categories is not None:
            new = sorted(set(map(str, sb.categories)) - set(map(str, sa.categories)))
            gone = sorted(set(map(str, sa.categories)) - set(map(str, sb.categories)))
            if new:
                changes.append(f"{c!r} has new categories: {', '.join(new[:5])}")
            if gone:
                changes.append(f"{c!r} lost categories: {', '.join(gone[:5])}")
    if [c for c in cols_a if c in shared] != [c for c in cols_b if c in shared]:
        changes.append("columns were reordered")

    aligned_by: str | None = None
    left, right = before, after
    if (
        id_before
        and id_before == id_after
        and id_before in shared
        and before[id_before].is_unique
        and after[id_before].is_unique
    ):
        common = pd.Index(before[id_before]).intersection(pd.Index(after[id_before]))
        left = before.set_index(id_before).loc[common].reset_index()
        right = after.set_index(id_before).loc[common].reset_index()
        aligned_by = id_before
    elif len(before) == len(after):
        aligned_by = "position"

    rows_added, rows_removed = _row_changes(before, after, shared)
    columns: list[ColumnDiff] = []
    for c in shared:
        a, b = before[c], after[c]
        numeric = value_family(a.dtype) in ("number", "datetime") and value_family(
            b.dtype
        ) == value_family(a.dtype)
        statistic = _ks(a, b) if numeric else _tvd(a, b)
        cells = _cells_changed(left[c], right[c]) if aligned_by else None
        same_digest = (digests_before or {}).get(c) is not None and (digests_before or {}).get(
            c
        ) == (digests_after or {}).get(c)
        if same_digest:
            changed = False
        elif cells is not None:
            changed = cells > 0 or len(before) != len(after)
        else:
            changed = True
        columns.append(
            ColumnDiff(
                name=c,
                status="changed" if changed else "unchanged",
                kind_before=schema_before[c].kind.value,
                kind_after=schema_after[c].kind.value,
                cells_changed=cells,
                statistic=round(statistic, 6),
                statistic_name="ks" if numeric else "tvd",
                missing_before=float(a.isna().mean()),
                missing_after=float(b.isna().mean()),
            )
        )
    columns += [
        ColumnDiff(c, "removed", kind_before=schema_before[c].kind.value)
        for c in cols_a
        if c not in shared
    ]
    columns += [
        ColumnDiff(c, "added", kind_after=schema_after[c].kind.value)
        for c in cols_b
        if c not in shared
    ]
    return DatasetDiff(
        before=names[0],
        after=names[1],
        rows_before=len(before),
        rows_after=len(after),
        rows_added=rows_added,
        rows_removed=rows_removed,
        aligned_by=aligned_by,
        schema_changes=tuple(changes),
        columns=tuple(columns),
    )
