"""AutoML training: from a table to the best model found within a time budget.

``train(df, target=...)`` detects the task and metric, builds leak-free preprocessing, searches
a model zoo (linear, random forest, extra trees, HistGradientBoosting, LightGBM, XGBoost, MLP)
with Optuna under a hard deadline, ensembles the best trials when that helps, refits, scores a
held-out test split and records everything as one tracked run. The package is callable:
``fm.train(df, target="y")`` is ``forgeml.train.train(df, target="y")``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from forgeml.train._api import check_training_data, train
from forgeml.train._config import TrainConfig
from forgeml.train._metrics import DEFAULT_METRICS, METRICS, Metric
from forgeml.train._model import TrainedModel
from forgeml.train._preprocess import TabularEncoder
from forgeml.train._progress import TrainingProgress
from forgeml.train._result import TrainResult
from forgeml.train._task import KINDS, TASKS, detect_task, infer_column_kinds, infer_kind
from forgeml.train._zoo import FAMILIES

__all__ = [
    "DEFAULT_METRICS",
    "FAMILIES",
    "KINDS",
    "METRICS",
    "TASKS",
    "Metric",
    "TabularEncoder",
    "TrainConfig",
    "TrainResult",
    "TrainedModel",
    "TrainingProgress",
    "check_training_data",
    "detect_task",
    "infer_column_kinds",
    "infer_kind",
    "train",
]


class _CallablePackage(types.ModuleType):
    """``fm.train(df, target=...)`` calls ``train``; ``fm.train.TrainResult`` still works."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
