"""Prediction latency: how it is measured, and the choice of a model under a bound.

The bound (``TrainConfig.max_latency_ms``, default 10 ms) is defined the way a user meets it:
the median of ``CALLS`` calls of ``predict_proba`` (``predict`` for a regressor) on a one-row
DataFrame, after one call that builds what is built on first use (the compiled form). A
candidate is measured the same way, as a one-member ``TrainedModel`` around its first fold
model (same family, parameters and rounds as its refit): so every candidate's number is the
served path, compiled where the member compiles.

An ensemble's one-row time is estimated before its refit as the sum of its members' (each
call pays the fixed cost of a ``TrainedModel`` call once, so the sum errs high). The refit
model is measured again; when it is still over the bound, the best single member replaces it
(``_api``). Timing reads the clock: a candidate within a few percent of the bound may be in or
out on a busy machine (``max_latency_ms=None`` turns the bound off for a replayable choice).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CALLS", "LatencyChoice", "choose_under_bound", "measure_latency"]

# One-row calls whose median is the one-row time.
CALLS = 10


def measure_latency(
    model: Any,
    X: pd.DataFrame,
    task: str,
    seed: int,
    *,
    calls: int = CALLS,
    max_seconds: float | None = None,
) -> dict[str, float]:
    """``one_row_ms`` (median of ``calls`` one-row calls) and ``rows_1000_ms`` (one call on
    1,000 rows of ``X``, drawn with replacement when it has fewer) of ``model``.

    Args:
        model: anything with ``predict_proba`` (classifiers) or ``predict`` (regressors).
        X: rows to time on (their first row is the one-row input).
        task: binary, multiclass or regression.
        seed: seeds the draw of the 1,000 rows.
        calls: one-row calls whose median is taken.
        max_seconds: stop the one-row calls after this long (at least 3 are made): a
            candidate far over any bound needs no precise number.

    Returns:
        Both times in milliseconds (empty when ``X`` has no row).
    """
    if len(X) == 0:
        return {}
    predict = model.predict if task == "regression" else model.predict_proba
    one = X.iloc[:1]
    predict(one)  # anything built on first use is built now
    times: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        predict(one)
        times.append(time.perf_counter() - started)
        if max_seconds is not None and len(times) >= 3 and sum(times) > max_seconds:
            break
    rows = X.sample(1000, replace=len(X) < 1000, random_state=seed)
    started = time.perf_counter()
    predict(rows)
    batch = time.perf_counter() - started
    return {
        "one_row_ms": round(float(np.median(times)) * 1000, 4),
        "rows_1000_ms": round(batch * 1000, 3),
    }


@dataclass(frozen=True)
class LatencyChoice:
    """The members a bound allows and what it cost.

    Attributes:
        members: indices (into the candidates) of the chosen members.
        weights: their weights (summing to 1).
        loss: the chosen blend's (or single model's) cross-validated loss.
        threshold: its tuned threshold (binary label metrics), else ``None``.
        estimate_ms: its estimated one-row time (``inf`` when a member was not measured).
        bound_binds: the bound changed the choice.
        meets: the chosen model's estimate is within the bound.
    """

    members: list[int]
    weights: np.ndarray
    loss: float
    threshold: float | None
    estimate_ms: float
    bound_binds: bool
    meets: bool


def choose_under_bound(
    *,
    preferred: Sequence[int],
    weights: np.ndarray,
    loss: float,
    threshold: float | None,
    candidate_losses: Sequence[float],
    candidate_thresholds: Sequence[float | None],
    one_row_ms: Sequence[float | None],
    bound_ms: float | None,
    judge: Callable[[Mapping[int, float]], tuple[float, float | None]],
) -> LatencyChoice:
    """The best choice whose estimated one-row time is within ``bound_ms``.

    The preferred choice (the ensemble selection's, or the best single candidate) stands
    when it fits. Otherwise the options are that ensemble without its lightest members
    (dropped one at a time, lowest weight first, until it fits) and every single candidate
    that fits; the lowest cross-validated loss wins. When nothing fits, the fastest measured
    candidate is chosen (``meets`` is false).

    Args:
        preferred: the unconstrained choice's members (indices into the candidates).
        weights: their weights.
        loss: its cross-validated loss.
        threshold: its tuned threshold.
        candidate_losses: each candidate's cross-validated loss (ranked best first).
        candidate_thresholds: each candidate's tuned threshold.
        one_row_ms: each candidate's measured one-row time (``None``: not measured).
        bound_ms: the bound (``None``: no bound).
        judge: the loss and threshold of a blend ``{candidate index: weight}``.
    """

    def estimate(members: Sequence[int]) -> float:
        times = [one_row_ms[i] for i in members]
        return float("inf") if any(t is None for t in times) else float(sum(times))  # type: ignore[arg-type]

    first = LatencyChoice(
        list(preferred),
        np.asarray(weights, dtype=float),
        loss,
        threshold,
        estimate(preferred),
        False,
        True,
    )
    if bound_ms is None:
        return first
    if first.estimate_ms <= bound_ms:
        return first
    options: list[LatencyChoice] = []
    members = list(preferred)
    w = np.asarray(weights, dtype=float)
    while len(members) > 2:
        lightest = int(np.argmin(w))
        members.pop(lightest)
        w = np.delete(w, lightest)
        w = w / w.sum()
        if estimate(members) <= bound_ms:
            blend_loss, blend_threshold = judge(dict(zip(members, w.tolist(), strict=True)))
            options.append(
                LatencyChoice(
                    list(members), w, blend_loss, blend_threshold, estimate(members), True, True
                )
            )
            break
    for i, own in enumerate(candidate_losses):
        if estimate([i]) <= bound_ms:
            options.append(
                LatencyChoice(
                    [i], np.array([1.0]), own, candidate_thresholds[i], estimate([i]), True, True
                )
            )
            break  # ranked best first: the first that fits is the best single one
    if options:
        return min(options, key=lambda o: o.loss)
    measured = [i for i, t in enumerate(one_row_ms) if t is not None]
    if not measured:
        return _not_met(first)
    fastest = min(measured, key=lambda i: (one_row_ms[i], i))  # type: ignore[arg-type,return-value]
    return LatencyChoice(
        [fastest],
        np.array([1.0]),
        candidate_losses[fastest],
        candidate_thresholds[fastest],
        estimate([fastest]),
        fastest not in preferred or len(preferred) > 1,
        False,
    )


def _not_met(choice: LatencyChoice) -> LatencyChoice:
    """``choice`` marked as not meeting the bound (nothing was measured to do better)."""
    return LatencyChoice(
        choice.members,
        choice.weights,
        choice.loss,
        choice.threshold,
        choice.estimate_ms,
        False,
        False,
    )
