"""Column kinds, task detection and the checks on the target.

Kinds are the dataset schema's vocabulary: numeric, integer, boolean, categorical, datetime,
text, identifier. When the caller gives none, ``infer_column_kinds`` guesses them from dtypes
and values with a few plain rules (documented on the function), so a schema from the datasets
capability and a bare DataFrame go through the same code.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from forgeml.errors import InputError

__all__ = [
    "KINDS",
    "MIN_CLASS_ROWS",
    "MIN_ROWS",
    "TASKS",
    "detect_task",
    "infer_column_kinds",
    "infer_kind",
]

KINDS = ("numeric", "integer", "boolean", "categorical", "datetime", "text", "identifier")
TASKS = ("binary", "multiclass", "regression")

# Fewer rows than this cannot be split into a test set and cross-validation folds sensibly.
MIN_ROWS = 20
# One row of a class goes to the test split and two to the folds (2-fold CV at the least).
MIN_CLASS_ROWS = 3
# An integer-valued target with at most this many distinct values is taken as classes.
_MAX_INTEGER_CLASSES = 10

_ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key)$|^(id|no|index|row|rownum)$", re.IGNORECASE)
_DATE_LIKE = re.compile(r"\d{1,4}[-/:.]\d{1,2}")
_SAMPLE = 2000


def infer_kind(series: pd.Series) -> str:
    """Guess the kind of one column.

    Rules, in order: boolean dtype -> ``boolean``; datetime dtype -> ``datetime``; an integer
    column whose values are all distinct and that is named like a key (``id``, ``*_id``,
    ``No``...) or numbers rows (evenly spaced once sorted: 0, 1, 2...) -> ``identifier``;
    other integers -> ``integer``; floats -> ``numeric``; pandas categories ->
    ``categorical``; strings that all parse as numbers -> ``numeric``, as dates ->
    ``datetime``; distinct short strings without spaces -> ``identifier``; long or wordy
    distinct strings -> ``text``; other strings -> ``categorical``.

    Args:
        series: the column.

    Returns:
        One of ``KINDS``.
    """
    values = series.dropna()
    n = len(values)
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_integer_dtype(dtype):
        if n >= MIN_ROWS and values.is_unique:
            steps = np.diff(np.sort(values.to_numpy()))
            counts_rows = bool(np.all(steps == steps[0]))  # a row number, perhaps sampled
            if counts_rows or _ID_NAME.search(str(series.name)):
                return "identifier"
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if n == 0:
        return "categorical"
    sample = values.iloc[:_SAMPLE].astype(str)
    numbers = pd.to_numeric(sample, errors="coerce")
    if numbers.notna().all():
        return "numeric"
    if sample.str.contains(_DATE_LIKE).all() and _parse_dates(sample).notna().all():
        return "datetime"
    lengths = sample.str.len()
    distinct = values.is_unique and n >= MIN_ROWS
    if distinct and lengths.mean() <= 40 and not sample.str.contains(r"\s").any():
        return "identifier"
    words = sample.str.count(r"\s+") + 1
    if lengths.mean() > 50 or (words.mean() > 5 and sample.nunique() > 0.5 * len(sample)):
        return "text"
    return "categorical"


def _parse_dates(values: pd.Series) -> pd.Series:
    """Strings to timestamps, NaT where they do not parse (quietly: pandas warns on guesses)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if parsed.isna().any():
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    return parsed


def infer_column_kinds(
    frame: pd.DataFrame, given: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The kind of every column: the ones ``given`` as they are, the others inferred.

    Args:
        frame: the table.
        given: known kinds (column -> kind), e.g. from a dataset schema.

    Returns:
        Column -> kind, in the frame's column order.

    Raises:
        InputError: ``given`` names a column the frame lacks or a kind that does not exist.
    """
    given = dict(given or {})
    for column, kind in given.items():
        if column not in frame.columns:
            raise InputError(f"column_kinds names the column {column!r}, which the data lacks")
        if kind not in KINDS:
            raise InputError(
                f"The kind of column {column!r} must be one of {', '.join(KINDS)}; got {kind!r}"
            )
    return {str(c): given.get(str(c)) or infer_kind(frame[c]) for c in frame.columns}


def detect_task(target: pd.Series, kind: str, task: str = "auto") -> str:
    """The learning task for ``target``.

    ``auto``: two distinct values -> ``binary``; a categorical, boolean or text target, or an
    integer-valued one with at most 10 distinct values -> ``multiclass``; otherwise
    ``regression``.

    Args:
        target: the target column, missing values already dropped.
        kind: the target column's kind.
        task: ``auto`` or one of ``TASKS`` to force it.

    Returns:
        ``binary``, ``multiclass`` or ``regression``.

    Raises:
        InputError: an unknown task, a regression task on a non-numeric target, or a
            classification task given a single class.
    """
    if task not in ("auto", *TASKS):
        raise InputError(f"task must be one of auto, {', '.join(TASKS)}; got {task!r}")
    distinct = target.nunique()
    numeric = pd.api.types.is_numeric_dtype(target.dtype) and not pd.api.types.is_bool_dtype(
        target.dtype
    )
    if task == "regression":
        if not numeric:
            raise InputError("task 'regression' needs a numeric target; this one is not numeric")
        return task
    if task in ("binary", "multiclass"):
        if task == "binary" and distinct != 2:
            raise InputError(f"task 'binary' needs exactly 2 classes; the target has {distinct}")
        return task
    if distinct == 2:
        return "binary"
    if not numeric or kind in ("categorical", "boolean", "text", "identifier"):
        return "multiclass"
    as_float = target.astype(float)
    if distinct <= _MAX_INTEGER_CLASSES and bool(np.all(np.mod(as_float, 1) == 0)):
        return "multiclass"
    return "regression"
