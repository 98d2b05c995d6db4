"""Per-class calibration of a multiclass model: vector scaling (a scale and a bias per class on
the log-probabilities, then softmax), fitted on out-of-fold predictions.

It is kept only where it helps: the calibration is cross-fitted over the out-of-fold rows
(fitted on four fifths, applied to the fifth) and its metric compared with the uncalibrated
one on the same rows; the final calibration is then fitted on all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from forgeml.train._metrics import Metric

__all__ = ["CalibrationChoice", "apply_calibration", "choose_calibration", "fit_vector_scaling"]

_EPS = 1e-12
_FOLDS = 5
# Rows a vector scaling is fitted on at most (a seeded sample): 2 x classes parameters need
# few, and L-BFGS on 36,000 rows x 14 classes took 48 s on a loaded machine.
_FIT_ROWS = 5_000


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def apply_calibration(proba: np.ndarray, calibration: Mapping[str, Any] | None) -> np.ndarray:
    """``proba`` through a fitted vector scaling (``None``: unchanged)."""
    if not calibration:
        return proba
    scale = np.asarray(calibration["scale"], dtype=float)
    bias = np.asarray(calibration["bias"], dtype=float)
    return _softmax(np.log(np.clip(proba, _EPS, 1.0)) * scale + bias)


def fit_vector_scaling(
    proba: np.ndarray, y: np.ndarray, *, seed: int = 0, max_rows: int = _FIT_ROWS
) -> dict[str, list[float]]:
    """The per-class scale and bias minimising the log loss of ``y`` (codes 0..k-1) under
    ``softmax(scale * log(proba) + bias)``; starts from the identity. Fitted on a seeded
    sample of ``max_rows`` rows when there are more."""
    from scipy.optimize import minimize

    if len(y) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), max_rows, replace=False))
        proba, y = proba[rows], y[rows]
    k = proba.shape[1]
    logp = np.log(np.clip(proba, _EPS, 1.0))
    onehot = np.eye(k)[y]
    n = len(y)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        scale, bias = theta[:k], theta[k:]
        p = _softmax(logp * scale + bias)
        loss = -float(np.sum(onehot * np.log(np.clip(p, _EPS, 1.0)))) / n
        diff = (p - onehot) / n
        return loss, np.concatenate([(diff * logp).sum(axis=0), diff.sum(axis=0)])

    start = np.concatenate([np.ones(k), np.zeros(k)])
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B")
    theta = result.x if np.all(np.isfinite(result.x)) else start
    return {"scale": [float(v) for v in theta[:k]], "bias": [float(v) for v in theta[k:]]}


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibration kept (``None``: none), and the metric of the out-of-fold predictions
    without and with it (cross-fitted), on ``n_rows`` rows."""

    calibration: dict[str, list[float]] | None
    raw: float
    calibrated: float
    metric: str
    n_rows: int
    cut_after: int | None = None  # cross-fits done when the deadline stopped it

    def note(self) -> str:
        if self.cut_after is not None:
            return (
                f"no calibration: its cross-fitting on {self.n_rows:,} out-of-fold rows was "
                f"cut at the deadline after {self.cut_after} of {_FOLDS} folds"
            )
        verdict = "per-class calibration (vector scaling)" if self.calibration else "no calibration"
        return (
            f"{verdict}: out-of-fold {self.metric} on {self.n_rows:,} rows "
            f"{self.raw:.5g} uncalibrated, {self.calibrated:.5g} calibrated (cross-fitted)"
        )


def choose_calibration(
    metric: Metric, y: np.ndarray, proba: np.ndarray, *, seed: int, deadline: float | None = None
) -> CalibrationChoice:
    """Vector scaling when its cross-fitted out-of-fold ``metric`` beats the uncalibrated one.
    When the next fit (expected to take as long as the ones before) would end past
    ``deadline`` (``time.monotonic()``) it stops with no calibration (the note says so)."""
    import time

    from sklearn.model_selection import StratifiedKFold

    k = proba.shape[1]
    counts = np.bincount(y, minlength=k)
    raw = metric.score(y, proba)
    if counts.min() < _FOLDS:
        return CalibrationChoice(None, raw, raw, metric.name, len(y))
    crossed = np.empty_like(proba)
    splitter = StratifiedKFold(n_splits=_FOLDS, shuffle=True, random_state=seed)
    started = time.monotonic()

    def out_of_time(done: int) -> bool:
        # the next fit is expected to take as long as the fits so far (each reads at most
        # _FIT_ROWS rows): stop before one that would end past the deadline
        if deadline is None:
            return False
        now = time.monotonic()
        per_fit = (now - started) / done if done else 0.0
        return now + per_fit > deadline

    for done, (fit_pos, apply_pos) in enumerate(splitter.split(proba, y)):
        if out_of_time(done):
            return CalibrationChoice(None, raw, raw, metric.name, len(y), cut_after=done)
        params = fit_vector_scaling(proba[fit_pos], y[fit_pos], seed=seed)
        crossed[apply_pos] = apply_calibration(proba[apply_pos], params)
    calibrated = metric.score(y, crossed)
    better = (calibrated > raw) if metric.greater_is_better else (calibrated < raw)
    if better and abs(calibrated - raw) > 1e-9:
        if out_of_time(_FOLDS):
            return CalibrationChoice(None, raw, raw, metric.name, len(y), cut_after=_FOLDS)
        fitted = fit_vector_scaling(proba, y, seed=seed)
        return CalibrationChoice(fitted, raw, calibrated, metric.name, len(y))
    return CalibrationChoice(None, raw, calibrated, metric.name, len(y))
