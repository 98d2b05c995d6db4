"""Target transforms for regression: a skewed positive target (counts, prices) is often fitted
better as ``log1p(y)``, predictions turned back with ``expm1``. Whether it is, validation
decides: one family's starting point is cross-validated on both targets (on the first two
folds, to keep the choice cheap) and the out-of-fold metric on those folds' rows, always
computed in the target's own units, picks the one that wins.

Inside the search a transformed problem holds ``log1p(y)`` and a metric that turns both sides
back before scoring, so every score, pruning decision and ensemble weight is read in the
original units; the returned ``TrainedModel`` applies ``expm1`` to its combined prediction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from forgeml.train._metrics import Metric
from forgeml.train._search import Problem, TrialRecord, evaluate_config
from forgeml.train._validation import Folds
from forgeml.train._zoo import FAMILIES

__all__ = [
    "TRANSFORMS",
    "TransformChoice",
    "choose_target_transform",
    "inverse_transform",
    "skewed_positive",
    "with_transform",
]

TRANSFORMS = ("none", "log1p")
# A target is tried on the log scale when it is never negative and this skewed.
_SKEW = 0.75
# Folds the choice cross-validates on.
_CHOICE_FOLDS = 2


def inverse_transform(values: np.ndarray, transform: str | None) -> np.ndarray:
    """Predictions of a model fitted on the transformed target, in the target's units."""
    if transform in (None, "none"):
        return values
    if transform == "log1p":
        return np.expm1(np.asarray(values, dtype=float))
    raise ValueError(f"Unknown target transform {transform!r}; known: {', '.join(TRANSFORMS)}")


def skewed_positive(y: np.ndarray) -> bool:
    """Whether ``y`` is never negative and right-skewed (sample skewness above 0.75)."""
    values = np.asarray(y, dtype=float)
    if len(values) < 3 or float(values.min()) < 0:
        return False
    std = float(values.std())
    if std == 0:
        return False
    skew = float(np.mean(((values - values.mean()) / std) ** 3))
    return skew > _SKEW


def _metric_in_original_units(metric: Metric, transform: str) -> Metric:
    base = metric.func

    def func(y_true: Any, y_pred: Any, **kwargs: Any) -> float:
        return base(
            inverse_transform(y_true, transform), inverse_transform(y_pred, transform), **kwargs
        )

    return replace(metric, func=func)


def with_transform(problem: Problem, transform: str) -> Problem:
    """``problem`` with its target transformed and its metric read in the original units."""
    if transform == "none":
        return problem
    if transform != "log1p":
        raise ValueError(f"Unknown target transform {transform!r}; known: {', '.join(TRANSFORMS)}")
    return replace(
        problem,
        y=np.log1p(np.asarray(problem.y, dtype=float)),
        metric=_metric_in_original_units(problem.metric, transform),
        target_transform=transform,
    )


@dataclass(frozen=True)
class TransformChoice:
    """The transform validation chose, the out-of-fold metric of each candidate (original
    units; ``None`` when its trial did not complete), and on what it was measured."""

    transform: str
    scores: dict[str, float | None]
    family: str
    n_rows: int
    metric: str

    def note(self) -> str:
        shown = ", ".join(
            f"{t} {s:.4g}" if s is not None else f"{t} not measured" for t, s in self.scores.items()
        )
        return (
            f"target transform {self.transform}: out-of-fold {self.metric} of the {self.family} "
            f"starting point on the {self.n_rows:,} rows of {_CHOICE_FOLDS} validation folds, "
            f"in the target's units: {shown}"
        )


def choose_target_transform(problem: Problem, family: str, deadline: float) -> TransformChoice:
    """Cross-validate ``family``'s starting point on the raw and the ``log1p`` target and keep
    the transform with the better out-of-fold metric (ties and unfinished trials keep the raw
    target). Each candidate gets half of the time to ``deadline``."""
    start = FAMILIES[family].start(problem.task, problem.imbalanced, len(problem.y))
    splits = problem.folds.splits[:_CHOICE_FOLDS]
    covered = np.sort(np.concatenate([val for _, val in splits]))
    problem = replace(problem, folds=Folds(splits=tuple(splits), covered=covered))
    scores: dict[str, float | None] = {}
    losses: dict[str, float] = {}
    for i, transform in enumerate(TRANSFORMS):
        left = deadline - time.monotonic()
        trial_deadline = time.monotonic() + left / (len(TRANSFORMS) - i)
        record = TrialRecord(number=-1, family=family, params=dict(start))
        evaluate_config(
            with_transform(problem, transform), record, deadline=trial_deadline, cost_aware=False
        )
        scores[transform] = record.score if record.state == "complete" else None
        if record.state == "complete" and record.loss is not None:
            losses[transform] = record.loss
    chosen = "none"
    if "log1p" in losses and "none" in losses and losses["log1p"] < losses["none"]:
        chosen = "log1p"
    return TransformChoice(chosen, scores, family, len(covered), problem.metric.name)
