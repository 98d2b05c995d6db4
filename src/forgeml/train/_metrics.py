"""The metrics training can optimise, each registered with its direction and what it reads.

A metric is a plain function ``(y_true, y_pred, *, sample_weight=None) -> float`` named
``*_score`` when higher is better and ``*_error`` / ``*_loss`` when lower is better; the search
direction comes from the registry. Inside training, classification predictions are always class
probabilities (one column per encoded class 0..k-1) and labels are encoded 0..k-1; ``Metric``
turns probabilities into what each function needs (labels, the positive class's score).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forgeml.errors import InputError

__all__ = ["DEFAULT_METRICS", "METRICS", "Metric", "get_metric", "tune_threshold"]


def roc_auc_score(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Area under the ROC curve (one-vs-rest, macro-averaged, for several classes)."""
    from sklearn.metrics import roc_auc_score as auc

    if y_pred.ndim == 2 and y_pred.shape[1] == 2:
        y_pred = y_pred[:, 1]
    if y_pred.ndim == 2:
        return float(
            auc(
                y_true,
                y_pred,
                multi_class="ovr",
                labels=np.arange(y_pred.shape[1]),
                sample_weight=sample_weight,
            )
        )
    return float(auc(y_true, y_pred, sample_weight=sample_weight))


def log_loss(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Cross-entropy of the predicted class probabilities."""
    from sklearn.metrics import log_loss as ll

    proba = np.clip(y_pred, 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return float(ll(y_true, proba, labels=np.arange(proba.shape[1]), sample_weight=sample_weight))


def average_precision_score(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Area under the precision-recall curve of the positive class."""
    from sklearn.metrics import average_precision_score as ap

    return float(ap(y_true, y_pred[:, 1], sample_weight=sample_weight))


def accuracy_score(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Share of correct labels."""
    return float(np.average(y_true == y_pred, weights=sample_weight))


def balanced_accuracy_score(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Mean recall over classes."""
    from sklearn.metrics import balanced_accuracy_score as ba

    return float(ba(y_true, y_pred, sample_weight=sample_weight))


def f1_score(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """F1 of the positive class (binary)."""
    from sklearn.metrics import f1_score as f1

    return float(f1(y_true, y_pred, sample_weight=sample_weight, zero_division=0.0))


def f1_macro_score(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """F1 averaged over classes."""
    from sklearn.metrics import f1_score as f1

    return float(
        f1(y_true, y_pred, average="macro", sample_weight=sample_weight, zero_division=0.0)
    )


def rmse_error(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.average((y_true - y_pred) ** 2, weights=sample_weight)))


def mae_error(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Mean absolute error."""
    return float(np.average(np.abs(y_true - y_pred), weights=sample_weight))


def r2_score(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> float:
    """Coefficient of determination."""
    from sklearn.metrics import r2_score as r2

    return float(r2(y_true, y_pred, sample_weight=sample_weight))


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes:
        name: the name users pass (``--metric``).
        func: the metric function.
        greater_is_better: the direction the search follows.
        reads: ``proba`` (class probabilities), ``label`` (class labels) or ``value``
            (regression predictions).
        tasks: the tasks it applies to.
    """

    name: str
    func: Callable[..., float]
    greater_is_better: bool
    reads: str
    tasks: tuple[str, ...]

    def score(
        self, y_true: np.ndarray, pred: np.ndarray, *, threshold: float | None = None
    ) -> float:
        """The metric of raw predictions (probabilities for classification)."""
        if self.reads == "label":
            pred = to_labels(pred, threshold)
        elif self.reads == "value":
            pred = np.asarray(pred, dtype=float)
        return self.func(y_true, pred)

    def loss(
        self, y_true: np.ndarray, pred: np.ndarray, *, threshold: float | None = None
    ) -> float:
        """The value the search minimises: the metric, negated when higher is better."""
        value = self.score(y_true, pred, threshold=threshold)
        return -value if self.greater_is_better else value

    @property
    def tunes_threshold(self) -> bool:
        """Whether a binary model's decision threshold is tuned for this metric."""
        return self.reads == "label"


def to_labels(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Encoded labels from probabilities (a threshold on the positive class when given)."""
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(int)
    return np.argmax(proba, axis=1)


def tune_threshold(metric: Metric, y_true: np.ndarray, proba: np.ndarray) -> float:
    """The decision threshold on the positive class that maximises ``metric``.

    Searched over quantiles of the predicted scores (at most 101 candidates); ties go to the
    threshold nearest 0.5.
    """
    scores = proba[:, 1]
    candidates = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, 101)))
    candidates = np.append(candidates, 0.5)
    best, best_value = 0.5, -np.inf
    for t in sorted(candidates, key=lambda c: abs(c - 0.5)):
        value = -metric.loss(y_true, proba, threshold=float(t))
        if value > best_value + 1e-12:
            best, best_value = float(t), value
    return best


_CLS = ("binary", "multiclass")
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", roc_auc_score, True, "proba", _CLS),
        Metric("log_loss", log_loss, False, "proba", _CLS),
        Metric("average_precision", average_precision_score, True, "proba", ("binary",)),
        Metric("accuracy", accuracy_score, True, "label", _CLS),
        Metric("balanced_accuracy", balanced_accuracy_score, True, "label", _CLS),
        Metric("f1", f1_score, True, "label", ("binary",)),
        Metric("f1_macro", f1_macro_score, True, "label", _CLS),
        Metric("rmse", rmse_error, False, "value", ("regression",)),
        Metric("mae", mae_error, False, "value", ("regression",)),
        Metric("r2", r2_score, True, "value", ("regression",)),
    )
}

DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}

# Reported on the test split besides the optimised metric.
REPORTED = {
    "binary": ("roc_auc", "log_loss", "accuracy", "f1", "average_precision"),
    "multiclass": ("log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
}


def get_metric(name: str | None, task: str) -> Metric:
    """The registered metric ``name`` (the task's default when ``None``).

    Raises:
        InputError: an unknown metric, or one that does not apply to ``task``.
    """
    name = name or DEFAULT_METRICS[task]
    metric = METRICS.get(name)
    if metric is None:
        raise InputError(f"Unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}")
    if task not in metric.tasks:
        fits = sorted(n for n, m in METRICS.items() if task in m.tasks)
        raise InputError(
            f"The metric {name!r} does not apply to a {task} task; use one of {', '.join(fits)}"
        )
    return metric
