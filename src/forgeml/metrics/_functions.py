"""The metric functions, each registered once with its name, direction and tasks.

Values equal scikit-learn's (tested); scikit-learn loads on the first call, not on import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forgeml.metrics._registry import CLASSIFICATION, register_metric

__all__: list[str] = []

_Weights = np.ndarray | None


def _positive_score(y_pred: Any) -> np.ndarray:
    """The positive class's score from probabilities (n, 2) or scores (n,)."""
    scores = np.asarray(y_pred, dtype=float)
    return scores[:, 1] if scores.ndim == 2 else scores


def _proba(y_pred: Any) -> np.ndarray:
    """Probabilities (n, k); one binary score column becomes two columns."""
    scores = np.asarray(y_pred, dtype=float)
    return np.column_stack([1.0 - scores, scores]) if scores.ndim == 1 else scores


# ---------------------------------------------------------------- from probabilities


@register_metric("roc_auc", greater_is_better=True, tasks=CLASSIFICATION, needs_proba=True)
def roc_auc_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Area under the ROC curve (one-vs-rest, macro-averaged, for several classes)."""
    from sklearn.metrics import roc_auc_score as auc

    proba = _proba(y_pred)
    if proba.shape[1] == 2:
        return float(auc(y_true, proba[:, 1], sample_weight=sample_weight))
    return float(
        auc(
            y_true,
            proba,
            multi_class="ovr",
            labels=np.arange(proba.shape[1]),
            sample_weight=sample_weight,
        )
    )


@register_metric(
    "average_precision",
    greater_is_better=True,
    tasks=CLASSIFICATION,
    needs_proba=True,
    aliases=("pr_auc",),
)
def average_precision_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Area under the precision-recall curve, step-wise (one-vs-rest, macro, multiclass)."""
    from sklearn.metrics import average_precision_score as ap

    proba = _proba(y_pred)
    if proba.shape[1] == 2:
        return float(ap(y_true, proba[:, 1], sample_weight=sample_weight))
    onehot = np.asarray(y_true)[:, None] == np.arange(proba.shape[1])[None, :]
    return float(ap(onehot, proba, average="macro", sample_weight=sample_weight))


@register_metric("log_loss", greater_is_better=False, tasks=CLASSIFICATION, needs_proba=True)
def log_loss(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Cross-entropy of the predicted class probabilities."""
    from sklearn.metrics import log_loss as ll

    proba = np.clip(_proba(y_pred), 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(ll(y_true, proba, labels=np.arange(proba.shape[1]), sample_weight=sample_weight))


@register_metric("brier_score", greater_is_better=False, tasks=CLASSIFICATION, needs_proba=True)
def brier_score_loss(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Mean squared error of the probabilities (of the positive class, binary; summed, else)."""
    proba = _proba(y_pred)
    onehot = np.asarray(y_true)[:, None] == np.arange(proba.shape[1])[None, :]
    if proba.shape[1] == 2:
        per_row = (proba[:, 1] - onehot[:, 1]) ** 2
    else:
        per_row = ((proba - onehot) ** 2).sum(axis=1)
    return float(np.average(per_row, weights=sample_weight))


# ---------------------------------------------------------------- from labels


@register_metric("accuracy", greater_is_better=True, tasks=CLASSIFICATION)
def accuracy_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Share of correct labels."""
    return float(np.average(np.asarray(y_true) == np.asarray(y_pred), weights=sample_weight))


@register_metric("balanced_accuracy", greater_is_better=True, tasks=CLASSIFICATION)
def balanced_accuracy_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Mean recall over the classes present in ``y_true``."""
    from sklearn.metrics import balanced_accuracy_score as ba

    return float(ba(y_true, y_pred, sample_weight=sample_weight))


def _prf(which: str, average: str, y_true: Any, y_pred: Any, sample_weight: _Weights) -> float:
    """precision, recall or F1 with scikit-learn's ``average`` (0 where undefined)."""
    from sklearn import metrics

    func = {"precision": metrics.precision_score, "recall": metrics.recall_score}.get(
        which, metrics.f1_score
    )
    return float(
        func(y_true, y_pred, average=average, sample_weight=sample_weight, zero_division=0.0)
    )


@register_metric("precision", greater_is_better=True, tasks=("binary",))
def precision_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Precision of the positive class."""
    return _prf("precision", "binary", y_true, y_pred, sample_weight)


@register_metric("recall", greater_is_better=True, tasks=("binary",))
def recall_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Recall of the positive class."""
    return _prf("recall", "binary", y_true, y_pred, sample_weight)


@register_metric("f1", greater_is_better=True, tasks=("binary",))
def f1_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """F1 of the positive class."""
    return _prf("f1", "binary", y_true, y_pred, sample_weight)


@register_metric("precision_macro", greater_is_better=True, tasks=CLASSIFICATION)
def precision_macro_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Precision averaged over classes."""
    return _prf("precision", "macro", y_true, y_pred, sample_weight)


@register_metric("recall_macro", greater_is_better=True, tasks=CLASSIFICATION)
def recall_macro_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Recall averaged over classes."""
    return _prf("recall", "macro", y_true, y_pred, sample_weight)


@register_metric("f1_macro", greater_is_better=True, tasks=CLASSIFICATION)
def f1_macro_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """F1 averaged over classes."""
    return _prf("f1", "macro", y_true, y_pred, sample_weight)


@register_metric("precision_weighted", greater_is_better=True, tasks=CLASSIFICATION)
def precision_weighted_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Precision averaged over classes, weighted by their support."""
    return _prf("precision", "weighted", y_true, y_pred, sample_weight)


@register_metric("recall_weighted", greater_is_better=True, tasks=CLASSIFICATION)
def recall_weighted_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Recall averaged over classes, weighted by their support."""
    return _prf("recall", "weighted", y_true, y_pred, sample_weight)


@register_metric("f1_weighted", greater_is_better=True, tasks=CLASSIFICATION)
def f1_weighted_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """F1 averaged over classes, weighted by their support."""
    return _prf("f1", "weighted", y_true, y_pred, sample_weight)


# ---------------------------------------------------------------- regression


def _errors(y_true: Any, y_pred: Any) -> np.ndarray:
    return np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)


@register_metric("rmse", greater_is_better=False, tasks=("regression",))
def rmse_error(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.average(_errors(y_true, y_pred) ** 2, weights=sample_weight)))


@register_metric("mae", greater_is_better=False, tasks=("regression",))
def mae_error(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Mean absolute error."""
    return float(np.average(np.abs(_errors(y_true, y_pred)), weights=sample_weight))


@register_metric("r2", greater_is_better=True, tasks=("regression",))
def r2_score(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Coefficient of determination (1 for an exact fit of a constant target, else 0)."""
    from sklearn.metrics import r2_score as r2

    return float(r2(y_true, y_pred, sample_weight=sample_weight))


@register_metric("mape", greater_is_better=False, tasks=("regression",))
def mape_error(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Mean absolute percentage error, relative to ``max(|y|, eps)`` (scikit-learn's)."""
    from sklearn.metrics import mean_absolute_percentage_error as mape

    return float(mape(y_true, y_pred, sample_weight=sample_weight))


def _abs_error_quantile(y_true: Any, y_pred: Any, q: float, sample_weight: _Weights) -> float:
    """numpy's linear quantile of the absolute errors, each row repeated ``weight`` times."""
    errors = np.abs(_errors(y_true, y_pred))
    if sample_weight is not None:
        counts = np.asarray(sample_weight)
        if not np.array_equal(counts, np.round(counts)) or (counts < 0).any():
            raise ValueError("error quantiles take whole, non-negative frequency weights")
        errors = np.repeat(errors, counts.astype(np.int64))
    return float(np.quantile(errors, q))


@register_metric("abs_error_p50", greater_is_better=False, tasks=("regression",))
def abs_error_p50_error(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """Median absolute error."""
    return _abs_error_quantile(y_true, y_pred, 0.5, sample_weight)


@register_metric("abs_error_p90", greater_is_better=False, tasks=("regression",))
def abs_error_p90_error(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """90th percentile of the absolute error."""
    return _abs_error_quantile(y_true, y_pred, 0.9, sample_weight)


@register_metric("abs_error_p95", greater_is_better=False, tasks=("regression",))
def abs_error_p95_error(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """95th percentile of the absolute error."""
    return _abs_error_quantile(y_true, y_pred, 0.95, sample_weight)


@register_metric("abs_error_p99", greater_is_better=False, tasks=("regression",))
def abs_error_p99_error(y_true: Any, y_pred: Any, *, sample_weight: _Weights = None) -> float:
    """99th percentile of the absolute error."""
    return _abs_error_quantile(y_true, y_pred, 0.99, sample_weight)
