"""``fm.monitor.drift(reference, current)``: one call from two tables to a ``DriftReport``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from forgeml.errors import InputError, NotFoundError, SchemaMismatchError
from forgeml.monitor._detector import DriftDetector
from forgeml.monitor._report import DriftReport

if TYPE_CHECKING:
    from forgeml.store import Workspace

__all__ = ["TableSource", "drift", "read_source"]

TableSource: TypeAlias = pd.DataFrame | str | Path


def read_source(
    source: TableSource, *, role: str, workspace: Workspace | None = None
) -> tuple[pd.DataFrame, str]:
    """A table and its description from a DataFrame, a CSV or Parquet path or ``NAME@V``.

    A string is a file when a file of that name exists, else a dataset reference resolved in
    ``workspace`` (default: the default workspace).

    Raises:
        InputError: the source is not a table, is empty, or names neither a file nor a dataset.
        NotFoundError: no such file or dataset version.
    """
    from forgeml.data._io import read_table

    if isinstance(source, pd.DataFrame):
        if source.shape[0] == 0:
            raise InputError(f"The {role} table is empty (0 rows)")
        return source, f"DataFrame ({source.shape[0]:,} x {source.shape[1]})"
    if isinstance(source, Path) or (isinstance(source, str) and Path(source).expanduser().exists()):
        try:
            frame, where = read_table(Path(source))
        except InputError as e:
            raise InputError(f"The {role} table: {e.message}") from None
        return frame, where
    if isinstance(source, str):
        from forgeml import data
        from forgeml.refs import parse_ref

        looks_like_file = any(source.endswith(s) for s in (".csv", ".parquet", ".gz", ".pq"))
        if looks_like_file or "/" in source:
            raise NotFoundError(f"The {role} table: no file at {source}")
        try:
            parse_ref(source, kind="dataset", aliases=False)
        except InputError:
            raise InputError(
                f"The {role} table must be a CSV or Parquet file or a dataset version NAME@V; "
                f"got {source!r}"
            ) from None
        version = data.get(source, workspace=workspace)
        return data.load(version, workspace=workspace), f"dataset {version.ref}"
    raise InputError(
        f"The {role} table must be a DataFrame, a file path or a dataset version NAME@V; "
        f"got {type(source).__name__}"
    )


def drift(
    reference: TableSource,
    current: TableSource,
    *,
    workspace: Workspace | None = None,
    **params: Any,
) -> DriftReport:
    """Compare a current table with a reference table: per-column and table-level drift.

    Args:
        reference: the table the current one should look like (DataFrame, CSV or Parquet
            path, or dataset version ``NAME@V``).
        current: the table to check, likewise.
        workspace: where dataset versions are read from (default: the default workspace).
        **params: ``DriftDetector`` parameters (``alpha``, ``columns``, ``min_effect``...).

    Returns:
        The report: one ``ColumnDrift`` per column, the domain classifier's result and the
        table-level decision with its rule.

    Raises:
        InputError: a table is empty or unreadable, the reference is too small, a parameter is
            invalid.
        SchemaMismatchError: the two tables have different columns (unless ``columns`` names
            the ones to compare), or a column holds numbers in one and text in the other.
        NotFoundError: no such file or dataset.
    """
    ref, ref_where = read_source(reference, role="reference", workspace=workspace)
    cur, cur_where = read_source(current, role="current", workspace=workspace)
    if params.get("columns") is None:
        ref_names = [str(c) for c in ref.columns]
        cur_names = {str(c) for c in cur.columns}
        only_ref = [c for c in ref_names if c not in cur_names]
        only_cur = sorted(cur_names - set(ref_names))
        if only_ref or only_cur:
            parts = []
            if only_ref:
                parts.append("only in the reference: " + ", ".join(map(repr, only_ref[:10])))
            if only_cur:
                parts.append("only in the current: " + ", ".join(map(repr, only_cur[:10])))
            raise SchemaMismatchError(
                "The reference and current tables have different columns ("
                + "; ".join(parts)
                + "); name the columns to compare with `columns`"
            )
    detector = DriftDetector(**params).fit(ref)
    report = detector.score(cur)
    from dataclasses import replace

    return replace(report, reference=ref_where, current=cur_where)
