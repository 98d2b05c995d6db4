"""One vectorised pass over a table that yields both its schema and its profile.

Each column is reduced once: numbers and datetimes are sorted (min, max, quantiles, distinct
values, histogram and outliers are then read off the sorted array by index or binary search);
text is factorised (counts per distinct value), and everything else about text (lengths, whether
values parse as numbers or dates) is computed on the distinct values only, weighted by their
counts. No Python code runs per row.

Association with the target uses the same reduction: every column is cut into at most 32 bins
(quantile bins for numbers, the most frequent values for text, one bin for missing values), and a
contingency table (classification) or per-bin sums (regression) come from one ``np.bincount``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeml.data._profile import ColumnProfile, Histogram, Profile
from forgeml.data._schema import ColumnKind, ColumnSchema, Schema
from forgeml.errors import InputError

__all__ = ["analyze", "infer_schema", "profile"]

QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99}
HISTOGRAM_BINS = 20
TOP_VALUES = 10
MAX_CATEGORIES = 200  # a categorical column lists its categories up to this many
ASSOCIATION_BINS = 32
MAX_CLASSES = 50
_EXACT_RANGE = 65_536
_GRID_CELLS = 4096
_WORKERS = 4
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key|no|number|index)$|^id[_\W]", re.IGNORECASE)
_DATE_LIKE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})")
_BOOLEAN_TEXT = {"true", "false"}
_NS_PER_S = 1_000_000_000


@dataclass
class _Summary:
    """What one pass over a column found; turned into a ``ColumnProfile`` and a ``ColumnSchema``."""

    name: str
    family: str  # bool | number | datetime | text
    dtype: str
    count: int
    missing: int
    distinct: int
    integral: bool = False
    min: Any = None
    max: Any = None
    mean: Any = None
    std: float | None = None
    quantiles: dict[str, Any] = field(default_factory=dict)
    histogram: Histogram | None = None
    top: list[tuple[Any, int]] = field(default_factory=list)
    top_share: float = 0.0
    outliers: int = 0
    numeric_share: float | None = None
    whitespace_share: float | None = None
    mean_length: float | None = None
    date_share: float | None = None
    unparseable: int = 0
    categories: tuple[Any, ...] | None = None
    consecutive: bool = False
    # bin of every row for target association (``n_bins - 1`` is the missing bin)
    bins: np.ndarray | None = None
    n_bins: int = 0


def _interpolated(values: np.ndarray, q: float) -> float:
    position = q * (len(values) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(values) - 1)
    weight = position - low
    return float(values[low]) * (1 - weight) + float(values[high]) * weight


def _histogram(sorted_values: np.ndarray, low: float, high: float) -> Histogram:
    if high <= low:
        return Histogram((float(low), float(high)), (len(sorted_values),))
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    cuts = np.searchsorted(sorted_values, edges[1:-1], side="left")
    counts = np.diff(np.concatenate(([0], cuts, [len(sorted_values)])))
    return Histogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def _runs(sorted_values: np.ndarray) -> tuple[int, np.ndarray]:
    """Distinct count and the start of each run of equal values in a sorted array."""
    if len(sorted_values) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    return len(starts) + 1, starts


def _top_from_runs(
    sorted_values: np.ndarray, starts: np.ndarray, convert: Any
) -> tuple[list[tuple[Any, int]], float]:
    m = len(sorted_values)
    if m == 0:
        return [], 0.0
    bounds = np.concatenate(([0], starts, [m]))
    lengths = np.diff(bounds)
    k = min(TOP_VALUES, len(lengths))
    best = np.argpartition(-lengths, k - 1)[:k] if len(lengths) > k else np.arange(len(lengths))
    best = best[np.lexsort((best, -lengths[best]))]
    top = [(convert(sorted_values[bounds[i]]), int(lengths[i])) for i in best]
    return top, float(lengths[best[0]]) / m


def _quantile_bins(
    values: np.ndarray, present: np.ndarray, missing: np.ndarray | None, integral: bool
) -> tuple[np.ndarray, int]:
    """The quantile bin of every value (``n_bins - 1`` for missing values), without a binary
    search per row: values are mapped to a fine grid by arithmetic, and the grid to bins by a
    lookup table. Integers over a short range map exactly; otherwise the grid spans the 1st to
    99th percentile in 4,096 cells, so a value shares a cell with a bin edge only rarely."""
    m = len(present)
    if m == 0:
        return np.zeros(len(values), dtype=np.int64), 1
    cut_index = (np.arange(1, ASSOCIATION_BINS) * m) // ASSOCIATION_BINS
    edges = np.unique(present[cut_index]).astype(np.float64)
    n_value_bins = len(edges) + 1
    low, high = float(present[0]), float(present[-1])
    if integral and high - low <= _EXACT_RANGE:
        grid: np.ndarray = np.arange(low, high + 1, dtype=np.float64)
        cells = values - present[0]
    else:
        low = _interpolated(present, 0.01)
        high = _interpolated(present, 0.99)
        if high <= low:
            low, high = float(present[0]), float(present[-1])
        if high <= low:
            bins = np.zeros(len(values), dtype=np.int64)
            if missing is not None:
                bins[missing] = n_value_bins
            return bins, n_value_bins + 1
        width = (high - low) / _GRID_CELLS
        if not np.isfinite(width):  # a range beyond the float limit: search each value
            bins = np.searchsorted(edges, values, side="right").astype(np.int64)
            if missing is not None:
                bins[missing] = n_value_bins
            return bins, n_value_bins + 1
        grid = low + np.arange(_GRID_CELLS + 1) * width
        cells = (values.astype(np.float64, copy=False) - low) / width
        np.clip(cells, 0, _GRID_CELLS, out=cells)
    if missing is not None:
        cells[missing] = 0
    lookup = np.searchsorted(edges, grid, side="right")
    bins = lookup[cells.astype(np.intp)]
    if missing is not None:
        bins[missing] = n_value_bins
    return bins, n_value_bins + 1


def _summarize_numbers(name: str, series: pd.Series, values: np.ndarray) -> _Summary:
    n = len(values)
    is_float = values.dtype.kind == "f"
    ordered = np.sort(values)  # NaN sorts last
    if is_float:
        missing = n - int(np.searchsorted(ordered, np.nan)) if n and np.isnan(ordered[-1]) else 0
    else:
        missing = 0
    present = ordered[: n - missing]
    m = len(present)
    s = _Summary(name, "number", str(series.dtype), m, missing, 0)
    if m == 0:
        s.bins, s.n_bins = np.zeros(n, dtype=np.int64), 1
        return s
    distinct, starts = _runs(present)
    s.distinct = distinct
    low, high = present[0], present[-1]
    convert = float if is_float else int
    s.min, s.max = convert(low), convert(high)
    s.mean = float(present.mean())
    s.std = float(present.std(ddof=1)) if m > 1 else 0.0
    s.quantiles = {k: _interpolated(present, q) for k, q in QUANTILES.items()}
    s.histogram = _histogram(present, float(low), float(high))
    if distinct < m:
        s.top, s.top_share = _top_from_runs(present, starts, convert)
    else:
        s.top_share = 1.0 / m
    q1, q3 = s.quantiles["p25"], s.quantiles["p75"]
    iqr = q3 - q1
    if iqr > 0:
        below = int(np.searchsorted(present, q1 - 3 * iqr, side="left"))
        above = m - int(np.searchsorted(present, q3 + 3 * iqr, side="right"))
        s.outliers = below + above
    if is_float:
        stride = present[:: max(1, m // 2000)]
        s.integral = bool(np.all(stride == np.floor(stride))) and bool(
            np.all(present == np.floor(present))
        )
    else:
        s.integral = True
    s.consecutive = s.integral and distinct == m and float(high) - float(low) + 1 == m
    if distinct <= MAX_CATEGORIES and distinct < m:
        s.categories = tuple(convert(present[i]) for i in np.concatenate(([0], starts)))
    s.bins, s.n_bins = _quantile_bins(
        values, present, np.isnan(values) if missing else None, s.integral
    )
    return s


def _summarize_bool(name: str, series: pd.Series) -> _Summary:
    if isinstance(series.dtype, pd.BooleanDtype):
        missing_mask = series.isna().to_numpy()
        values = series.fillna(False).to_numpy(dtype=bool)
    else:
        missing_mask = None
        values = series.to_numpy(dtype=bool)
    n = len(values)
    missing = int(missing_mask.sum()) if missing_mask is not None else 0
    trues = int(np.count_nonzero(values)) - (
        int(np.count_nonzero(values & missing_mask)) if missing_mask is not None else 0
    )
    m = n - missing
    falses = m - trues
    s = _Summary(name, "bool", str(series.dtype), m, missing, int(trues > 0) + int(falses > 0))
    top = sorted([(True, trues), (False, falses)], key=lambda t: -t[1])
    s.top = [t for t in top if t[1] > 0]
    s.top_share = (s.top[0][1] / m) if m else 0.0
    s.categories = (False, True)
    s.mean = trues / m if m else None
    bins = values.astype(np.int64)
    if missing_mask is not None:
        bins[missing_mask] = 2
    s.bins, s.n_bins = bins, 3
    return s


def _iso(ns: float | int) -> str:
    return pd.Timestamp(int(ns)).isoformat()


def _summarize_datetime(name: str, series: pd.Series) -> _Summary:
    raw = series.to_numpy()
    unit_ns = int(pd.Timedelta(1, unit=np.datetime_data(raw.dtype)[0]).value)  # ns per unit
    ints = raw.view(np.int64)
    nat = np.iinfo(np.int64).min
    ordered = np.sort(ints)
    missing = int(np.searchsorted(ordered, nat, side="right"))
    present = ordered[missing:]
    m = len(present)
    s = _Summary(name, "datetime", str(series.dtype), m, missing, 0)
    if m == 0:
        s.bins, s.n_bins = np.zeros(len(ints), dtype=np.int64), 1
        return s
    s.distinct, starts = _runs(present)
    s.min, s.max = _iso(present[0] * unit_ns), _iso(present[-1] * unit_ns)
    s.mean = _iso(float(present.mean()) * unit_ns)
    s.quantiles = {k: _iso(_interpolated(present, q) * unit_ns) for k, q in QUANTILES.items()}
    seconds = unit_ns / _NS_PER_S
    histogram = _histogram(present, float(present[0]), float(present[-1]))
    s.histogram = Histogram(tuple(e * seconds for e in histogram.edges), histogram.counts)
    if s.distinct < m:
        s.top, s.top_share = _top_from_runs(present, starts, lambda v: _iso(int(v) * unit_ns))
    else:
        s.top_share = 1.0 / m
    s.bins, s.n_bins = _quantile_bins(ints, present, ints == nat if missing else None, True)
    return s


def _summarize_text(name: str, series: pd.Series) -> _Summary:
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    n = len(codes)
    counts_all = np.bincount(codes + 1, minlength=len(uniques) + 1)
    missing = int(counts_all[0])
    counts = counts_all[1:]
    m = n - missing
    s = _Summary(name, "text", str(series.dtype), m, missing, len(uniques))
    if m == 0:
        s.bins, s.n_bins = np.zeros(n, dtype=np.int64), 1
        return s
    text = pd.Series(uniques, dtype="str") if len(uniques) else pd.Series([], dtype="str")
    k = min(TOP_VALUES, len(counts))
    best = np.argpartition(-counts, k - 1)[:k] if len(counts) > k else np.arange(len(counts))
    best = best[np.lexsort((best, -counts[best]))]
    s.top = [(str(text.iloc[i]), int(counts[i])) for i in best]
    s.top_share = float(counts[best[0]]) / m
    weights = counts / m
    lengths = text.str.len().to_numpy(dtype=np.float64)
    s.mean_length = float(lengths @ weights)
    s.whitespace_share = float(
        text.str.contains(r"\s", regex=True).to_numpy(dtype=bool).astype(np.float64) @ weights
    )
    numeric = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    parsed_numbers = ~np.isnan(numeric)
    s.numeric_share = float(parsed_numbers.astype(np.float64) @ weights)
    if parsed_numbers.all():
        s.integral = bool(np.all(numeric == np.floor(numeric)))
    probe = text.iloc[: min(200, len(text))]
    if probe.str.match(_DATE_LIKE).to_numpy(dtype=bool).mean() >= 0.9:
        _parse_dates(s, text, counts, weights)
    if len(uniques) <= MAX_CATEGORIES:
        s.categories = tuple(sorted(str(u) for u in text))
    # association bins: the most frequent values, all others together, missing values
    keep = min(ASSOCIATION_BINS - 2, len(counts))
    order = np.argsort(-counts, kind="stable")[:keep]
    lookup = np.full(len(uniques) + 1, keep, dtype=np.int64)
    lookup[0] = keep + 1
    lookup[order + 1] = np.arange(keep)
    s.bins, s.n_bins = lookup[codes + 1], keep + 2
    return s


def _parse_dates(s: _Summary, text: pd.Series, counts: np.ndarray, weights: np.ndarray) -> None:
    import warnings

    with warnings.catch_warnings():
        # "Could not infer format": pandas then parses value by value, which is what we want
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(text, errors="coerce")
    ok = parsed.notna().to_numpy()
    s.date_share = float(ok.astype(np.float64) @ weights)
    s.unparseable = int(counts[~ok].sum())
    if ok.any():
        stamps = parsed[ok]
        s.min, s.max = stamps.min().isoformat(), stamps.max().isoformat()


def _light(summary: _Summary) -> _Summary:
    """The summary without its per-row arrays."""
    summary.bins = None
    return summary


def _summarize(name: str, series: pd.Series) -> _Summary:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return _summarize_bool(name, series)
    if pd.api.types.is_numeric_dtype(dtype):
        # numbers near the float limits overflow the mean, the spread and the bin widths:
        # those statistics come out non-finite and are recorded as unknown (``_known``)
        with np.errstate(over="ignore", invalid="ignore"):
            return _summarize_numbers(name, series, series.to_numpy())
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _summarize_datetime(name, series)
    return _summarize_text(name, series)


# -- kinds ---------------------------------------------------------------------------------


def _infer_kind(s: _Summary) -> ColumnKind:
    unique_rows = s.count >= 20 and s.distinct == s.count
    if s.family == "bool":
        return ColumnKind.BOOLEAN
    if s.family == "datetime":
        return ColumnKind.DATETIME
    if s.family == "number":
        if s.integral and unique_rows and (s.consecutive or _ID_NAME.search(s.name)):
            return ColumnKind.IDENTIFIER
        return ColumnKind.INTEGER if s.integral and s.count else ColumnKind.NUMERIC
    # text
    if s.count == 0:
        return ColumnKind.TEXT
    if s.date_share is not None and s.date_share >= 0.9:
        return ColumnKind.DATETIME
    if s.categories is not None and {str(c).lower() for c in s.categories} <= _BOOLEAN_TEXT:
        return ColumnKind.BOOLEAN if s.distinct == 2 else ColumnKind.CATEGORICAL
    if s.numeric_share == 1.0:
        return ColumnKind.INTEGER if s.integral else ColumnKind.NUMERIC
    wordy = (s.whitespace_share or 0) > 0.5 or (s.mean_length or 0) > 40
    ratio = s.distinct / s.count
    if ratio >= 0.95 and s.count >= 20:
        return ColumnKind.TEXT if wordy else ColumnKind.IDENTIFIER
    if wordy and ratio > 0.5:
        return ColumnKind.TEXT
    return ColumnKind.CATEGORICAL


def _check_override(s: _Summary, kind: ColumnKind, series: pd.Series) -> None:
    """Refuse a kind the values cannot have."""

    def refuse(reason: str) -> InputError:
        return InputError(f"Column {s.name!r} cannot be {kind.value}: {reason}")

    if kind in (ColumnKind.NUMERIC, ColumnKind.INTEGER):
        if s.family == "datetime":
            raise refuse("it holds dates")
        if s.family == "text" and s.numeric_share is not None and s.numeric_share < 1.0:
            example = next((v for v, _ in s.top if _not_number(v)), None)
            raise refuse(
                f"{example!r} is not a number" if example else "not every value is a number"
            )
        if kind is ColumnKind.INTEGER and not s.integral and s.family != "bool":
            raise refuse("it holds fractional values")
    elif kind is ColumnKind.BOOLEAN:
        if s.family != "bool" and s.distinct > 2:
            raise refuse(f"it has {s.distinct} distinct values; a boolean has at most 2")
    elif kind is ColumnKind.DATETIME:
        if s.family in ("number", "bool"):
            raise refuse("numbers are not dates (store them as text or timestamps)")
        if s.family == "text":
            parsed = _dates_of(series)
            bad = series.notna().to_numpy() & parsed.isna().to_numpy()
            if bad.any():
                example = series[bad].iloc[0]
                raise refuse(f"{example!r} is not a date ({int(bad.sum())} values do not parse)")


def _not_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def _dates_of(series: pd.Series) -> pd.Series:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(series, errors="coerce")


def _column_schema(s: _Summary, kind: ColumnKind, overridden: bool) -> ColumnSchema:
    low, high = s.min, s.max
    if s.family == "text" and kind is not ColumnKind.DATETIME:
        low = high = None
    categories = None
    if kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        categories = s.categories
    return ColumnSchema(
        name=s.name,
        kind=kind,
        nullable=s.missing > 0,
        dtype=s.dtype,
        categories=categories,
        min=low,
        max=high,
        overridden=overridden,
    )


# -- target association --------------------------------------------------------------------


@dataclass
class _Target:
    task: str
    codes: np.ndarray | None = None  # classification: class code per row, -1 when missing
    n_classes: int = 0
    values: np.ndarray | None = None  # regression: float per row, NaN when missing
    valid: np.ndarray | None = None  # rows where the target is present (None: all)


def _task_of(kind: ColumnKind, s: _Summary) -> str | None:
    if kind in (ColumnKind.BOOLEAN, ColumnKind.CATEGORICAL, ColumnKind.TEXT):
        return "classification" if s.distinct <= MAX_CLASSES else None
    if kind is ColumnKind.INTEGER and s.distinct <= 20:
        return "classification"
    if kind in (ColumnKind.NUMERIC, ColumnKind.INTEGER):
        return "regression"
    return None


def _target(series: pd.Series, s: _Summary, task: str) -> _Target:
    if task == "classification":
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        codes = codes.astype(np.int64)
        valid = codes >= 0
        return _Target(task, codes, len(uniques), valid=None if valid.all() else valid)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    valid = ~np.isnan(values)
    return _Target(task, values=values, valid=None if valid.all() else valid)


def _associate(bins: np.ndarray, n_bins: int, target: _Target) -> tuple[float, float]:
    """(association, predictive power) of a binned column with the target."""
    if target.valid is not None:
        bins = bins[target.valid]
    n = len(bins)
    if n == 0:
        return 0.0, 0.0
    if target.task == "classification":
        assert target.codes is not None
        codes = target.codes if target.valid is None else target.codes[target.valid]
        k = target.n_classes
        table = np.bincount(bins * k + codes, minlength=n_bins * k).reshape(n_bins, k)
        table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
        rows, cols = table.shape
        if rows < 2 or cols < 2:
            return 0.0, 0.0
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
        chi2 = float(((table - expected) ** 2 / expected).sum())
        cramers_v = float(np.sqrt(chi2 / (n * (min(rows, cols) - 1))))
        base = table.sum(axis=0).max() / n
        accuracy = table.max(axis=1).sum() / n
        power = float((accuracy - base) / (1 - base)) if base < 1 else 0.0
        return min(cramers_v, 1.0), max(power, 0.0)
    assert target.values is not None
    y = target.values if target.valid is None else target.values[target.valid]
    sizes = np.bincount(bins, minlength=n_bins).astype(np.float64)
    sums = np.bincount(bins, weights=y, minlength=n_bins)
    mean = y.mean()
    total = float(((y - mean) ** 2).sum())
    if total == 0:
        return 0.0, 0.0
    occupied = sizes > 0
    between = float((sizes[occupied] * (sums[occupied] / sizes[occupied] - mean) ** 2).sum())
    eta_squared = min(between / total, 1.0)
    return float(np.sqrt(eta_squared)), eta_squared


# -- the pass --------------------------------------------------------------------------------


def analyze(
    frame: pd.DataFrame,
    *,
    target: str | None = None,
    types: Mapping[str, str | ColumnKind] | None = None,
    column_digests: Mapping[str, str] | None = None,
    duplicate_rows: int | None = None,
) -> tuple[Schema, Profile]:
    """The schema and the profile of a table, from one pass over its columns.

    Args:
        frame: the table (canonical: see ``normalize_frame``).
        target: the target column, for association and the task.
        types: kinds that override inference, by column name.
        column_digests: content hashes of the columns, recorded in the profile.
        duplicate_rows: the number of duplicate rows, recorded in the profile.

    Raises:
        InputError: a column named in ``types`` or ``target`` is missing, a kind is unknown, or
            a column's values cannot have the kind asked for.
    """
    started = time.perf_counter()
    names = [str(c) for c in frame.columns]
    overrides = {
        str(col): ColumnKind.parse(str(kind), column=str(col))
        for col, kind in (types or {}).items()
    }
    for column in [*overrides, *([target] if target else [])]:
        _require_column(frame, column)
    # The target is summarised first so that every other column's association with it is
    # computed as soon as that column is summarised; per-row temporaries (bins) are then
    # dropped, and peak memory stays a few columns wide whatever the table's width.
    task: str | None = None
    tgt: _Target | None = None
    associations: dict[str, tuple[float, float]] = {}
    done: dict[str, _Summary] = {}
    if target is not None:
        summary = _summarize(target, frame[target])
        kind = overrides.get(target) or _infer_kind(summary)
        task = _task_of(kind, summary)
        if task is not None:
            tgt = _target(frame[target], summary, task)
        done[target] = _light(summary)

    def work(name: str) -> _Summary:
        summary = _summarize(name, frame[name])
        if tgt is not None and summary.bins is not None:
            associations[name] = _associate(summary.bins, summary.n_bins, tgt)
        return _light(summary)

    # Columns are independent and the heavy kernels (numpy sorts, Arrow hashing) release the
    # GIL, so a few threads profile wide tables faster; results do not depend on the order.
    rest = [n for n in names if n not in done]
    workers = min(_WORKERS, os.cpu_count() or 1, max(len(rest), 1))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done.update(zip(rest, pool.map(work, rest), strict=True))
    else:
        done.update((n, work(n)) for n in rest)
    summaries = [done[n] for n in names]
    kinds: list[ColumnKind] = []
    for name, summary in zip(names, summaries, strict=True):
        if name in overrides:
            _check_override(summary, overrides[name], frame[name])
            kinds.append(overrides[name])
        else:
            kinds.append(_infer_kind(summary))
    schema = Schema(
        tuple(
            _column_schema(summary, kind, summary.name in overrides)
            for summary, kind in zip(summaries, kinds, strict=True)
        )
    )
    columns = tuple(
        _column_profile(s, kind, associations.get(s.name), (column_digests or {}).get(s.name))
        for s, kind in zip(summaries, kinds, strict=True)
    )
    profile = Profile(
        n_rows=len(frame),
        n_columns=len(names),
        columns=columns,
        memory_bytes=int(frame.memory_usage(deep=False, index=False).sum()),
        duplicate_rows=duplicate_rows,
        target=target,
        task=task,
        seconds=round(time.perf_counter() - started, 4),
    )
    return schema, profile


def _column_profile(
    s: _Summary, kind: ColumnKind, association: tuple[float, float] | None, digest: str | None
) -> ColumnProfile:
    def rounded(value: Any) -> Any:
        return round(value, 6) if isinstance(value, float) else value

    # A statistic that overflows (the mean of values near 1e308) is unknown, not infinite: the
    # profile is stored as JSON, which has no infinity, and must read back as written.
    histogram = s.histogram
    if histogram is not None and not np.all(np.isfinite(histogram.edges)):
        histogram = None
    return ColumnProfile(
        name=s.name,
        kind=kind,
        count=s.count,
        missing=s.missing,
        distinct=s.distinct,
        min=_known(s.min),
        max=_known(s.max),
        mean=_known(s.mean),
        std=_known(s.std),
        quantiles={k: v for k, v in s.quantiles.items() if _known(v) is not None},
        histogram=histogram,
        top=tuple(s.top),
        top_share=s.top_share,
        outliers=s.outliers,
        numeric_share=s.numeric_share,
        unparseable=s.unparseable if kind is ColumnKind.DATETIME else 0,
        mean_length=s.mean_length,
        association=None if association is None else rounded(association[0]),
        predictive_power=None if association is None else rounded(association[1]),
        digest=digest,
    )


def _known(value: Any) -> Any:
    """``value``, or ``None`` for a float that is not finite."""
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _require_column(frame: pd.DataFrame, column: str) -> None:
    if column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:12]))
        more = ", ..." if frame.shape[1] > 12 else ""
        raise InputError(f"Column {column!r} is not in the table (columns: {shown}{more})")


def infer_schema(frame: pd.DataFrame) -> Schema:
    """The inferred schema of a table.

    Args:
        frame: any DataFrame; it is brought to the canonical form first.

    Returns:
        One ``ColumnSchema`` per column with its kind, nullability, categories and range.
    """
    from forgeml.data._io import normalize_frame

    return analyze(normalize_frame(frame))[0]


def profile(
    frame: pd.DataFrame,
    *,
    target: str | None = None,
    types: Mapping[str, str | ColumnKind] | None = None,
) -> Profile:
    """Profile a table (not stored; ``forgeml.data.add`` stores the profile with a version).

    Args:
        frame: any DataFrame; it is brought to the canonical form first.
        target: a target column, for the association of every column with it.
        types: kinds that override inference, by column name.
    """
    from forgeml.data._io import normalize_frame

    return analyze(normalize_frame(frame), target=target, types=types)[1]
