"""The metrics training can optimise: the shared registry (``forgeml.metrics``) seen from a search.

Inside training, classification predictions are always class probabilities (one column per
encoded class 0..k-1) and labels are encoded 0..k-1; ``Metric`` turns probabilities into what
each registered function reads (labels, with a tuned threshold when given) and gives the value
the search minimises, whose sign comes from the metric's registered direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forgeml.metrics import MetricSpec, registered_metrics
from forgeml.metrics import get_metric as _registered

__all__ = ["DEFAULT_METRICS", "METRICS", "Metric", "get_metric", "tune_threshold"]


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


def _from_spec(spec: MetricSpec) -> Metric:
    return Metric(spec.name, spec.func, spec.greater_is_better, spec.reads, spec.tasks)


METRICS: dict[str, Metric] = {
    name: _from_spec(spec) for name, spec in sorted(registered_metrics().items())
}

DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}

# Reported on the test split besides the optimised metric.
REPORTED = {
    "binary": ("roc_auc", "log_loss", "accuracy", "f1", "average_precision"),
    "multiclass": ("log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
}


def get_metric(name: str | None, task: str) -> Metric:
    """The registered metric ``name`` or an alias of it (the task's default when ``None``).

    Raises:
        InputError: an unknown metric, or one that does not apply to ``task``.
    """
    return METRICS[_registered(name or DEFAULT_METRICS[task], task).name]
