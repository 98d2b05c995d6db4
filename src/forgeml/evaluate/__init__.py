"""Evaluation (capability layer): metrics with confidence intervals, plots, slices,
explanations, fairness audits and model-card content.

``evaluate(model, X, y, ...)`` does everything at once; the parts are usable on their own:
``classification_metrics`` / ``regression_metrics`` on arrays, ``fairness_audit`` /
``audit_predictions`` on decisions or a table of predictions, ``explain`` per row,
``slice_metrics`` per slice, ``model_card`` from a report. Heavy libraries (SHAP, Fairlearn,
matplotlib) load on first use.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from forgeml.evaluate._card import ModelCard
from forgeml.evaluate._evaluate import evaluate
from forgeml.evaluate._explain import Explainer, Explanation, explain, global_importance, raw_output
from forgeml.evaluate._fairness import (
    FairnessReport,
    FairnessThresholds,
    Finding,
    GroupMetrics,
    SensitiveAudit,
    audit_predictions,
    fairness_audit,
)
from forgeml.evaluate._metrics import (
    HIGHER_IS_BETTER,
    ClassMetrics,
    Metrics,
    MetricValue,
    classification_metrics,
    regression_metrics,
    threshold_curve,
)
from forgeml.evaluate._result import EvaluationReport, model_card
from forgeml.evaluate._slices import Slice, slice_metrics

__all__ = [
    "HIGHER_IS_BETTER",
    "ClassMetrics",
    "EvaluationReport",
    "Explainer",
    "Explanation",
    "FairnessReport",
    "FairnessThresholds",
    "Finding",
    "GroupMetrics",
    "MetricValue",
    "Metrics",
    "ModelCard",
    "SensitiveAudit",
    "Slice",
    "audit_predictions",
    "classification_metrics",
    "evaluate",
    "explain",
    "fairness_audit",
    "global_importance",
    "model_card",
    "raw_output",
    "regression_metrics",
    "slice_metrics",
    "threshold_curve",
]


class _CallablePackage(types.ModuleType):
    """Makes ``forgeml.evaluate(...)`` call ``evaluate(...)``: the package and the entry point
    share one name, and whichever one ``fm.evaluate`` resolves to must work."""

    def __call__(self, *args: Any, **kwargs: Any) -> EvaluationReport:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
