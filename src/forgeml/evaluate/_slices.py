"""Slices: metrics per value of each categorical column and per quantile bin of each numeric
column, the worst first, so that the rows where a model fails are found without a search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError
from forgeml.evaluate._inputs import check_same_length
from forgeml.evaluate._metrics import HIGHER_IS_BETTER
from forgeml.metrics import get_metric

__all__ = ["Slice", "slice_metrics"]

_MISSING = "(missing)"
_OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class Slice:
    """The rows of one value (or bin) of one column, and the model's metrics on them.

    Attributes:
        column: the column.
        value: the value, or the bin as an interval such as ``(0.5, 1.2]``.
        size: rows in the slice.
        metrics: metric name -> value on the slice.
        metric: the metric slices are ranked by.
        gap: the slice's ranking metric minus its value on all rows (negative = worse for a
            higher-is-better metric).
    """

    column: str
    value: str
    size: int
    metrics: tuple[tuple[str, float], ...]
    metric: str
    gap: float

    def __getitem__(self, name: str) -> float:
        return dict(self.metrics)[name]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "column": self.column,
            "value": self.value,
            "size": self.size,
            "metric": self.metric,
            "gap": self.gap,
            "metrics": dict(self.metrics),
        }


def _slice_labels(column: pd.Series, n_bins: int, max_values: int) -> pd.Series:
    """The slice each row belongs to, as text."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique(dropna=True) > n_bins:
        bins = pd.qcut(column, q=n_bins, duplicates="drop")
        labels = bins.astype(str).where(bins.notna(), _MISSING)
        return labels.astype(str)
    labels = column.astype(object).where(column.notna(), _MISSING).astype(str)
    counts = labels.value_counts()
    if len(counts) > max_values:
        keep = set(counts.index[:max_values])
        labels = labels.where(labels.isin(keep), _OTHER)
    return labels


def _task_metrics(
    task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, positive: Any
) -> dict[str, float]:
    """The slice's metrics: the registered ones by their registered functions, plus the mean
    error (regression) and the positive rate (binary), which describe a slice but rank none."""
    if task == "regression":
        return {
            "rmse": get_metric("rmse")(y_true, y_pred),
            "mae": get_metric("mae")(y_true, y_pred),
            "mean_error": float(np.mean(y_pred - y_true)),
        }
    out = {"accuracy": get_metric("accuracy")(y_true, y_pred)}
    if task == "binary":
        is_pos = (y_true == positive).astype(int)
        said_pos = (y_pred == positive).astype(int)
        out["positive_rate"] = float(is_pos.mean())
        out["recall"] = get_metric("recall")(is_pos, said_pos) if is_pos.any() else np.nan
        if proba is not None:
            score = proba if proba.ndim == 1 else proba[:, 1]
            both = 0 < is_pos.sum() < len(is_pos)
            out["roc_auc"] = get_metric("roc_auc")(is_pos, score) if both else np.nan
    return out


def slice_metrics(
    X: pd.DataFrame,
    y_true: Any,
    y_pred: Any,
    *,
    task: str,
    y_score: Any = None,
    positive_label: Any = None,
    columns: Sequence[str] | None = None,
    n_bins: int = 4,
    min_size: int = 20,
    max_values: int = 30,
    metric: str | None = None,
) -> tuple[Slice, ...]:
    """Metrics per slice of each column, worst first.

    Categorical, boolean and low-cardinality numeric columns are sliced by value (the
    ``max_values`` most frequent; the rest form one "(other)" slice), numeric columns by
    quantile bins; missing values are a slice of their own.

    Args:
        X: the feature table.
        y_true: true labels or values.
        y_pred: predicted labels or values.
        task: ``binary``, ``multiclass`` or ``regression``.
        y_score: probability of the positive class (binary) to add ROC AUC per slice.
        positive_label: the positive class (binary).
        columns: columns to slice by (default: every column of ``X``).
        n_bins: quantile bins per numeric column.
        min_size: slices with fewer rows are left out (their metrics are noise).
        max_values: values per categorical column.
        metric: rank by this metric (default: accuracy for classification, RMSE for regression).

    Returns:
        the slices, worst first by ``metric`` (then larger first).

    Raises:
        InputError: inputs of different lengths, an unknown column or metric.
    """
    if not isinstance(X, pd.DataFrame):
        raise InputError(f"`X` must be a DataFrame to slice by column; got {type(X).__name__}")
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    proba = None if y_score is None else np.asarray(y_score, dtype=np.float64)
    check_same_length(X=X, y_true=truth, y_pred=pred, y_score=proba)
    chosen = list(X.columns) if columns is None else list(columns)
    unknown = [c for c in chosen if c not in X.columns]
    if unknown:
        raise InputError(f"Slice columns not in the table: {unknown}")
    rank_by = metric or ("rmse" if task == "regression" else "accuracy")
    overall = _task_metrics(task, truth, pred, proba, positive_label)
    if rank_by not in overall:
        raise InputError(f"Cannot rank slices by {rank_by!r}; available: {sorted(overall)}")
    higher = HIGHER_IS_BETTER.get(rank_by, True)
    slices: list[Slice] = []
    for name in chosen:
        labels = _slice_labels(X[name], n_bins, max_values).to_numpy()
        for value in pd.unique(labels):
            mask = labels == value
            size = int(mask.sum())
            if size < min_size or size == len(labels):
                continue
            values = _task_metrics(
                task,
                truth[mask],
                pred[mask],
                None if proba is None else proba[mask],
                positive_label,
            )
            slices.append(
                Slice(
                    column=str(name),
                    value=str(value),
                    size=size,
                    metrics=tuple(values.items()),
                    metric=rank_by,
                    gap=values[rank_by] - overall[rank_by],
                )
            )

    def badness(s: Slice) -> tuple[float, int]:
        score = s.gap if np.isfinite(s.gap) else 0.0
        return (score if higher else -score, -s.size)

    return tuple(sorted(slices, key=badness))
