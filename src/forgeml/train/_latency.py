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
(``_api``). A candidate left unmeasured (the measuring has a deadline; the preferred choice's
members are measured first and always) is estimated from a measured candidate of its family of
similar size (``model_size``: trees x leaves, or the number of fitted parameters), scaled up
by the ratio of the sizes; with no such candidate it counts as over the bound. Timing reads
the clock: a candidate within a few percent of the bound may be in or out on a busy machine
(``max_latency_ms=None`` turns the bound off for a replayable choice).

A timing records its first call too (``first_call_ms``): it builds the compiled form (an
XGBoost walk checked against the library on its probe rows took 0.6-2.4 s at load 2). A bag
keeps the form its timing built, and the returned model holding that bag calls it without
building it again (``train._compiled``); a refit member is a new model whose form is built
again, so the time kept for the returned model's measuring counts its first call; with a
deadline, no part of the measuring expected to end past it is started.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CALLS",
    "LatencyChoice",
    "choose_under_bound",
    "estimate_unmeasured",
    "measure_latency",
    "model_size",
]

# One-row calls whose median is the one-row time.
CALLS = 10
# An unmeasured candidate is estimated only from a same-family one at most this many times
# smaller (or any larger one): beyond that, its time is unknown.
SIMILAR_SIZE = 4.0


def measure_latency(
    model: Any,
    X: pd.DataFrame,
    task: str,
    seed: int,
    *,
    calls: int = CALLS,
    max_seconds: float | None = None,
    deadline: float | None = None,
    expected: Mapping[str, float] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, float]:
    """``one_row_ms`` (median of ``calls`` one-row calls), ``rows_1000_ms`` (one call on
    1,000 rows of ``X``, drawn with replacement when it has fewer) and ``first_call_ms`` (the
    first one-row call, which builds what is built on first use: the compiled form) of
    ``model``: only what was measured.

    With a ``deadline`` every part is a call that cannot be cut once started, so a part whose
    expected time (``expected``: e.g. the members' own times, measured during the search)
    would end past it is not started, nor any part once it has passed: the first call (then
    nothing is measured), the one-row calls (at least 3 are made once the first call was),
    the 1,000-row call (then ``rows_1000_ms`` is left out). The caller says in a note what
    was not measured.

    Args:
        model: anything with ``predict_proba`` (classifiers) or ``predict`` (regressors).
        X: rows to time on (their first row is the one-row input).
        task: binary, multiclass or regression.
        seed: seeds the draw of the 1,000 rows.
        calls: one-row calls whose median is taken.
        max_seconds: stop the one-row calls after this long (at least 3 are made): a
            candidate far over any bound needs no precise number.
        deadline: when the measuring ends, on ``clock`` (``None``: no deadline).
        expected: expected times in milliseconds, keyed as the result (``first_call_ms``,
            ``one_row_ms``, ``rows_1000_ms``); a part without one is started whenever the
            deadline has not passed.
        clock: seconds, for the timings and the deadline.

    Returns:
        The times measured, in milliseconds (empty when ``X`` has no row or the first call
        would not fit before the deadline).
    """
    if len(X) == 0:
        return {}
    guess = expected or {}

    def fits(ms: float) -> bool:
        return deadline is None or clock() + ms / 1000 <= deadline

    predict = model.predict if task == "regression" else model.predict_proba
    one = X.iloc[:1]
    if not fits(guess.get("first_call_ms", 0.0) + 3 * guess.get("one_row_ms", 0.0)):
        return {}
    started = clock()
    predict(one)  # anything built on first use is built now
    first = clock() - started
    times: list[float] = []
    for _ in range(calls):
        if len(times) >= 3 and not fits(guess.get("one_row_ms", 0.0)):
            break
        started = clock()
        predict(one)
        times.append(clock() - started)
        if max_seconds is not None and len(times) >= 3 and sum(times) > max_seconds:
            break
    out = {"one_row_ms": round(float(np.median(times)) * 1000, 4)}
    if fits(guess.get("rows_1000_ms", 0.0)):
        rows = X.sample(1000, replace=len(X) < 1000, random_state=seed)
        started = clock()
        predict(rows)
        out["rows_1000_ms"] = round((clock() - started) * 1000, 3)
    out["first_call_ms"] = round(first * 1000, 3)
    return out


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
    estimated: Sequence[int] = (),
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
        estimated: candidates whose time in ``one_row_ms`` is estimated, not measured (see
            ``estimate_unmeasured``): when nothing fits, the fastest measured one is chosen.
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
    measured = [i for i, t in enumerate(one_row_ms) if t is not None and i not in estimated]
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


def model_size(model: Any) -> float | None:
    """How much a fitted model walks to predict a row, comparable within one family: a bag's
    or a pipeline's parts summed, trees x leaves for boosted trees, tree nodes for forests,
    fitted parameters for linear models and MLPs; ``None`` when it is not known."""
    parts = getattr(model, "pipelines", None)
    if parts is not None:
        sizes = [model_size(p) for p in parts]
        return None if not sizes or any(s is None for s in sizes) else float(sum(sizes))  # type: ignore[arg-type]
    steps = getattr(model, "steps", None)
    if steps:
        return model_size(steps[-1][1])
    params = model.get_params() if hasattr(model, "get_params") else {}
    try:
        if hasattr(model, "booster_") and hasattr(model.booster_, "num_trees"):  # LightGBM
            return float(model.booster_.num_trees() * (params.get("num_leaves") or 31))
        if hasattr(model, "get_booster"):  # XGBoost
            rounds = model.get_booster().num_boosted_rounds()
            leaves = params.get("max_leaves") or 2 ** (params.get("max_depth") or 6)
            return float(rounds * leaves)
        if hasattr(model, "n_iter_") and hasattr(model, "n_trees_per_iteration_"):  # sklearn HGB
            leaves = params.get("max_leaf_nodes") or 31
            return float(model.n_iter_ * model.n_trees_per_iteration_ * leaves)
        if hasattr(model, "estimators_") and hasattr(model, "n_estimators"):  # forests
            trees = np.asarray(model.estimators_, dtype=object).ravel()
            return float(sum(t.tree_.node_count for t in trees))
        if hasattr(model, "model_") and hasattr(model.model_, "tree_count_"):  # CatBoost
            return float(model.model_.tree_count_ * 2 ** (params.get("depth") or 6))
        if hasattr(model, "coefs_"):  # MLP
            return float(sum(np.size(c) for c in model.coefs_))
        if hasattr(model, "coef_"):
            return float(np.size(model.coef_))
    except Exception:  # a model that does not expose its structure: its size is unknown
        return None
    return None


def estimate_unmeasured(
    one_row_ms: Sequence[float | None],
    families: Sequence[str],
    sizes: Sequence[float | None],
) -> tuple[list[float | None], list[int]]:
    """Each unmeasured candidate's one-row time estimated from the measured candidates of its
    family whose size is known and at least ``1 / SIMILAR_SIZE`` of its own: the measured
    time scaled by the ratio of the sizes when it is larger (the fixed cost of a call makes
    that err high), the lowest such estimate. Unknowable stays ``None``.

    Returns:
        The times (measured, estimated or ``None``) and the indices that were estimated.
    """
    if not len(one_row_ms) == len(families) == len(sizes):
        raise ValueError(
            f"one_row_ms, families and sizes must have one entry per candidate; got "
            f"{len(one_row_ms)}, {len(families)} and {len(sizes)}"
        )
    out = list(one_row_ms)
    estimated: list[int] = []
    for i, time_ms in enumerate(one_row_ms):
        size = sizes[i]
        if time_ms is not None or size is None or size <= 0:
            continue
        guesses = [
            float(t) * max(1.0, size / float(s))
            for t, f, s in zip(one_row_ms, families, sizes, strict=True)
            if t is not None
            and f == families[i]
            and s is not None
            and s > 0
            and size / s <= SIMILAR_SIZE
        ]
        if guesses:
            out[i] = round(min(guesses), 4)
            estimated.append(i)
    return out, estimated
