"""Target transforms for regression: a skewed positive target (counts, prices) is often fitted
better as ``log1p(y)``, predictions turned back with ``expm1``, and an ensemble often gains
most from members of both kinds (their errors differ). So the transform is chosen per trial,
not per run: for a never-negative skewed target (``skewed_positive``) the search tries the
first family's starting point on both, then fits every later trial on the transform of the
best trial so far (``_search``; both members of the pair stay ensemble candidates), and every
trial's out-of-fold predictions are turned back to the target's units before anything
compares or blends them (pruning, ensemble selection, the second stacking level).

``expm1`` of a model of ``log1p(y)`` estimates the median of ``y``, not its mean: on a skewed
target it is biased low, which squared errors punish (Duan's smearing). The inverse therefore
adds one constant on the log scale, ``expm1(pred + shift)``, the shift that gives the best
metric on out-of-fold rows (``fit_shift``: least squares in closed form for RMSE and R², a
one-dimensional search for the others; MAE, which a median suits, keeps a shift near 0). Each
log-scale trial fits its own shift on its out-of-fold predictions (``TrialRecord.shift``), and
the returned model applies it to that member's predictions (``TrainedModel.member_targets``);
a fold's score during the search (what pruning reads) fits the closed-form shift on the fold's
own rows for RMSE and R² (``in_target_units``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from forgeml.train._metrics import Metric

__all__ = [
    "TRANSFORMS",
    "fit_shift",
    "forward_transform",
    "in_target_units",
    "inverse_transform",
    "skewed_positive",
]

TRANSFORMS = ("none", "log1p")
# A target is tried on the log scale when it is never negative and this skewed.
_SKEW = 0.75
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


def forward_transform(y: np.ndarray, transform: str | None) -> np.ndarray:
    """The target a model of ``transform`` is fitted on (``log1p(y)``, or ``y``)."""
    if transform in (None, "none"):
        return y
    if transform == "log1p":
        return np.log1p(np.asarray(y, dtype=float))
    raise ValueError(f"Unknown target transform {transform!r}; known: {', '.join(TRANSFORMS)}")


def in_target_units(metric: Metric, transform: str | None) -> Metric:
    """``metric`` of predictions on ``transform``'s scale against targets on that scale, read
    in the target's units; for RMSE and R² after the closed-form shift that suits the rows
    scored (one number: every log-scale fold gets the same treatment)."""
    if transform in (None, "none"):
        return metric
    base = metric.func
    squared = metric.name in _SQUARED

    def func(y_true: Any, y_pred: Any, **kwargs: Any) -> float:
        y = inverse_transform(y_true, transform)
        shift = fit_shift(metric, y, y_pred) if squared else 0.0
        return base(y, inverse_transform(y_pred, transform, shift), **kwargs)

    return replace(metric, func=func)
