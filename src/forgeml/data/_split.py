"""Reproducible train/validation/test splits: stratified, by time, by group, or random.

A split is a part number per row (0 train, 1 validation, 2 test). The same table, strategy,
fractions and seed give the same assignment on every machine: permutations come from NumPy's
``default_rng(seed)`` (PCG64, stable across releases), sorting is stable.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError

__all__ = [
    "PARTS",
    "STRATEGIES",
    "assign_parts",
    "check_fractions",
    "parts_from_bytes",
    "parts_to_bytes",
]

PARTS = ("train", "validation", "test")
STRATEGIES = ("auto", "stratified", "time", "group", "random")


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Fractions of rows for train, validation and test (two numbers: no validation part).

    Raises:
        InputError: not two or three non-negative numbers summing to 1 with a train part.
    """
    try:
        values = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise InputError(f"Split fractions must be numbers; got {fractions!r}") from None
    if len(values) == 2:
        values = [values[0], 0.0, values[1]]
    if len(values) != 3 or any(not np.isfinite(v) or v < 0 for v in values):
        raise InputError(
            "Split fractions are train,validation,test (or train,test), each >= 0; "
            f"got {fractions!r}"
        )
    if abs(sum(values) - 1.0) > 1e-6 or values[0] <= 0:
        raise InputError(f"Split fractions must sum to 1 with a train part > 0; got {fractions!r}")
    return values[0], values[1], values[2]


def _cuts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    first = round(fractions[0] * n)
    second = round((fractions[0] + fractions[1]) * n)
    return first, second


def _random(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    parts = np.empty(n, dtype=np.int8)
    order = rng.permutation(n)
    first, second = _cuts(n, fractions)
    parts[order[:first]], parts[order[first:second]], parts[order[second:]] = 0, 1, 2
    return parts


def _stratified(
    codes: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """Each class (missing labels are a class of their own) is split in the same fractions."""
    parts = np.empty(len(codes), dtype=np.int8)
    order = np.argsort(codes, kind="stable")
    boundaries = np.flatnonzero(np.diff(codes[order])) + 1
    for members in np.split(order, boundaries):
        shuffled = rng.permutation(members)
        first, second = _cuts(len(shuffled), fractions)
        parts[shuffled[:first]], parts[shuffled[first:second]] = 0, 1
        parts[shuffled[second:]] = 2
    return parts


def _by_time(
    times: np.ndarray, fractions: tuple[float, float, float]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Earliest rows train, then validation, then test; rows sharing a time stay together, so
    the parts' time ranges do not overlap. Rows without a time go to train."""
    n = len(times)
    parts = np.zeros(n, dtype=np.int8)
    present = np.flatnonzero(~np.isnan(times))
    order = present[np.argsort(times[present], kind="stable")]
    ordered = times[order]
    m = len(order)
    first, second = _cuts(m, fractions)
    # move each cut back to the first row with the same time
    first = int(np.searchsorted(ordered, ordered[first], side="left")) if first < m else m
    second = int(np.searchsorted(ordered, ordered[second], side="left")) if second < m else m
    parts[order[first:second]] = 1
    parts[order[second:]] = 2
    return parts, {"missing_time_rows": int(n - m)}


def _by_group(
    groups: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """Whole groups go to one part; groups are shuffled, then filled in until each part holds
    about its fraction of rows."""
    codes, uniques = pd.factorize(groups, use_na_sentinel=False)
    sizes = np.bincount(codes, minlength=len(uniques))
    order = rng.permutation(len(uniques))
    before = np.cumsum(sizes[order]) - sizes[order]
    bounds = np.array([fractions[0], fractions[0] + fractions[1]]) * len(codes)
    group_part = np.empty(len(uniques), dtype=np.int8)
    group_part[order] = np.searchsorted(bounds, before, side="right").astype(np.int8)
    return group_part[codes]


def _times_of(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stamps = pd.to_datetime(series, errors="coerce")
    values = stamps.to_numpy().view(np.int64).astype(np.float64)
    values[stamps.isna().to_numpy()] = np.nan
    return values


def assign_parts(
    frame: pd.DataFrame,
    *,
    strategy: str,
    fractions: tuple[float, float, float],
    seed: int,
    target: str | None = None,
    task: str | None = None,
    time_column: str | None = None,
    id_column: str | None = None,
) -> tuple[np.ndarray, str, dict[str, Any]]:
    """The part of every row.

    ``auto`` splits by time when there is a time column, else by group when there is an id
    column, else stratified by the target for classification, else at random.

    Returns:
        (parts, the strategy used, parameters to record).

    Raises:
        InputError: an unknown strategy, or one whose column is not declared.
    """
    if strategy not in STRATEGIES:
        raise InputError(
            f"Unknown split strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}"
        )
    if strategy == "auto":
        if time_column:
            strategy = "time"
        elif id_column:
            strategy = "group"
        elif target and task == "classification":
            strategy = "stratified"
        else:
            strategy = "random"
    rng = np.random.default_rng(seed)
    params: dict[str, Any] = {"fractions": list(fractions)}
    if strategy == "stratified":
        if not target:
            raise InputError("A stratified split needs a target; add the dataset with --target")
        codes, _ = pd.factorize(frame[target], use_na_sentinel=True)
        parts = _stratified(codes.astype(np.int64), fractions, rng)
        params["column"] = target
    elif strategy == "time":
        if not time_column:
            raise InputError("A time split needs a time column; add the dataset with --time")
        parts, extra = _by_time(_times_of(frame[time_column]), fractions)
        params.update(extra, column=time_column)
    elif strategy == "group":
        if not id_column:
            raise InputError("A group split needs an id column; add the dataset with --id")
        parts = _by_group(frame[id_column].to_numpy(), fractions, rng)
        params["column"] = id_column
    else:
        parts = _random(len(frame), fractions, rng)
    return parts, strategy, params


def parts_to_bytes(parts: np.ndarray) -> bytes:
    """The assignment as a ``.npy`` document (self-describing, byte-for-byte reproducible)."""
    buffer = io.BytesIO()
    np.save(buffer, parts.astype(np.int8), allow_pickle=False)
    return buffer.getvalue()


def parts_from_bytes(data: bytes) -> np.ndarray:
    """The assignment written by ``parts_to_bytes``."""
    return np.load(io.BytesIO(data), allow_pickle=False)
