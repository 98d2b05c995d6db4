"""One vocabulary of metrics for training, evaluation and monitoring (foundation layer).

    from forgeml.metrics import get_metric

    auc = get_metric("roc_auc", "binary")
    auc(y_true, proba)          # a plain function of (y_true, y_pred, *, sample_weight=None)
    auc.greater_is_better       # True: a search maximises it

Each metric is registered once with its name, aliases, direction, tasks and whether it reads
probabilities; see ``_registry`` for the conventions every function follows.
"""

from forgeml.metrics import _functions  # noqa: F401  (registers the metrics)
from forgeml.metrics._registry import (
    CLASSIFICATION,
    TASKS,
    MetricSpec,
    canonical_name,
    get_metric,
    greater_is_better,
    metrics_for,
    register_metric,
    registered_metrics,
)

__all__ = [
    "CLASSIFICATION",
    "TASKS",
    "MetricSpec",
    "canonical_name",
    "get_metric",
    "greater_is_better",
    "metrics_for",
    "register_metric",
    "registered_metrics",
]
