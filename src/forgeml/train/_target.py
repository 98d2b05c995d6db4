"""Target transforms for regression: a skewed positive target (counts, prices) is often fitted
better as ``log1p(y)``, predictions turned back with ``expm1``. Whether it is, validation
decides: one family's starting point is cross-validated on both targets (on the first two
folds, to keep the choice cheap) and the out-of-fold metric on those folds' rows, always
computed in the target's own units, picks the one that wins.

Inside the search a transformed problem holds ``log1p(y)`` and a metric that turns both sides
back before scoring, so every score, pruning decision and ensemble weight is read in the
original units; the returned ``TrainedModel`` applies ``expm1`` to its combined prediction.

``expm1`` of a model of ``log1p(y)`` estimates the median of ``y``, not its mean: on a skewed
target it is biased low, which squared errors punish (Duan's smearing). The inverse therefore
adds one constant on the log scale, ``expm1(pred + shift)``, the shift that gives the best
metric on out-of-fold rows (``fit_shift``: least squares in closed form for RMSE and R², a
one-dimensional search for the others; MAE, which a median suits, keeps a shift near 0). For
RMSE and R² the search's metric fits it on the rows it scores (one number, in closed form:
every log-scale trial gets the same treatment); the transform choice cross-fits it (each
fold's shift fitted on the other fold), and the returned model keeps the one fitted on its own
out-of-fold predictions (``TrainedModel.target_shift``), for every metric.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from forgeml.train._metrics import Metric
from forgeml.train._search import Problem, TrialRecord, evaluate_config
from forgeml.train._validation import Folds
from forgeml.train._zoo import FAMILIES

__all__ = [
    "TRANSFORMS",
    "TransformChoice",
    "choose_target_transform",
    "fit_shift",
    "inverse_transform",
    "skewed_positive",
    "with_transform",
]

TRANSFORMS = ("none", "log1p")
# A target is tried on the log scale when it is never negative and this skewed.
_SKEW = 0.75
# Folds the choice cross-validates on.
_CHOICE_FOLDS = 2
# The log-scale shift is searched in [-_MAX_SHIFT, _MAX_SHIFT] (a factor of e on 1 + y).
_MAX_SHIFT = 1.0
# Metrics of squared errors: their best shift has a closed form.
_SQUARED = ("rmse", "r2")
# Rows the one-dimensional search for the other metrics reads at most.
_SEARCH_ROWS = 5_000


def inverse_transform(values: np.ndarray, transform: str | None, shift: float = 0.0) -> np.ndarray:
    """Predictions of a model fitted on the transformed target, in the target's units
    (``expm1(values + shift)`` after ``log1p``)."""
    if transform in (None, "none"):
        return values
    if transform == "log1p":
        return np.expm1(np.asarray(values, dtype=float) + shift)
    raise ValueError(f"Unknown target transform {transform!r}; known: {', '.join(TRANSFORMS)}")


def fit_shift(metric: Metric, y: np.ndarray, pred: np.ndarray) -> float:
    """The constant added to ``log1p``-scale predictions ``pred`` before ``expm1`` that gives
    the best ``metric`` (read in the target's units) against ``y`` (in the target's units);
    within [-1, 1]. Metrics other than RMSE and R² are searched on at most 5,000 of the rows
    (seeded)."""
    y = np.asarray(y, dtype=float)
    base = 1.0 + np.expm1(np.asarray(pred, dtype=float))  # 1 + the unshifted prediction
    if len(y) == 0 or not np.all(np.isfinite(base)):
        return 0.0
    if metric.name in _SQUARED:
        # least squares of (1 + y) on a multiple of (1 + pred): the scale exp(shift)
        denominator = float(np.dot(base, base))
        scale = float(np.dot(base, 1.0 + y)) / denominator if denominator > 0 else 1.0
        if scale <= 0:
            return 0.0
        return float(np.clip(np.log(scale), -_MAX_SHIFT, _MAX_SHIFT))

    if len(y) > _SEARCH_ROWS:  # the search reads the metric about 40 times: a seeded sample
        rows = np.random.default_rng(0).choice(len(y), _SEARCH_ROWS, replace=False)
        y, base = y[rows], base[rows]

    def loss(shift: float) -> float:
        return metric.loss(y, base * np.exp(shift) - 1.0)

    # a bounded one-dimensional search; the unshifted prediction is kept unless a shift beats it
    found = minimize_scalar(
        loss, bounds=(-_MAX_SHIFT, _MAX_SHIFT), method="bounded", options={"xatol": 1e-6}
    )
    best = float(found.x)
    return best if loss(best) < loss(0.0) else 0.0


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
    squared = metric.name in _SQUARED

    def func(y_true: Any, y_pred: Any, **kwargs: Any) -> float:
        y = inverse_transform(y_true, transform)
        # the closed-form shift only: the search reads this metric thousands of times
        shift = fit_shift(metric, y, y_pred) if transform == "log1p" and squared else 0.0
        return base(y, inverse_transform(y_pred, transform, shift), **kwargs)

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
            f"in the target's units (log1p with its shift fitted on the other fold): {shown}"
        )


def _cross_fitted_score(
    metric: Metric, y: np.ndarray, oof: np.ndarray, folds: Folds
) -> tuple[float, float]:
    """Score and loss of ``log1p``-scale out-of-fold predictions ``oof`` against ``y`` (the
    target's units), each fold's rows shifted by the shift fitted on the other folds' rows."""
    pred = np.full(len(y), np.nan)
    for i, (_, val) in enumerate(folds.splits):
        others = np.concatenate([v for j, (_, v) in enumerate(folds.splits) if j != i])
        shift = fit_shift(metric, y[others], oof[others])
        pred[val] = inverse_transform(oof[val], "log1p", shift)
    covered = folds.covered
    score = metric.score(y[covered], pred[covered])
    return score, (-score if metric.greater_is_better else score)


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
        if record.state != "complete" or record.loss is None:
            scores[transform] = None
            continue
        scores[transform], losses[transform] = record.score, record.loss
        if transform == "log1p" and record.oof is not None:
            # an honest score: the shift the search fits on the rows it scores is cross-fitted
            scores[transform], losses[transform] = _cross_fitted_score(
                problem.metric, np.asarray(problem.y, dtype=float), record.oof, problem.folds
            )
    chosen = "none"
    if "log1p" in losses and "none" in losses and losses["log1p"] < losses["none"]:
        chosen = "log1p"
    return TransformChoice(chosen, scores, family, len(covered), problem.metric.name)
