"""``train``: from a table to the best model found within a time budget."""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from forgeml._json import dumps_text
from forgeml.data import leak_gate, leak_summary, refuse_infinite
from forgeml.errors import InputError
from forgeml.security import PiiPolicy, Principal
from forgeml.store import Workspace
from forgeml.train._calibration import choose_calibration
from forgeml.train._compiled import compiled_before
from forgeml.train._config import TrainConfig
from forgeml.train._ensemble import ensemble_selection
from forgeml.train._latency import (
    choose_under_bound,
    estimate_unmeasured,
    measure_latency,
    model_size,
)
from forgeml.train._memory import format_bytes
from forgeml.train._metrics import METRICS, REPORTED, Metric, get_metric, tune_threshold
from forgeml.train._model import FoldBag, StackedBag, TrainedModel
from forgeml.train._portfolio import portfolio_configs, size_class
from forgeml.train._progress import ProgressHandler, TrainingProgress, log_progress
from forgeml.train._result import TrainResult
from forgeml.train._search import (
    Lanes,
    MemoryBudget,
    Problem,
    TrialRecord,
    fit_pipeline,
    plan_lanes,
    run_search,
)
from forgeml.train._stacking import (
    BAGGED_FAMILIES,
    STACK_INPUTS,
    Level2Probe,
    StackLevel,
    fit_level2,
    level2_configs,
    probe_level2,
    stack_estimate,
)
from forgeml.train._target import forward_transform, skewed_positive
from forgeml.train._task import (
    MIN_CLASS_ROWS,
    MIN_ROWS,
    detect_task,
    infer_column_kinds,
    infer_kind,
)
from forgeml.train._validation import (
    choose_validation,
    holdout_folds,
    holdout_split,
    make_folds,
    n_folds_for,
)
from forgeml.train._zoo import FAMILIES, available_families, load_libraries, patience_for

__all__ = ["TrainConfig", "check_training_data", "train"]

_log = logging.getLogger("forgeml.train")

# Most candidates Caruana's selection looks at.
_ENSEMBLE_CANDIDATES = 8
# Best trials whose refit time the search keeps in reserve.
_REFIT_RESERVED = 3
# The second stacking level's time is kept in reserve when under this share of the budget.
_STACK_SHARE = 0.25
# Seconds of one-row calls that suffice to time the returned model (at least 3 calls are made;
# a fast model makes all 10 well within it).
_MEASURE_SECONDS = 0.25


class _Phases:
    """Seconds each phase of a training took, a phase running from the end of the one
    before (``TrainResult.phases``)."""

    def __init__(self, since: float) -> None:
        self.seconds: dict[str, float] = {}
        self._last = since

    def end(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now


def _check_arguments(data: pd.DataFrame, target: str, time_column: str | None) -> None:
    if data.columns.duplicated().any():
        dupes = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise InputError(f"The data has duplicate column names: {', '.join(dupes)}")
    if target not in data.columns:
        raise InputError(f"The target column {target!r} is not in the data")
    # forgeml's values are finite numbers or missing (forgeml.data._finite)
    refuse_infinite(
        data,
        where="The training data",
        hint=" (replace them, or add the file as a dataset with --non-finite missing)",
    )
    if time_column is not None:
        if time_column not in data.columns:
            raise InputError(f"The time column {time_column!r} is not in the data")
        if time_column == target:
            raise InputError("The time column cannot be the target")


def check_training_data(
    data: pd.DataFrame,
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    sensitive: Sequence[str] = (),
) -> None:
    """Refuse a table that training would refuse, before anything is written or spent.

    The checks ``train`` makes on its input, run alone: the workflow that adds a file as a
    dataset and trains on it calls this on the table first, so a file training cannot use is
    refused before a dataset version is committed.

    Args:
        data: the table (features and the target).
        config: the training's ``TrainConfig`` (or its fields); its ``target`` is required.
        sensitive: sensitive columns given with the table.

    Raises:
        InputError: no target given or not in the table; duplicate column names; a column to
            drop or a sensitive or time column the table lacks; a target missing on every row,
            constant or with fewer than ``MIN_ROWS`` labelled rows; a class with fewer than
            ``MIN_CLASS_ROWS`` rows; a task or metric that does not fit the target.
    """
    cfg = _config(config, {})
    target = cfg.target
    if target is None:
        raise InputError("Training needs a target: --target COLUMN (target= in Python)")
    drop = [c for c in cfg.drop if c not in data.columns]
    if drop:
        raise InputError(f"Cannot drop columns the data lacks: {', '.join(map(str, drop))}")
    if target in cfg.drop:
        raise InputError(f"Cannot drop the target column {target!r}")
    sensitive_columns = list(cfg.sensitive if cfg.sensitive is not None else sensitive)
    lacking = [c for c in sensitive_columns if c not in data.columns]
    if lacking:
        raise InputError(f"The sensitive column {lacking[0]!r} is not in the data")
    _check_arguments(data, target, cfg.time_column)
    y = data[target]
    y = y[y.notna()]
    if len(y) == 0:
        raise InputError(f"The target column {target!r} is missing on every row")
    if len(y) < MIN_ROWS:
        raise InputError(
            f"Training needs at least {MIN_ROWS} rows with a target to hold out a test split "
            f"and cross-validate; got {len(y)}"
        )
    if y.nunique() < 2:
        raise InputError(
            f"The target column {target!r} is constant ({y.iloc[0]!r}); nothing to learn"
        )
    kinds = dict(cfg.column_kinds)
    task = detect_task(y, kinds.get(target) or infer_kind(y), cfg.task)
    get_metric(cfg.metric, task)
    _encode_target(y, task, [])


def _encode_target(
    y: pd.Series, task: str, notes: list[str]
) -> tuple[np.ndarray, list[Any] | None]:
    if task == "regression":
        values = pd.to_numeric(y, errors="coerce").astype(float).to_numpy()
        if not np.all(np.isfinite(values)):
            raise InputError("The target has values that are not finite numbers")
        return values, None
    labels = y.to_numpy()
    try:
        classes, codes = np.unique(labels, return_inverse=True)
    except TypeError:  # mixed types: compare as text
        classes, codes = np.unique(labels.astype(str), return_inverse=True)
    counts = np.bincount(codes)
    rare = int(np.argmin(counts))
    if counts[rare] < MIN_CLASS_ROWS:
        raise InputError(
            f"The target class {classes[rare]!r} has {counts[rare]} row"
            f"{'s' if counts[rare] != 1 else ''}; every class needs at least "
            f"{MIN_CLASS_ROWS} (one for the test split, two for cross-validation). "
            "Drop or merge rare classes"
        )
    values = [c.item() if isinstance(c, np.generic) else c for c in classes]
    return codes.astype(int), values


def _input_schema(X: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    schema: dict[str, dict[str, Any]] = {}
    for column in X.columns:
        values = X[column]
        entry: dict[str, Any] = {
            "kind": kinds[column],
            "dtype": str(values.dtype),
            "missing": round(float(values.isna().mean()), 6),
        }
        kind = kinds[column]
        if kind == "categorical":
            counts = values.dropna().astype(str).value_counts()
            entry["categories"] = sorted(counts.index[:250].tolist())
            entry["n_categories"] = len(counts)
        elif kind in ("numeric", "integer") and pd.api.types.is_numeric_dtype(values.dtype):
            if values.notna().any():
                entry["min"] = float(values.min())
                entry["max"] = float(values.max())
        elif kind == "datetime":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = pd.to_datetime(values, errors="coerce", format="mixed")
            if parsed.notna().any():
                entry["min"] = parsed.min().isoformat()
                entry["max"] = parsed.max().isoformat()
        schema[column] = entry
    return schema


# A test score at least this good is reported as too good to be true.
_NEAR_PERFECT = {"roc_auc": 0.995, "r2": 0.99, "accuracy": 0.995}
# A column with at least this share of the permutation importance dominates the model.
_DOMINANT_SHARE = 0.5
# Held-out rows the permutation importance reads at most, and at least when its deadline
# cannot pay for more (fewer would make the importance shares noise).
_IMPORTANCE_ROWS = 1000
_IMPORTANCE_MIN_ROWS = 100
# Held-out rows a column of the permutation check the search keeps time for: the check reads
# up to _IMPORTANCE_ROWS in whatever time is left at its turn, which the estimates' margins
# leave (measured loaded at 60 s: the held-out evaluation took half the time kept for it on
# california-housing and german-credit-amount, the check with 1,000 rows a column most of it).
_IMPORTANCE_RESERVED_ROWS = 250
# Shuffled copies are predicted in calls of about this many rows.
_IMPORTANCE_CHUNK_ROWS = 50_000
# Seconds past its deadline after which the check stops (a budget spent to its end by the
# search still leaves the check a pass on the fewest rows for an ordinary model).
_IMPORTANCE_GRACE = 1.0


def finish_rows_for(test_rows: int, columns: int) -> int:
    """Rows the returned model is expected to predict after the search, the time the search
    keeps for: the held-out rows, the 1,000-row latency call and the permutation check's
    shuffled copies at ``_IMPORTANCE_RESERVED_ROWS`` a column (and its base call), which
    reads up to ``_IMPORTANCE_ROWS`` a column when the time left at its turn pays for them
    and never fewer than ``_IMPORTANCE_MIN_ROWS``."""
    return test_rows + 1000 + min(test_rows, _IMPORTANCE_RESERVED_ROWS) * (columns + 1)


def too_good_to_be_true(
    model: Any,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    *,
    task: str,
    metric: Metric,
    test_metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, float],
    kinds: Mapping[str, str],
    seed: int = 0,
    deadline: float | None = None,
    notes: list[str] | None = None,
) -> list[str]:
    """Warnings that a model is better than honest data allows: a near-perfect test score,
    or one column carrying most of the model's permutation importance on held-out rows (the
    mark of a domain leak such as bank marketing's ``duration``, which no statistic on the
    data alone can name).

    The importance costs one prediction of the sampled rows (1,000) per column; the shuffled
    copies are predicted together. With a ``deadline`` (``time.monotonic()``) that the time
    left cannot pay for, it reads fewer rows (at least 100; the warning names how many):
    columns shuffled in groups would save more, but correlated columns shuffled together
    (bank marketing's five economic indicators) hide a dominant one. A second past the
    deadline it stops, saying so in ``notes``, after the columns checked so far (in eighths).

    Returns:
        One sentence per warning, naming the column and the rows it was computed on.
    """
    warnings_: list[str] = []
    n = len(y_test)
    for name, limit in _NEAR_PERFECT.items():
        value = test_metrics.get(name)
        if name == "accuracy" and baseline_metrics.get(name, 0.0) >= limit:
            continue  # a majority class that large makes high accuracy trivial
        if value is not None and math.isfinite(value) and value >= limit:
            warnings_.append(
                f"the test {name} is {value:.4f} on {n:,} held-out rows: a column may give the "
                "target away (see the leak checks; domain leaks such as a value known only "
                "after the outcome are not caught by statistics)"
            )
            break
    columns = [c for c in X_test.columns if kinds.get(str(c)) != "identifier"]
    if len(columns) < 2 or n < 50:
        return warnings_
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n, _IMPORTANCE_ROWS), replace=False))

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(
            model.predict(frame) if task == "regression" else model.predict_proba(frame)
        )

    try:
        started = time.monotonic()
        base_pred = predict(X_test.iloc[rows])
        call = max(time.monotonic() - started, 1e-6)  # one prediction of the sampled rows
        if deadline is not None and len(rows) > _IMPORTANCE_MIN_ROWS:
            # a wide table or a slow model: fewer rows rather than an overrun budget
            calls = max(deadline - time.monotonic(), 0.0) / call  # what the time left pays for
            if calls < len(columns):
                keep = max(_IMPORTANCE_MIN_ROWS, int(len(rows) * calls / len(columns)))
                kept = np.sort(rng.choice(len(rows), keep, replace=False))
                rows, base_pred = rows[kept], base_pred[kept]
        X, y = X_test.iloc[rows].reset_index(drop=True), y_test[rows]
        base = float(metric.loss(y, base_pred))
        drops: dict[Any, float] = {}
        per_call = max(1, _IMPORTANCE_CHUNK_ROWS // len(X))  # shuffled copies a prediction
        if deadline is not None:  # in eighths, to stop at the deadline
            per_call = min(per_call, math.ceil(len(columns) / 8))
        for first in range(0, len(columns), per_call):
            if deadline is not None and first and time.monotonic() > deadline + _IMPORTANCE_GRACE:
                if notes is not None:
                    notes.append(
                        f"the held-out permutation check was cut at the budget's end after "
                        f"{first} of {len(columns)} columns ({len(X):,} rows): a column "
                        "carrying most of the model's importance may have gone unnoticed"
                    )
                return warnings_
            chunk = columns[first : first + per_call]
            copies = []
            for column in chunk:
                copy = X.copy()
                copy[column] = X[column].to_numpy()[rng.permutation(len(X))]
                copies.append(copy)
            pred = predict(pd.concat(copies, ignore_index=True))
            for i, column in enumerate(chunk):
                loss = float(metric.loss(y, pred[i * len(X) : (i + 1) * len(X)]))
                drops[column] = max(loss - base, 0.0)
        total = sum(drops.values())
    except ValueError:  # e.g. a class missing from the sampled rows
        return warnings_
    if total <= 0:
        return warnings_
    top = max(drops, key=lambda c: drops[c])
    share = drops[top] / total
    if share >= _DOMINANT_SHARE:
        warnings_.append(
            f"{top!r} carries {100 * share:.0f}% of the model's permutation importance "
            f"({metric.name}, {len(X):,} held-out rows): check that it is known when "
            f"predictions are made; if it is only known after the outcome, drop it "
            f"(--drop {top})"
        )
    return warnings_


def failed_trials(records: Sequence[TrialRecord]) -> dict[str, dict[str, Any]]:
    """Per family with a failed trial: its trials, how many failed, whether all did, and the
    first failure's error."""
    out: dict[str, dict[str, Any]] = {}
    for family in dict.fromkeys(r.family for r in records):
        own = [r for r in records if r.family == family and r.state != "skipped"]
        failed = [r for r in own if r.state == "failed"]
        if failed:
            out[family] = {
                "trials": len(own),
                "failed": len(failed),
                "all_failed": len(failed) == len(own),
                "first_error": failed[0].note,
            }
    return out


def _record_failures(run: Any, failures: Mapping[str, Mapping[str, Any]], notes: list[str]) -> None:
    """Failed trials on the run (a metric and a tag per family) and in the notes."""
    run.log_metrics({"failed_trials": float(sum(v["failed"] for v in failures.values()))})
    for family, v in failures.items():
        text = f"{v['failed']} of {v['trials']} trials failed; first error: {v['first_error']}"
        run.set_tags({f"forgeml.failed.{family}": text})
        notes.append(f"{family}: {text}")


# Families that stop early on a split of each fold's training rows and refit a fixed number
# of rounds.
_STOPPED_EARLY = ("lgbm", "xgb", "catboost", "hgb")


def _refit_rounds_share(record: TrialRecord) -> float:
    """The refit's boosting rounds over the rounds a fold fitted: a fold kept fitting
    ``patience_for`` rounds past its best one (HistGradientBoosting half as many, on its own
    validation rows), the refit fits the folds' mean best round plus 10%. Measured on
    german-credit-amount's 800 training rows (5 folds, loaded machine): CatBoost's starting
    point kept its folds' best rounds after 28 to 452 rounds and refitted in 7.3 s,
    estimated 12.9 s from the folds' whole time and 11.2 s from their rounds;
    HistGradientBoosting's in 0.69 s, estimated 1.06 s and 0.67 s."""
    rounds = record.rounds
    if record.family not in _STOPPED_EARLY or not rounds or not record.best_iterations:
        return 1.0
    patience = patience_for(record.family, record.params)
    if record.family == "hgb":
        patience //= 2
    fitted = float(np.mean(record.best_iterations)) + patience
    return min(1.0, rounds / fitted)


def _refit_estimate(record: TrialRecord, problem: Problem) -> float:
    """Seconds a refit on all training rows should take, from the trial's fold fits (their
    rows scaled to all rows, their rounds to the refit's), with a 1.2x margin."""
    if not record.fit_seconds:
        return 0.0
    fold_rows = float(np.mean([len(t) for t, _ in problem.folds.splits]))
    scale = len(problem.y) / max(1.0, fold_rows)
    return float(np.mean(record.fit_seconds)) * scale * 1.2 * _refit_rounds_share(record)


def _ranked(records: list[TrialRecord]) -> list[TrialRecord]:
    complete = [r for r in records if r.state == "complete" and r.loss is not None]
    return sorted(complete, key=lambda r: (r.loss, r.number))  # type: ignore[arg-type,return-value]


def _ensemble_candidates(ranked: list[TrialRecord]) -> list[TrialRecord]:
    """What ensemble selection picks from: the best trials, then each family's best trial
    when none of its trials is among them (a family behind on its own can still lower the
    blend's loss: its errors differ from the leaders', which on a small table are often
    many trials of one family)."""
    candidates = ranked[:_ENSEMBLE_CANDIDATES]
    families = {r.family for r in candidates}
    for record in ranked[_ENSEMBLE_CANDIDATES:]:
        if record.family not in families:
            families.add(record.family)
            candidates.append(record)
    return candidates


# Rows the search's guess of the ensemble's members is selected on (a fixed stride of them).
_LIKELY_ROWS = 4000


def _likely_blend(
    problem: Problem, candidates: Sequence[TrialRecord]
) -> tuple[list[TrialRecord], np.ndarray]:
    """The members ensemble selection would pick from ``candidates`` (ranked, best first)
    and their weights (summing to 1), selected on up to ``_LIKELY_ROWS`` of the out-of-fold
    rows. Before two candidates have out-of-fold predictions, the best ``_REFIT_RESERVED``
    with equal weights."""
    usable = [r for r in candidates if r.oof is not None]
    if len(usable) < 2:
        bare = list(candidates[:_REFIT_RESERVED])
        return bare, np.full(len(bare), 1.0 / max(1, len(bare)))
    covered = problem.folds.covered
    rows = covered[:: max(1, len(covered) // _LIKELY_ROWS)]
    y = problem.y[rows]
    preds = [r.oof[rows] for r in usable]  # type: ignore[index]
    weights, _ = ensemble_selection(preds, _ensemble_loss_fn(problem, y))
    order = [i for i in np.argsort(-weights, kind="stable") if weights[i] > 0]
    return [usable[i] for i in order], weights[order] / weights[order].sum()


def _likely_members(problem: Problem, candidates: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The members ensemble selection would pick from ``candidates`` (ranked, best first),
    selected on up to ``_LIKELY_ROWS`` of the out-of-fold rows: what the held-out evaluation
    of the returned level-1 model predicts with, a guess the search keeps time for. Before
    any candidate has out-of-fold predictions, the best ``_REFIT_RESERVED``."""
    return _likely_blend(problem, candidates)[0]


def _level2_verdict(
    problem: Problem, candidates: Sequence[TrialRecord], probes: Mapping[str, Level2Probe]
) -> str | None:
    """Why a second stacking level is not worth its time, or ``None`` when it may be (or
    nothing was probed to judge by).

    Each probe fitted one level-2 model on the rows outside the first fold and predicted
    that fold; the level-1 blend the ensemble selection would pick (``_likely_blend``) has
    out-of-fold predictions for the same rows. A second level is kept only when its
    out-of-fold loss beats the level-1 choice's: when its best probed model does not beat
    the level-1 blend on the probe's fold, the time it would take (its fit and its model's
    held-out evaluation, a quarter of a 60 s budget on california-housing) goes to the
    search instead. The level-1 weights were selected on rows that include that fold, which
    favours level 1: a close call goes to the search."""
    predictions = [p.prediction for p in probes.values() if p.prediction is not None]
    members, weights = _likely_blend(problem, candidates)
    if not predictions or any(r.oof is None for r in members):
        return None
    rows = problem.folds.splits[0][1]
    if len(predictions[0]) != len(rows):
        return None
    loss = _ensemble_loss_fn(problem, problem.y[rows])
    level1 = float(loss(sum(w * r.oof[rows] for r, w in zip(members, weights, strict=True))))  # type: ignore[index]
    level2 = min(float(loss(p)) for p in predictions)
    if level2 < level1:
        return None
    metric = problem.metric
    if metric.tunes_threshold and problem.task == "binary":
        shown = "log_loss"  # what the selection's proxy reads
    elif metric.greater_is_better:
        shown, level1, level2 = metric.name, -level1, -level2
    else:
        shown = metric.name
    return (
        f"no second stacking level: on the first fold ({len(rows):,} rows, out of fold) its "
        f"best probed model scored {shown} {level2:.5g}, the level-1 blend {level1:.5g}; its "
        "time went to the search"
    )


def _stack_inputs(ranked: list[TrialRecord]) -> list[TrialRecord]:
    """The level-1 bags a second stacking level would read: the ensemble candidates of the
    bagged families that kept their fold models."""
    candidates = _ensemble_candidates(ranked)
    return [r for r in candidates if r.family in BAGGED_FAMILIES and r.fold_models][:STACK_INPUTS]


def _ensemble_loss_fn(problem: Problem, y: np.ndarray) -> Any:
    metric = problem.metric
    if metric.tunes_threshold and problem.task == "binary":
        # a threshold per step would be slow: select on log loss, judge on the metric after
        proxy = METRICS["log_loss"]
        return lambda p: proxy.loss(y, p)
    return lambda p: metric.loss(y, p)


def _judge(problem: Problem, y: np.ndarray, pred: np.ndarray) -> tuple[float, float | None]:
    """Loss of out-of-fold predictions and the tuned threshold (binary label metrics)."""
    metric = problem.metric
    threshold = None
    if metric.tunes_threshold and problem.task == "binary":
        threshold = tune_threshold(metric, y, pred)
    return metric.loss(y, pred, threshold=threshold), threshold


def _f1_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The threshold on the positive class's probability that maximises F1 (the candidates
    and tie rule of ``tune_threshold``, every candidate counted in one vectorised pass)."""
    scores = proba[:, 1]
    candidates = np.append(np.unique(np.quantile(scores, np.linspace(0.0, 1.0, 101))), 0.5)
    candidates = np.array(sorted(candidates, key=lambda c: abs(c - 0.5)))
    positive = y == 1
    predicted = scores[None, :] >= candidates[:, None]
    tp = (predicted & positive[None, :]).sum(axis=1)
    denominator = predicted.sum(axis=1) + positive.sum()
    f1 = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return float(candidates[int(np.argmax(f1 > f1.max() - 1e-12))])


def _test_metrics(
    task: str, metric: Metric, y: np.ndarray, pred: np.ndarray, threshold: float | None
) -> dict[str, float]:
    names = list(dict.fromkeys([metric.name, *REPORTED[task]]))
    out: dict[str, float] = {}
    for name in names:
        m = METRICS[name]
        try:
            out[name] = m.score(y, pred, threshold=threshold)
        except ValueError:  # e.g. AUC when the test split lacks a class
            out[name] = float("nan")
    return out


_BOARD_COLUMNS = [
    "model",
    "trial",
    "cv_std",
    "fit_s",
    "trial_s",
    "one_row_ms",
    "rows_1000_ms",
    "chosen",
    "latency_cost",
    "params",
]


def _leaderboard(
    ranked: list[TrialRecord],
    metric: Metric,
    extra_rows: Sequence[dict[str, Any]],
    latencies: Mapping[int, Mapping[str, float]],
    chosen_trial: int | None,
    latency_cost: float,
) -> pd.DataFrame:
    """Every complete trial, then the ensembles, best first. ``one_row_ms`` and
    ``rows_1000_ms`` are each candidate's measured prediction time (NaN when it was not a
    candidate); ``chosen`` marks the returned model's row, whose ``latency_cost`` is the
    cross-validated score the latency bound cost (0 when it did not bind)."""
    rows = []
    for r in ranked:
        measured = latencies.get(r.number, {})
        chosen = r.number == chosen_trial
        rows.append(
            {
                "model": r.family,
                "trial": r.number,
                metric.name: r.score,
                "cv_std": float(np.std(r.fold_scores)) if len(r.fold_scores) > 1 else float("nan"),
                "fit_s": round(float(np.mean(r.fit_seconds)), 3) if r.fit_seconds else None,
                "trial_s": round(r.seconds, 3),
                "one_row_ms": measured.get("one_row_ms", float("nan")),
                "rows_1000_ms": measured.get("rows_1000_ms", float("nan")),
                "chosen": chosen,
                "latency_cost": latency_cost if chosen else float("nan"),
                "params": dumps_text(r.own_params(), sort_keys=True, lenient=True),
                "target_transform": r.transform,
            }
        )
    rows.extend(extra_rows)
    columns = [*_BOARD_COLUMNS[:2], metric.name, *_BOARD_COLUMNS[2:], "target_transform"]
    board = pd.DataFrame(rows, columns=columns)
    if len(board):
        board = board.sort_values(
            [metric.name, "trial"], ascending=[not metric.greater_is_better, True], kind="stable"
        ).reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board


def _trials_table(records: list[TrialRecord], task: str) -> pd.DataFrame:
    """Every trial (``trials.csv``); in regression with the target transform it fitted."""
    table = pd.DataFrame(
        [
            {
                "trial": r.number,
                "model": r.family,
                "state": r.state,
                "score": r.score,
                "fold_scores": dumps_text([round(s, 6) for s in r.fold_scores]),
                "seconds": round(r.seconds, 3),
                "fold_fit_seconds": dumps_text([round(s, 3) for s in r.fit_seconds]),
                "rounds": r.rounds,
                "note": r.note,
                "predicted_mb": (
                    round(r.predicted_bytes / 1024**2, 1) if r.predicted_bytes else None
                ),
                "params": dumps_text(r.own_params(), sort_keys=True, lenient=True),
            }
            for r in records
        ]
    )
    if task == "regression":
        table["target_transform"] = [r.transform for r in records]
    return table


def train(
    data: pd.DataFrame | str,
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    test_data: pd.DataFrame | None = None,
    workspace: Workspace | None = None,
    progress: bool | ProgressHandler = False,
    actor: Principal | str | None = None,
    pii: Mapping[str, str] | None = None,
    pii_default: str = "hash",
    **options: Any,
) -> TrainResult:
    """Find the best model for ``target`` within ``time_budget`` seconds.

    Holds out a test split (the latest rows with ``time_column``, or the test part of a
    recorded ``split``), searches model families and their parameters with cross-validation
    on the rest, builds a greedy ensemble when it beats the best single model out of fold,
    refits on all training rows and scores the held-out rows once. The call returns within
    the budget (plus a small margin for a fit that cannot be interrupted). The training is
    tracked as one run, which records its ``TrainConfig`` (``train_config.json``). Trained
    from a dataset version, the rows it held out are recorded as a named split of that
    version (``holdout-...``), linked from the run and from the registered model, so that
    an evaluation later knows which rows the model never saw.

    Example::

        result = fm.train(df, target="income", time_budget=60)
        result = fm.train("bank@1", fm.TrainConfig(target="y", time_budget=120))
        result.leaderboard
        result.model.predict_proba(new_rows)

    Args:
        data: the table (features and the target), or a dataset version of the workspace
            (``"adult"``, ``"adult@3"``): its target, time column, column kinds and sensitive
            columns are the defaults, and the run records it as lineage.
        config: what to train and how (``TrainConfig`` or its dict); keyword ``options``
            override its fields.
        test_data: held-out rows to evaluate on instead (same columns as ``data``): all of
            ``data`` is then used for the search and the refit, e.g. to compare tools on
            one fixed split.
        workspace: where to record (default: the default workspace).
        progress: a callable given a ``TrainingProgress`` event after every trial and at
            each change of phase (the command line draws them as a live view); ``True``
            logs one line per event on the ``forgeml.train`` logger.
        actor: who trains (recorded on the run and the recorded split; default: the local
            user of the workspace's settings).
        pii: the PII policy's declared part for a table (column -> ``hash``, ``mask`` or
            ``keep``), as ``forgeml.data.add`` takes it: other columns named like personal
            data or whose values are mostly e-mail addresses, phone, card or social security
            numbers are hashed too (``pii_default``). The policy is applied before anything
            else, so the model, the run's files and a registered bundle hold only what it
            leaves; the result carries it (``result.pii``), ``register`` copies it into the
            bundle and the server hashes raw requests the same way. ``result.model`` takes
            those columns hashed (or masked) and refuses raw values in them, naming the
            columns: apply ``forgeml.security.apply_pii(rows, settings, policy=result.pii)``
            first, or predict with ``forgeml.load``. A dataset version keeps the policy it
            was added with.
        pii_default: the action for detected PII columns of a table (``keep`` turns detection
            off; declared columns still apply).
        **options: any ``TrainConfig`` field: ``target``, ``task``, ``metric``,
            ``time_budget``, ``models``, ``seed``, ``n_jobs``, ``time_column``,
            ``column_kinds``, ``test_size``, ``split``, ``max_trials``, ``evaluate``,
            ``drop`` (recorded on the run with the feature list, ``features.json``),
            ``sensitive`` (default: the dataset's; audited, not model inputs unless
            ``use_sensitive``), ``use_sensitive``, ``allow_leaks`` (train although the leak
            gate found columns that give the target away), ``experiment``, ``run_name``
            (see ``TrainConfig``).

    Returns:
        The result: ``.model``, ``.leaderboard``, ``.test_metrics``, ``.run_id``, ``.split``...

    Raises:
        InputError: an unknown option or a value that does not fit it; a missing, constant
            or all-missing target; a class with fewer than 3 rows; fewer than 20 rows; an
            unknown model family, metric or task; a metric that does not fit the task; a
            ``split`` that is not recorded with the dataset; a leak (before any of the budget
            is spent, unless ``allow_leaks``); every trial failed.
    """
    started = time.monotonic()
    cfg = _config(config, options)
    target, time_column = cfg.target, cfg.time_column
    column_kinds: dict[str, str] | None = dict(cfg.column_kinds) or None
    source: _DatasetSource | None = None
    ws_given = workspace
    if isinstance(data, str):
        if pii:
            raise InputError(
                "pii= applies to a table; a dataset version keeps the PII policy it was added "
                "with (forgeml data add --pii)"
            )
        source = _DatasetSource.resolve(data, workspace)
        data = source.frame
        target = target or source.target
        time_column = time_column or source.time_column
        column_kinds = {**source.column_kinds, **(column_kinds or {})}
    if target is None:
        raise InputError("train needs target= (the column to predict)")
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"train takes a pandas DataFrame; got {type(data).__name__}")
    drop = list(cfg.drop)
    use_sensitive, allow_leaks = cfg.use_sensitive, cfg.allow_leaks
    sensitive_columns = list(
        dict.fromkeys(
            cfg.sensitive if cfg.sensitive is not None else (source.sensitive if source else ())
        )
    )
    if drop:
        missing = [c for c in drop if c not in data.columns]
        if missing:
            raise InputError(f"Cannot drop columns the data lacks: {', '.join(map(str, missing))}")
        if target in drop:
            raise InputError(f"Cannot drop the target column {target!r}")
        data = data.drop(columns=drop)
        if column_kinds:
            column_kinds = {k: v for k, v in column_kinds.items() if k not in drop}
    lacking = [c for c in sensitive_columns if c not in data.columns and c not in drop]
    if lacking:
        raise InputError(
            f"The sensitive column {lacking[0]!r} is not in the data "
            f"(columns: {', '.join(map(str, list(data.columns)[:12]))})"
        )
    if target in sensitive_columns:
        raise InputError(f"The target {target!r} cannot also be a sensitive column")
    sensitive_columns = [c for c in sensitive_columns if c not in drop]
    _check_arguments(data, target, time_column)
    if source is not None:
        policy = source.pii
        if policy.changed and isinstance(test_data, pd.DataFrame):
            # a test table given in memory is hashed or masked as the dataset's rows were
            from forgeml.security import apply_pii
            from forgeml.tracking import default_workspace

            settings = (workspace or default_workspace()).settings
            test_data, _ = apply_pii(test_data, settings, policy=policy)
    else:  # a table in memory: the dataset path's policy, applied before anything else
        data, test_data, policy = _apply_pii(
            data, test_data, workspace, pii, pii_default, sensitive_columns, target, time_column
        )
    budget = cfg.time_budget
    seed = cfg.seed
    hard_end = started + budget
    notes: list[str] = []
    n_jobs = cfg.n_jobs if cfg.n_jobs != -1 else (os.cpu_count() or 1)
    families = list(cfg.models) if cfg.models is not None else available_families()

    # -- which rows train and which test ---------------------------------------------------
    n_given_test = 0
    split_name: str | None = None
    if cfg.split is not None:
        if source is None:
            raise InputError(
                "split= names a split recorded with a dataset version: train from a dataset "
                "(NAME or NAME@V), not a table"
            )
        if test_data is not None:
            raise InputError("split= and test_data= both choose the test rows; give one")
        data, n_given_test, validation_rows = _use_recorded_split(source, cfg.split, data, target)
        split_name = cfg.split
        if validation_rows:
            notes.append(
                f"split {cfg.split}: its {validation_rows} validation rows are neither trained "
                "nor tested on"
            )
    kinds_all = infer_column_kinds(data, column_kinds)
    if test_data is not None:
        if not isinstance(test_data, pd.DataFrame):
            raise InputError(f"test_data must be a DataFrame; got {type(test_data).__name__}")
        lacking = [c for c in data.columns if c not in test_data.columns]
        if lacking:
            raise InputError(f"test_data lacks columns of data: {', '.join(map(str, lacking))}")
        test_rows = test_data.loc[test_data[target].notna(), list(data.columns)]
        if len(test_rows) == 0:
            raise InputError("test_data has no row with a target")
        n_given_test = len(test_rows)
        data = pd.concat([data, test_rows], ignore_index=True)
    present = data[target].notna()
    if not present.any():
        raise InputError(f"The target column {target!r} is missing on every row")
    if not present.all():
        notes.append(f"dropped {int((~present).sum())} rows whose target is missing")
        data = data.loc[present]
    if len(data) < MIN_ROWS:
        raise InputError(
            f"Training needs at least {MIN_ROWS} rows with a target to hold out a test split "
            f"and cross-validate; got {len(data)}"
        )
    y_raw = data[target]
    if y_raw.nunique() < 2:
        raise InputError(
            f"The target column {target!r} is constant ({y_raw.iloc[0]!r}); nothing to learn"
        )
    task = detect_task(y_raw, kinds_all.get(target) or infer_kind(y_raw), cfg.task)
    chosen_metric = get_metric(cfg.metric, task)
    families = [f for f in families if task in FAMILIES[f].tasks]

    is_test = np.zeros(len(data), dtype=bool)
    if n_given_test:
        is_test[len(data) - n_given_test :] = True
    if time_column is not None:
        order = _time_order(data[time_column], is_test)
        data, is_test = data.iloc[order], is_test[order]
    # the leak gate runs before any of the budget is spent: its time is not counted
    gate_started = time.monotonic()
    leaks = leak_gate(data, target=target, kinds=kinds_all, task=task, seed=seed)
    gate_seconds = time.monotonic() - gate_started
    started += gate_seconds
    hard_end += gate_seconds
    leak_errors = [f for f in leaks if f.severity.value == "error"]
    if leak_errors and not allow_leaks:
        raise InputError(
            f"Leak check: {leak_summary(leak_errors)} (or train anyway with allow_leaks=True, "
            "--allow-leaks)"
        )
    notes.extend(f"leak check: {f.message}" for f in leaks)
    excluded = [] if use_sensitive else [c for c in sensitive_columns if c in data.columns]
    features = [c for c in data.columns if c != target and c not in excluded]
    if excluded:
        notes.append(
            f"sensitive columns audited, not used as features: {', '.join(map(str, excluded))} "
            "(use_sensitive=True, --use-sensitive, to use them)"
        )
    kinds = {c: kinds_all[c] for c in features}
    usable = [c for c in features if kinds[c] != "identifier"]
    if not usable:
        raise InputError("The data has no feature columns besides the target and identifiers")
    dropped = [c for c in features if kinds[c] == "identifier"]
    if dropped:
        notes.append(f"identifier columns not used: {', '.join(map(str, dropped))}")

    y_all, classes = _encode_target(y_raw.loc[data.index], task, notes)
    source_rows = data.index.to_numpy()  # row numbers of the dataset version, when from one
    X_all = data.loc[:, features].reset_index(drop=True)
    S_all = data.loc[:, [c for c in sensitive_columns if c in data.columns]].reset_index(drop=True)
    n_classes = len(classes) if classes is not None else 0
    strat = y_all if task != "regression" else None
    if n_given_test:
        train_pos, test_pos = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    else:
        train_pos, test_pos = holdout_split(
            len(X_all),
            strat,
            test_size=cfg.test_size,
            seed=seed,
            time_ordered=time_column is not None,
        )
    X_train, y_train = X_all.iloc[train_pos].reset_index(drop=True), y_all[train_pos]
    X_test, y_test = X_all.iloc[test_pos].reset_index(drop=True), y_all[test_pos]
    S_test = S_all.iloc[test_pos].reset_index(drop=True)
    min_class = int(np.bincount(y_train).min()) if task != "regression" else None
    if min_class is not None and min_class < 2:
        raise InputError("After holding out the test split a class has fewer than 2 rows")
    validation = choose_validation(
        cfg.validation,
        task=task,
        n_rows=len(X_train),
        budget=budget,
        time_ordered=time_column is not None,
    )
    if validation == "holdout":
        folds = holdout_folds(
            len(X_train),
            y_train if task != "regression" else None,
            seed=seed,
            time_ordered=time_column is not None,
        )
    else:
        folds = make_folds(
            len(X_train),
            y_train if task != "regression" else None,
            n_folds=n_folds_for(len(X_train), min_class, budget),
            seed=seed,
            time_ordered=time_column is not None,
        )
    n_folds = len(folds)
    imbalanced = False
    if task != "regression":
        shares = np.bincount(y_train) / len(y_train)
        imbalanced = bool(shares.min() < 0.5 / n_classes)
    problem = Problem(
        X=X_train,
        y=y_train,
        kinds=kinds,
        task=task,
        n_classes=n_classes,
        metric=chosen_metric,
        folds=folds,
        seed=seed,
        n_jobs=n_jobs,
        time_ordered=time_column is not None,
        imbalanced=imbalanced,
        budget=budget,
    )

    load_libraries(families)
    # the memory limit counts from what the process holds now, with the data loaded
    memory = MemoryBudget.start(problem, cfg.memory_limit) if cfg.memory_limit is not None else None
    if task == "regression" and cfg.target_transform == "log1p" and float(np.min(y_train)) <= -1:
        raise InputError(
            f"target_transform log1p needs target values above -1; {target!r} has "
            f"{float(np.min(y_train)):g}"
        )
    _log.debug("data ready, %.2fs into the budget", time.monotonic() - started)

    # -- tracking ---------------------------------------------------------------------------
    from forgeml.tracking import default_workspace, start_run

    ws = ws_given or default_workspace()
    if source is not None and split_name is None and test_data is None:
        split_name = _record_holdout(
            ws, source, source_rows[train_pos], cfg, time_column, actor
        ).name
    run_name = cfg.run_name or (
        f"train {source.name} {target}" if source is not None else f"train {target}"
    )
    run = start_run(
        cfg.experiment or "train",
        name=run_name,
        tags={"forgeml.kind": "train", "forgeml.target": target},
        workspace=ws,
        actor=actor,
    )
    with run:
        run.log_params(
            {
                "task": task,
                "metric": chosen_metric.name,
                "time_budget": budget,
                "seed": seed,
                "models": ",".join(families),
                "target": target,
                "n_rows": len(X_all),
                "n_train_rows": len(X_train),
                "n_test_rows": len(X_test),
                "n_features": len(usable),
                "validation": validation,
                "n_folds": n_folds,
                "test_size": cfg.test_size,
                "time_column": time_column or "",
                "max_trials": cfg.max_trials or "",
                "n_jobs": n_jobs,
                "drop": ",".join(map(str, drop)),
                "sensitive": ",".join(map(str, sensitive_columns)),
                "use_sensitive": use_sensitive,
                "allow_leaks": allow_leaks,
            }
        )
        run.log_text(
            dumps_text(
                {
                    "features": [c for c in features if kinds[c] != "identifier"],
                    "identifiers": dropped,
                    "dropped": list(map(str, drop)),
                    "sensitive": list(map(str, sensitive_columns)),
                    "sensitive_used": bool(use_sensitive),
                    "leak_findings": [f.to_dict() for f in leaks],
                },
                indent=True,
                lenient=True,
            ),
            "features.json",
        )
        run.log_text(
            dumps_text({**cfg.to_dict(), "target": target}, indent=True, sort_keys=True),
            "train_config.json",
        )
        if source is not None:
            run.log_params({"dataset": source.ref, "dataset_digest": source.digest})
        if policy.changed:
            run.log_params({"pii": ",".join(f"{c}={r.action}" for c, r in policy.changed.items())})
        if split_name is not None:
            run.log_params({"split": split_name})
        _log.debug("run started, %.2fs into the budget", time.monotonic() - started)
        if task == "regression":
            problem = _target_transforms(problem, cfg.target_transform, families, notes)
            run.log_params({"target_transform": ",".join(problem.target_transforms)})
        lanes = plan_lanes(problem, cfg.parallel_trials, memory=memory, families=families)
        run.log_params({"parallel_trials": lanes.trials, "threads_per_trial": lanes.threads})
        notes.append(lanes.note())
        portfolio = portfolio_configs(task, len(X_train), families, cfg.portfolio)
        run.log_params({"portfolio": len(portfolio)})
        if portfolio:
            notes.append(
                f"zero-shot portfolio: {len(portfolio)} configurations for {task} tables of "
                f"{size_class(len(X_train))} size tried after the starting points"
            )
        if validation == "holdout":
            why = (
                "the table is large for the budget: k folds would cost k fits per "
                "configuration; validation='cv' cross-validates"
                if cfg.validation == "auto"
                else "validation='holdout'"
            )
            notes.append(
                f"validation: the trials are scored on one split of {len(folds.covered):,} of "
                f"the {len(X_train):,} training rows ({why}); members are refitted on all of "
                "them, with no second stacking level"
            )
        if memory is not None:
            run.log_params({"memory_limit": memory.limit})
            notes.append(
                f"memory limit {format_bytes(memory.limit)}: the process held "
                f"{format_bytes(memory.base)} with the data loaded; configurations predicted "
                "over what is left were shrunk or skipped (see the trials' notes)"
            )
        # Bagged members unless the folds are time-ordered (a time fold's models never saw
        # the latest rows, which a refit on all rows learns from) or one split validates (a
        # bag of one model is fitted on fewer rows than its refit, and a second stacking
        # level needs out-of-fold predictions of every row).
        bagging = cfg.bagging and not problem.time_ordered and folds.scheme == "cv"
        run.log_params({"bagging": bagging})
        result = _search_and_fit(
            problem=problem,
            families=families,
            budget=budget,
            started=started,
            hard_end=hard_end,
            max_trials=cfg.max_trials,
            warm_start=cfg.warm_start,
            lanes=lanes,
            portfolio=portfolio,
            memory=memory,
            progress=progress,
            run=run,
            X_test=X_test,
            y_test=y_test,
            classes=classes,
            features=features,
            kinds=kinds,
            target=target,
            notes=notes,
            max_latency_ms=cfg.max_latency_ms,
            bagging=bagging,
            phases=_Phases(started),
        )
        # raw values in a column the policy replaced would all read as unseen categories
        result.model.expect_pii({c: r.action for c, r in policy.changed.items()})
        report = None
        if cfg.evaluate:
            labels = y_test if classes is None else np.asarray(classes, dtype=object)[y_test]
            audit = _audit_frame(S_test, source.bins if source else {})
            rows = (
                f"split {split_name}, part test: {len(X_test):,} rows, none used in training"
                if split_name is not None
                else f"the held-out test rows: {len(X_test):,}, none used in training"
            )
            report = evaluate_model(
                result.model,
                X_test,
                labels,
                task=result.task,
                sensitive=audit,
                run=run,
                model_name=f"{target} model",
                dataset_name=source.ref if source else None,
                seed=seed,
                rows=rows,
            )
    if source is None and any(c in policy.changed for c in features):
        notes.append(
            "PII policy: "
            + ", ".join(f"{c} {policy.rules[c].action}ed" for c in features if c in policy.changed)
            + " before training: result.model takes them so and refuses raw values in them; "
            "fm.load and the server apply the policy to raw rows"
        )
    return replace(
        result,
        dataset=source.ref if source else None,
        pii=policy,
        evaluation=report,
        split=split_name,
        config=cfg,
        n_train_rows=len(X_train),
        n_test_rows=len(X_test),
    )


def _apply_pii(
    data: pd.DataFrame,
    test_data: pd.DataFrame | None,
    workspace: Workspace | None,
    declared: Mapping[str, str] | None,
    default: str,
    sensitive: Sequence[str],
    target: str,
    time_column: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, PiiPolicy]:
    """A table's PII policy (declared, then detected) applied to it and to ``test_data``."""
    from forgeml.security import apply_pii
    from forgeml.tracking import default_workspace

    if declared is not None and not isinstance(declared, Mapping):
        raise InputError(
            f"pii is a mapping of column -> hash, mask or keep; got {type(declared).__name__}"
        )
    settings = (workspace or default_workspace()).settings
    data, policy = apply_pii(
        data, settings, pii=declared, pii_default=default, sensitive=sensitive, target=target
    )
    if time_column is not None and time_column in policy.changed:
        raise InputError(
            f"pii: the time column {time_column!r} orders the rows; it cannot be hashed or "
            f"masked ({policy.rules[time_column].reason}): declare pii={{{time_column!r}: "
            "'keep'}} or drop it"
        )
    if test_data is not None and isinstance(test_data, pd.DataFrame):
        test_data, _ = apply_pii(test_data, settings, policy=policy)
    return data, test_data, policy


def _config(
    config: TrainConfig | Mapping[str, Any] | None, options: Mapping[str, Any]
) -> TrainConfig:
    """The config of a call: ``config`` (or the defaults) with keyword options applied."""
    if config is None:
        base = TrainConfig()
    elif isinstance(config, TrainConfig):
        base = config
    elif isinstance(config, Mapping):
        base = TrainConfig.build(config)
    else:
        raise InputError(
            f"config is a TrainConfig or a mapping of its fields; got {type(config).__name__}"
        )
    # ``None`` for an option means "not given" (the README's keyword style passes defaults),
    # except for a field whose default is not None but which takes None, where None is a value
    # (``max_latency_ms=None``: no latency bound)
    nullable = {
        name
        for name, field in TrainConfig.model_fields.items()
        if field.default is not None and "None" in str(field.annotation)
    }
    given = {k: v for k, v in options.items() if v is not None or k in nullable}
    if "models" in given and not isinstance(given["models"], str):
        given["models"] = list(given["models"])
    return base.replace(**given) if given else base


def _use_recorded_split(
    source: _DatasetSource, name: str, data: pd.DataFrame, target: str
) -> tuple[pd.DataFrame, int, int]:
    """The rows of a recorded split: its train part, then its labelled test part (last)."""
    from forgeml.data import split_parts
    from forgeml.errors import NotFoundError

    try:
        _info, parts = split_parts(source.ref, name, workspace=source.workspace)
    except NotFoundError as e:
        raise InputError(f"split: {e.message}") from None
    train_rows = data.loc[parts == 0]
    test_rows = data.loc[(parts == 2) & data[target].notna().to_numpy()]
    if len(test_rows) == 0:
        raise InputError(f"split {name!r} of {source.ref} has no labelled row in its test part")
    return pd.concat([train_rows, test_rows]), len(test_rows), int((parts == 1).sum())


def _record_holdout(
    ws: Workspace,
    source: _DatasetSource,
    train_rows: np.ndarray,
    cfg: TrainConfig,
    time_column: str | None,
    actor: Principal | str | None,
) -> Any:
    """Record the hold-out as a split of the dataset version: trained rows are part 0
    (train), every other row part 2 (test: held out, or unused for lack of a target)."""
    from forgeml.data import record_split
    from forgeml.data._split import parts_to_bytes

    parts = np.full(len(source.frame), 2, dtype=np.int8)
    parts[train_rows] = 0
    digest = hashlib.sha256(parts_to_bytes(parts)).hexdigest()
    return record_split(
        source.ref,
        parts,
        name=f"holdout-{digest[:10]}",
        strategy="time holdout" if time_column is not None else "holdout",
        seed=cfg.seed,
        params={"test_size": cfg.test_size, "time_column": time_column, "target": cfg.target},
        workspace=ws,
        actor=actor,
    )


@dataclass(frozen=True)
class _DatasetSource:
    """A dataset version of the workspace as training input."""

    ref: str
    name: str
    digest: str
    frame: pd.DataFrame
    target: str | None
    time_column: str | None
    sensitive: tuple[str, ...]
    column_kinds: dict[str, str]
    bins: dict[str, tuple[float, ...]]
    workspace: Workspace | None
    pii: PiiPolicy

    @classmethod
    def resolve(cls, ref: str, workspace: Workspace | None) -> _DatasetSource:
        from forgeml import data

        version = data.get(ref, workspace=workspace)
        frame = data.load(f"{version.name}@{version.version}", workspace=workspace)
        return cls(
            ref=f"{version.name}@{version.version}",
            name=version.name,
            digest=version.digest,
            frame=frame,
            target=version.target,
            time_column=version.time_column,
            sensitive=tuple(version.sensitive),
            column_kinds={c.name: str(c.kind) for c in version.schema.columns},
            bins={c.name: c.bins for c in version.schema.columns if c.bins is not None},
            workspace=workspace,
            pii=version.pii,
        )


def _audit_frame(values: pd.DataFrame, bins: Mapping[str, Sequence[float]]) -> pd.DataFrame | None:
    """The sensitive columns of the held-out rows as a fairness audit groups them."""
    from forgeml.data import sensitive_values

    audit: pd.DataFrame | None = sensitive_values(values, [str(c) for c in values.columns], bins)
    return audit


def evaluate_model(model: Any, X: pd.DataFrame, y: Any, **options: Any) -> Any:
    """``forgeml.evaluate.evaluate`` (imported on first use: it loads SHAP and Fairlearn)."""
    from forgeml.evaluate import evaluate

    return evaluate(model, X, y, **options)


def _time_order(values: pd.Series, is_test: np.ndarray) -> np.ndarray:
    """Row order by time, given test rows last."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        key = values
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key = pd.to_datetime(values, errors="coerce", format="mixed")
        if key.isna().all():
            raise InputError("The time column's values are neither numbers nor dates")
    return np.lexsort((np.arange(len(values)), key.to_numpy(), is_test))


def _target_transforms(
    problem: Problem, asked: str, families: Sequence[str], notes: list[str]
) -> Problem:
    """The regression problem with the target transforms its trials may be fitted on: the
    one asked for, or, for ``auto``, both the target and ``log1p`` of it for a skewed
    positive target when a boosting family is searched (each trial has its own; see
    ``_search._Loop._transform``), else the target only."""
    if asked != "auto":
        return replace(problem, target_transforms=(asked,))
    boosting = any(f in families for f in ("lgbm", "xgb", "catboost", "hgb"))
    if not skewed_positive(problem.y) or not boosting:
        return replace(problem, target_transforms=("none",))
    notes.append(
        "target transform per trial: the target is never negative and skewed, so each trial "
        "is fitted on the target or on log1p of it (the first starting point on both, every "
        "later trial on the best trial's so far), its out-of-fold "
        "predictions turned back to the target's units (expm1 with a shift fitted on them) "
        "before the ensemble combines members of both kinds"
    )
    return replace(problem, target_transforms=("none", "log1p"))


def _search_and_fit(
    *,
    problem: Problem,
    families: list[str],
    budget: float,
    started: float,
    hard_end: float,
    max_trials: int | None,
    progress: bool | ProgressHandler,
    run: Any,
    warm_start: Sequence[Mapping[str, Any]] = (),
    lanes: Lanes | None = None,
    portfolio: Sequence[Mapping[str, Any]] = (),
    memory: MemoryBudget | None = None,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    classes: list[Any] | None,
    features: list[str],
    kinds: dict[str, str],
    target: str,
    notes: list[str],
    max_latency_ms: float | None = None,
    bagging: bool = False,
    phases: _Phases | None = None,
) -> TrainResult:
    metric = problem.metric
    phases = phases or _Phases(started)
    phases.end("prepare")
    # time kept for selection, the test evaluation and writing the run
    finish_margin = min(2.0, 0.03 * budget) + 0.15
    ensemble_time = min(1.5, 0.03 * budget)
    # time kept for measuring the candidates' prediction latency
    latency_time = min(1.0, 0.02 * budget) + 0.1

    # rows the returned model predicts after the search: the held-out rows, the 1,000-row
    # latency and the permutation importance (a shuffled copy of the rows it reads a column,
    # kept for _IMPORTANCE_RESERVED_ROWS: it reads more when the time left pays for them)
    columns = sum(1 for kind in kinds.values() if kind != "identifier")
    finish_rows = finish_rows_for(len(X_test), columns)

    reserves: dict[str, float] = {}
    # what one level-2 fold costs against level 1, per bagged family, measured during the
    # search (the second level's reserve is an upper bound until then)
    probes: dict[str, Level2Probe] = {}
    probed: set[str] = set()
    searching = problem if lanes is None else replace(problem, n_jobs=lanes.threads)
    # The held-out evaluation calls the returned model, whose bags predict small batches
    # through compiled array functions; the search times fold models predicting through
    # their pipelines, one row and a validation fold at a time (measured loaded on
    # bike-sharing and california-housing, those estimates came to 1.9 to 3.7 times the
    # evaluation's time, the bags' own 1,000-row and one-row times to 0.9 to 2.2 times).
    # With the probes, the leaders' bags are timed as the evaluation calls them, and the
    # search's estimates of the evaluation are scaled by measured (without a margin: those
    # times already run 0.9 to 2.2 times the evaluation's) over estimated.
    timed: dict[int, dict[str, float]] = {}
    estimated: dict[int, float] = {}
    predict_scale = [1.0]
    calibrated: list[bool] = []
    latency_rows = X_test if len(X_test) else problem.X
    # each trial's one bag: the compiled form a latency measurement builds serves the
    # returned model
    bags: dict[int, FoldBag] = {}

    def calibrate(records: Sequence[TrialRecord]) -> Callable[[], None]:
        # Run on a lane (a chore of the search), on copies of the records: the search frees
        # fold models meanwhile. Returns what applies the timings on the search's thread.
        # Timed on this thread's CPU time: the trials running beside the timing stretch its
        # wall time, not what it computes, and they have ended by the held-out evaluation
        # (measured loaded, a LightGBM bag of california-housing predicting 1,000 rows:
        # 122 ms alone, 686 ms beside two LightGBM fits; its CPU time 78 and 84 ms). On the
        # wall clock, at 60 s on california-housing (loaded), the leaders' bags timed at
        # 1.9 to 7.4 s for the evaluation, the returned model of three of them then
        # predicted 1,000 rows in 0.19 to 0.46 s, and 4 to 19 s of the budget went unused.
        leaders = [r for r in records if r.number not in timed and r.fold_models]
        latencies = _candidate_latencies(
            searching,
            [],
            latency_rows,
            features,
            classes,
            time.monotonic(),
            bagged=lambda record: True,
            first=leaders,
            bags=bags,
            clock=time.thread_time,
        )

        def apply() -> None:
            timed.update(latencies)
            for r in leaders:
                if "rows_1000_ms" in timed.get(r.number, {}):
                    estimated[r.number] = _predict_estimate([r], finish_rows)
            measured = sum(_measured_finish(timed[n], finish_rows) for n in estimated)
            expected = sum(estimated.values())
            if measured > 0 and expected > 0:
                predict_scale[0] = measured / expected
            _log.debug(
                "held-out evaluation of the leaders' bags: %.2fs measured, %.2fs estimated",
                measured,
                expected,
            )

        return apply

    def predict_estimate(record: TrialRecord) -> float:
        return predict_scale[0] * _predict_estimate([record], finish_rows)

    picked: dict[tuple[int, ...], list[TrialRecord]] = {}
    guessed: list[TrialRecord] = []

    def members(ranked: list[TrialRecord]) -> list[TrialRecord]:
        # the members the ensemble selection would pick from the trials so far (one
        # selection per set of candidates)
        candidates = _ensemble_candidates(ranked)
        key = tuple(r.number for r in candidates)
        if key not in picked:
            picked[key] = _likely_members(problem, candidates)
        guessed[:] = picked[key]
        return picked[key]

    verdicts: dict[tuple[tuple[int, ...], tuple[str, ...]], str | None] = {}

    def verdict(ranked: list[TrialRecord]) -> str | None:
        # whether the probes say the second level is not worth its time (one judgement per
        # set of candidates and probes)
        candidates = _ensemble_candidates(ranked)
        key = (tuple(r.number for r in candidates), tuple(sorted(probes)))
        if key not in verdicts:
            verdicts[key] = _level2_verdict(problem, candidates, probes) if probes else None
        return verdicts[key]

    def deadline_for(ranked: list[TrialRecord], stack: float) -> float:
        # a bagged member needs no refit but predicts k times in the held-out evaluation;
        # the others refit
        level1 = sum(
            predict_estimate(r) if r.family in BAGGED_FAMILIES else _refit_estimate(r, problem)
            for r in members(ranked)
        )
        reserve = level1
        reserves.update({"level-1 evaluation": level1, "second level": 0.0, "its evaluation": 0.0})
        if stack <= _STACK_SHARE * budget and (stack == 0.0 or verdict(ranked) is None):
            # the second stacking level is kept in reserve when it takes a modest share of
            # the budget (it is skipped otherwise); once probed, with its model's held-out
            # evaluation (which it must leave time for to start)
            stacked = 0.0
            if probes:
                stacked = _stacked_finish(
                    _stack_inputs(ranked), level2_configs(ranked), predict_estimate, probes
                )
            reserve = stack + max(level1, stacked)
            reserves.update({"second level": stack, "its evaluation": stacked})
        return hard_end - finish_margin - ensemble_time - latency_time - reserve

    def probe(ranked: list[TrialRecord]) -> Callable[[], Callable[[], None]] | None:
        """Time one level-2 fold of each leading bagged family not probed yet, once half of
        the search's time has passed (the leaders are settled enough that their
        configurations are those level 2 will refit), while a cheaper second level could
        still leave the search time: the job, on copies of the records."""
        latest = deadline_for(ranked, 0.0)  # the search's end were the second level free
        current = deadline_for(ranked, stack_estimate(ranked, probes))
        now = time.monotonic()
        if now < started + 0.5 * (current - started) or now >= latest:
            return None
        inputs = [replace(r) for r in _stack_inputs(ranked)]
        configs = [replace(c) for c in level2_configs(ranked) if c.family not in probed]
        probed.update(c.family for c in configs)

        def job() -> Callable[[], None]:
            measured = {
                c.family: probe_level2(searching, inputs, c, deadline=latest) for c in configs
            }
            timings = calibrate(configs)

            def apply() -> None:
                for config in configs:
                    found = measured[config.family]
                    if found is None:
                        continue
                    probes[config.family] = found
                    _log.debug(
                        "level-2 probe of %s #%d: a fold %.2fs (level 1: %.2fs), prediction x%.2f",
                        config.family,
                        config.number,
                        found.seconds,
                        found.level1_seconds,
                        found.predict_ratio,
                    )
                timings()

            return apply

        return job

    def chores(records: list[TrialRecord]) -> Callable[[], Callable[[], None]] | None:
        # the probes and the timing of the leaders' bags take a lane while the trials on the
        # other lanes go on (measured loaded on california-housing at 60 s, run by the
        # search's own thread they took 1.3-4.2 s while both lanes waited to be told; the
        # search runs none in the deterministic mode, and one at a time)
        if not bagging:
            return None
        ranked = _ranked(records)
        job: Callable[[], Callable[[], None]] | None = None
        if any(c.family not in probed for c in level2_configs(ranked)):
            job = probe(ranked)
        if job is None and not estimated and not calibrated:
            # without a probe (the second level too slow to keep time for), the bags the
            # evaluation would predict with are timed once half of the search's time passed
            current = deadline_for(ranked, stack_estimate(ranked, probes))
            if time.monotonic() >= started + 0.5 * (current - started):
                calibrated.append(True)
                leaders = [replace(r) for r in members(ranked) if r.family in BAGGED_FAMILIES]
                job = functools.partial(calibrate, leaders)
        return job

    def search_deadline(records: list[TrialRecord]) -> float:
        if max_trials is not None:
            # the deterministic mode keeps no time measured during the search: a reserve
            # estimated from measured seconds (a starved process measures a one-row call at
            # a whole scheduling period) would end the search, or stop its trials, earlier
            # on a busy machine; only the budget's end less its fixed margins stops them
            return hard_end - finish_margin - ensemble_time - latency_time
        ranked = _ranked(records)
        if not bagging:
            reserve = sum(_refit_estimate(r, problem) for r in ranked[:_REFIT_RESERVED])
            return hard_end - finish_margin - ensemble_time - latency_time - reserve
        return deadline_for(ranked, stack_estimate(ranked, probes))

    emit: ProgressHandler | None = None
    if progress is True:
        emit = log_progress
    elif callable(progress):
        emit = progress

    def report(records: list[TrialRecord], phase: str) -> None:
        if emit is not None:
            emit(
                TrainingProgress(
                    phase=phase,
                    elapsed=time.monotonic() - started,
                    budget=budget,
                    metric=metric.name,
                    greater_is_better=metric.greater_is_better,
                    trials=tuple(records),
                )
            )

    def on_trial(record: TrialRecord, records: list[TrialRecord]) -> None:
        if record.score is not None:
            run.log_metric("trial_score", record.score, step=record.number)
        report(records, "searching")

    records = run_search(
        problem,
        families,
        search_deadline=search_deadline,
        max_trials=max_trials,
        on_trial=on_trial,
        warm_start=warm_start,
        lanes=lanes,
        portfolio=portfolio,
        memory=memory,
        chores=chores,
    )
    phases.end("search")
    # in the deterministic mode only the deadline stops a trial (or ends the search early)
    stopped = sum(r.state == "stopped" for r in records)
    if max_trials is not None and (
        stopped or (len(records) < max_trials and time.monotonic() >= search_deadline(records))
    ):
        ended = len(records) - stopped
        notes.append(
            f"the time budget was reached before the {max_trials} trials ended ({ended} did): "
            "the same seed and trial budget may give another leaderboard on another run"
        )
    _log.debug(
        "search ended, %.2fs before the budget ends; kept %s (members %s), margins %.2fs",
        hard_end - time.monotonic(),
        ", ".join(f"{k} {v:.2f}s" for k, v in reserves.items()),
        "+".join(
            f"{r.family} #{r.number} "
            + (
                f"predicting {predict_estimate(r):.2f}s"
                if r.family in BAGGED_FAMILIES
                else f"refit {_refit_estimate(r, problem):.2f}s"
            )
            for r in guessed
        ),
        finish_margin + ensemble_time + latency_time,
    )
    report(records, "ensembling and refitting")
    failures = failed_trials(records)
    _record_failures(run, failures, notes)
    ranked = _ranked(records)
    usable = [f for f in families if f not in failures or not failures[f]["all_failed"]]
    if not ranked and not usable:
        shown = "; ".join(
            f"{f}: {v['failed']} of {v['trials']} trials failed ({v['first_error']})"
            for f, v in failures.items()
        )
        raise InputError(f"Every trial failed, so no model was trained. {shown}")
    # The refits and the second level fit on as many threads as a trial did, so that the
    # trials' measured fold times predict them: more threads than that can be many times
    # slower on a busy machine (measured loaded: a logistic regression on bank marketing's
    # 33,000 x 62 encoded rows, 0.35 s on one thread, 7 s on two).
    from threadpoolctl import threadpool_limits

    fitting = problem
    if lanes is not None and lanes.threads != problem.n_jobs:
        fitting = replace(problem, n_jobs=lanes.threads)
    # Everything after the search predicts (and refits) on as many threads as a trial did:
    # native thread pools left at every core spin on a busy machine (measured loaded: timing
    # a bag of five HistGradientBoosting fold models on wine, one-row calls and 1,000 rows,
    # took 0.24 s on one thread, 2 to 30 s on two), and the trials' measured times would no
    # longer predict these steps.
    with threadpool_limits(limits=fitting.n_jobs):
        selection = _select_and_refit(
            fitting,
            records,
            hard_end,
            finish_margin,
            classes,
            features,
            notes,
            usable or families,
            max_latency_ms=max_latency_ms,
            latency_rows=X_test if len(X_test) else problem.X,
            latency_time=latency_time,
            bagging=bagging,
            deterministic=max_trials is not None,
            finish_rows=finish_rows,
            phases=phases,
            probes=probes,
            stack_verdict=verdict(ranked) if bagging else None,
            timed=timed if bagging else None,
            bags=bags,
        )
        model, cv_score, threshold = selection.model, selection.cv_score, selection.threshold
        phases.end("measure")
        ensemble, best = selection.ensemble, selection.best
        logged = [s for t, s in _model_targets(model) if t == "log1p"]
        if logged:
            notes.append(
                f"log1p target: {len(logged)} of the model's members predict expm1(their "
                f"output + a shift, {min(logged):.4f} to {max(logged):.4f}), each shift fitted "
                "on its out-of-fold predictions (expm1 alone estimates a median, low for a "
                "mean); the members are combined in the target's units"
            )

        _log.debug("model ready, %.2fs before the budget ends", hard_end - time.monotonic())
        # -- final evaluation on the held-out rows ---------------------------------------------
        test_pred = (
            model.predict_proba(X_test) if problem.task != "regression" else model.predict(X_test)
        )
        test_metrics = _test_metrics(problem.task, metric, y_test, test_pred, threshold)
        if problem.task == "regression":
            baseline = np.full(len(y_test), float(np.mean(problem.y)))
        else:
            shares = np.bincount(problem.y, minlength=problem.n_classes) / len(problem.y)
            baseline = np.tile(shares, (len(y_test), 1))
        baseline_metrics = _test_metrics(problem.task, metric, y_test, baseline, None)
        too_good = too_good_to_be_true(
            model,
            X_test,
            y_test,
            task=problem.task,
            metric=get_metric(metric.name, problem.task),  # in the target's units
            test_metrics=test_metrics,
            baseline_metrics=baseline_metrics,
            kinds=kinds,
            seed=problem.seed,
            # the check reads fewer rows, and stops a second past the budget's end, rather than
            # overrun the budget
            deadline=hard_end,
            notes=notes,
        )
        for warning in too_good:
            notes.append(f"too good to be true? {warning}")
        if too_good:
            run.set_tags({"forgeml.too_good": " | ".join(too_good)})
        unseen = model.unseen_categories(X_test)
        if unseen:
            shown = ", ".join(f"{c} ({n})" for c, n in sorted(unseen.items()))
            notes.append(f"test split values never seen in training: {shown}")
    phases.end("holdout")

    latency = selection.latency
    leaderboard = _leaderboard(
        ranked,
        metric,
        selection.extra_rows,
        selection.latencies,
        selection.chosen_trial,
        selection.latency_cost,
    )
    if problem.task == "regression":
        # the target transform each trial was fitted on; an ensemble's or a stack's, those
        # of its members (both: "none+log1p")
        leaderboard.insert(3, "target_transform", leaderboard.pop("target_transform"))
    else:
        leaderboard.pop("target_transform")
    if memory is not None:
        # what the memory limit did to each trial: its predicted peak and any shrinking
        by_number = {r.number: r for r in records}
        trial_of = [by_number.get(t) if pd.notna(t) else None for t in leaderboard["trial"]]
        leaderboard["predicted_mb"] = [
            round(r.predicted_bytes / 1024**2, 1) if r and r.predicted_bytes else float("nan")
            for r in trial_of
        ]
        leaderboard["memory_note"] = [
            r.note if r and r.note.startswith("shrunk") else "" for r in trial_of
        ]
    states: dict[str, int] = {}
    for r in records:
        states[r.state] = states.get(r.state, 0) + 1
    run.log_metrics({f"cv_{metric.name}": cv_score})
    run.log_metrics({f"test_{k}": v for k, v in test_metrics.items() if math.isfinite(v)})
    run.log_metrics({"n_trials": len(records)})
    run.log_metrics({f"latency_{k}": v for k, v in latency.items()})
    if max_latency_ms is not None:
        run.log_metrics(
            {"latency_bound_ms": max_latency_ms, "latency_bound_cost": selection.latency_cost}
        )
    buffer = io.StringIO()
    leaderboard.to_csv(buffer, index=False)
    run.log_text(buffer.getvalue(), "leaderboard.csv")
    buffer = io.StringIO()
    _trials_table(records, problem.task).to_csv(buffer, index=False)
    run.log_text(buffer.getvalue(), "trials.csv")
    schema = _input_schema(problem.X, kinds)
    run.log_text(dumps_text(schema, indent=True, lenient=True), "input_schema.json")
    run.set_tags({"forgeml.best_model": best.get("model", ""), "forgeml.ensemble": bool(ensemble)})
    phases.end("record")
    _log.debug(
        "run written, %.2fs before the budget ends; phases %s",
        hard_end - time.monotonic(),
        ", ".join(f"{k} {v:.2f}s" for k, v in phases.seconds.items()),
    )
    return TrainResult(
        model=model,
        leaderboard=leaderboard,
        run_id=run.run_id,
        task=problem.task,
        metric=metric.name,
        greater_is_better=metric.greater_is_better,
        cv_score=cv_score,
        test_metrics=test_metrics,
        baseline_metrics=baseline_metrics,
        target=target,
        feature_columns=list(features),
        classes_=classes,
        column_kinds=dict(kinds),
        input_schema=schema,
        threshold=threshold,
        best=best,
        ensemble=ensemble,
        n_trials=states,
        failures=failures,
        elapsed=time.monotonic() - started,
        time_budget=budget,
        notes=notes,
        latency=latency,
        phases=dict(phases.seconds),
        validation=problem.folds.scheme,
        n_validation_rows=len(problem.folds.covered),
    )


@dataclass
class _Selection:
    """What ``_select_and_refit`` chose: the model, its scores and how fast it answers."""

    model: TrainedModel
    cv_score: float
    threshold: float | None
    ensemble: list[dict[str, Any]]
    best: dict[str, Any]
    extra_rows: list[dict[str, Any]]
    latency: dict[str, float]
    latencies: dict[int, dict[str, float]]
    chosen_trial: int | None = None
    latency_cost: float = 0.0


def _candidate_latencies(
    problem: Problem,
    candidates: Sequence[TrialRecord],
    rows: pd.DataFrame,
    features: list[str],
    classes: list[Any] | None,
    deadline: float,
    bagged: Callable[[TrialRecord], bool] = lambda record: False,
    *,
    first: Sequence[TrialRecord] = (),
    bags: dict[int, FoldBag] | None = None,
    clock: Callable[[], float] = time.monotonic,
    first_calls: Mapping[str, float] | None = None,
) -> dict[int, dict[str, float]]:
    """Each candidate's one-row and 1,000-row time, measured on a one-member model around its
    first fold model (same family, parameters and rounds as its refit), or around the bag of
    its fold models when it is ``bagged`` (what would be returned). ``first`` (the choice that
    matters most) is measured first and whatever the clock; then the others, lowest loss
    first, until ``deadline``. A few one-row calls each (at least 3; their median). ``bags``:
    each record's one bag (``_bag``), which keeps the compiled form its first call built.
    ``clock``: what the calls are timed on (``measure_latency``). ``first_calls``: each
    family's first call (ms) measured before, expected of its members not yet measured."""
    out: dict[int, dict[str, float]] = {}
    must = {record.number for record in first}
    rest = sorted(
        (r for r in candidates if r.number not in must),
        key=lambda r: float("inf") if r.loss is None else float(r.loss),
    )
    # a family's first call (its compiled form built) as long as its slowest measured one
    built: dict[str, float] = dict(first_calls or {})
    for record in [*first, *rest]:
        if not record.fold_models or record.number in out:
            continue
        if record.number not in must and time.monotonic() > deadline:
            continue
        single = TrainedModel(
            members=[_bag(record, problem, bags) if bagged(record) else record.fold_models[0]],
            weights=[1.0],
            task=problem.task,
            feature_columns=features,
            classes=classes,
            families=[record.family],
            member_targets=_member_targets([record], problem),
        )
        try:
            measured = measure_latency(
                single,
                rows,
                problem.task,
                problem.seed,
                calls=5,
                max_seconds=0.05,
                deadline=None if record.number in must else deadline,
                expected={"first_call_ms": built.get(record.family, 0.0)},
                clock=clock,
            )
        except Exception as e:  # a member that cannot predict these rows: not a candidate
            _log.debug("latency of %s #%d not measured: %s", record.family, record.number, e)
            continue
        if measured:
            out[record.number] = measured
            built[record.family] = max(built.get(record.family, 0.0), measured["first_call_ms"])
    return out


def _decisions(
    problem: Problem,
    members: Sequence[TrialRecord],
    weights: np.ndarray,
    threshold: float | None,
    cv_loss: float,
    deadline: float,
    notes: list[str],
    oof: np.ndarray | None = None,
) -> tuple[float | None, str | None, dict[str, list[float]] | None, float]:
    """The decision threshold, what it was tuned for, the multiclass calibration and the
    cross-validated loss of ``members`` blended with
    ``weights`` (or of the out-of-fold predictions ``oof``, a second stacking level's). The
    calibration's cross-fitting stops before a fit that would end past ``deadline`` (what the
    refits and the held-out evaluation need comes after it)."""
    metric = problem.metric
    covered = problem.folds.covered
    y = problem.y[covered]

    def blended() -> np.ndarray:
        if oof is not None:
            return oof
        member_oof = {id(r): r.oof[covered] for r in members}  # type: ignore[index]
        return np.asarray(sum(w * member_oof[id(r)] for r, w in zip(members, weights, strict=True)))

    threshold_metric = metric.name if threshold is not None else None
    if threshold is None and problem.task == "binary":
        # A probability metric leaves the decision open; 0.5 is arbitrary on imbalanced
        # classes, so the labels come from the threshold that maximises F1 on the same
        # out-of-fold predictions (never the test rows).
        threshold, threshold_metric = _f1_threshold(y, blended()), "f1"
    calibration = None
    if problem.task == "multiclass" and time.monotonic() < deadline:
        choice = choose_calibration(metric, y, blended(), seed=problem.seed, deadline=deadline)
        notes.append(choice.note())
        if choice.calibration is not None:
            calibration = choice.calibration
            cv_loss = -choice.calibrated if metric.greater_is_better else choice.calibrated
    return threshold, threshold_metric, calibration, cv_loss


def _select_and_refit(
    problem: Problem,
    records: list[TrialRecord],
    hard_end: float,
    finish_margin: float,
    classes: list[Any] | None,
    features: list[str],
    notes: list[str],
    families: list[str],
    *,
    max_latency_ms: float | None = None,
    latency_rows: pd.DataFrame,
    latency_time: float = 1.0,
    bagging: bool = False,
    deterministic: bool = False,
    finish_rows: int = 0,
    phases: _Phases | None = None,
    probes: Mapping[str, Level2Probe] | None = None,
    stack_verdict: str | None = None,
    timed: Mapping[int, dict[str, float]] | None = None,
    bags: dict[int, FoldBag] | None = None,
) -> _Selection:
    """Choose the returned model from the search's trials: ensemble selection under the
    latency bound, the second stacking level when it is tried and wins (``stack_verdict``,
    the probes' reason not to try it, is noted instead), the decisions, the refits.
    ``timed``: the bags the search already timed as the held-out evaluation calls them
    (``measure_latency``), not timed again. ``bags``: each trial's one bag (``_bag``), whose
    compiled form, built when it was timed, the returned model takes as it is."""
    metric = problem.metric
    refit_end = hard_end - finish_margin
    phases = phases or _Phases(time.monotonic())
    bags = {} if bags is None else bags
    ranked = _ranked(records)
    if not ranked:
        return _fallback(
            problem, records, refit_end, classes, features, notes, families, latency_rows
        )

    best = ranked[0]
    covered = problem.folds.covered
    y = problem.y[covered]
    candidates = _ensemble_candidates(ranked)

    def bagged(record: TrialRecord) -> bool:
        # the bagging rule (see _stacking.BAGGED_FAMILIES); a bag is its fold models
        return bagging and record.family in BAGGED_FAMILIES and bool(record.fold_models)

    # the bags the search timed are the same fold models, timed the same way; a family's
    # first call there (its compiled form built: an XGBoost bag's took 1.1 to 3.3 s at 60 s
    # on california-housing, loaded) is expected of its other candidates, which are not
    # started when it would end past the step's deadline (measured 1.0 to 4.5 s, with
    # 1.1 s kept for it): they are estimated from a measured one of their family, and under
    # a latency bound the chosen members are measured after the choice whatever the clock
    latencies = {n: dict(v) for n, v in (timed or {}).items() if "rows_1000_ms" in v}
    family_of = {r.number: r.family for r in records}
    first_calls: dict[str, float] = {}
    for n, v in latencies.items():
        family = family_of.get(n)
        if family is not None and "first_call_ms" in v:
            first_calls[family] = max(first_calls.get(family, 0.0), v["first_call_ms"])
    latencies.update(
        _candidate_latencies(
            problem,
            [r for r in candidates if r.number not in latencies],
            latency_rows,
            features,
            classes,
            time.monotonic() + latency_time,
            bagged=bagged,
            bags=bags,
            first_calls=first_calls,
        )
    )
    phases.end("latency")

    def finish_cost(record: TrialRecord) -> float:
        """Seconds ``record``'s member adds to the held-out evaluation of the returned model
        (``finish_rows`` rows: the test rows, the latency, the permutation check), from its
        measured 1,000-row and one-row times (a bag as the bag, a refit as one fold model),
        else from its fold models' prediction times (with a margin for a busy machine)."""
        measured = latencies.get(record.number, {})
        if "rows_1000_ms" in measured:
            # with its first call when the returned model builds its compiled form (a refit
            # does; a bag compiled when it was timed does not)
            if bagged(record) and compiled_before(_bag(record, problem, bags), problem.task):
                return _measured_finish(measured, finish_rows)
            return _measured_finish(measured, finish_rows) + measured.get("first_call_ms", 0) / 1000
        k = len(record.fold_models or []) or 1
        return _predict_estimate([record], finish_rows) / (1 if bagged(record) else k)

    preds = [r.oof[covered] for r in candidates]  # type: ignore[index]
    preferred, preferred_weights = [0], np.array([1.0])
    preferred_threshold, preferred_loss = best.threshold, float(best.loss)  # type: ignore[arg-type]
    if len(candidates) > 1:
        w, _ = ensemble_selection(
            preds,
            _ensemble_loss_fn(problem, y),
            # Only the budget's end cuts the selection (max_steps bounds it otherwise): a cut
            # that depends on the machine's speed would make the same seed and trial budget
            # give a different ensemble on a busy machine.
            deadline=refit_end,
        )
        chosen = [i for i in np.argsort(-w, kind="stable") if w[i] > 0]
        # the best single model refits first; drop members whose refit would not fit in time
        chosen = sorted(chosen, key=lambda i: (candidates[i] is not best, -w[i]))
        time_left = refit_end - time.monotonic()
        kept: list[int] = []
        spent = 0.0
        for i in chosen:
            # a bag needs no refit; every member predicts in the held-out evaluation
            cost = finish_cost(candidates[i])
            if not bagged(candidates[i]):
                cost += _refit_estimate(candidates[i], problem)
            # (the deterministic mode keeps every member: the refits stop at the deadline)
            if spent + cost <= time_left or not kept or deterministic:
                kept.append(i)
                spent += cost
        if len(kept) > 1:
            kw = w[kept] / w[kept].sum()
            blend = sum(kw[j] * preds[i] for j, i in enumerate(kept))
            loss, blend_threshold = _judge(problem, y, blend)
            if loss < preferred_loss - 1e-9:
                preferred, preferred_weights = kept, kw
                preferred_threshold, preferred_loss = blend_threshold, loss

    def judge(blend_weights: Mapping[int, float]) -> tuple[float, float | None]:
        return _judge(problem, y, sum(w * preds[i] for i, w in blend_weights.items()))

    unmeasured = [candidates[i] for i in preferred if candidates[i].number not in latencies]
    if max_latency_ms is not None and unmeasured and time.monotonic() < refit_end:
        # the preferred choice's members are measured while the refits have time (a few
        # calls each): the bound must not give way to a weaker model only because the
        # machine was busy
        latencies.update(
            _candidate_latencies(
                problem,
                [],
                latency_rows,
                features,
                classes,
                time.monotonic(),
                bagged=bagged,
                first=unmeasured,
                bags=bags,
            )
        )

    def one_row(record: TrialRecord) -> float | None:
        measured = latencies.get(record.number)
        return None if measured is None else measured["one_row_ms"]

    def size(record: TrialRecord) -> float | None:
        # the size of what was (or would be) measured: the bag, or the first fold model
        if not record.fold_models:
            return None
        return model_size(_bag(record, problem, bags) if bagged(record) else record.fold_models[0])

    one_row_ms, estimated = estimate_unmeasured(
        [one_row(r) for r in candidates],
        [r.family for r in candidates],
        [size(r) if max_latency_ms is not None else None for r in candidates],
    )
    choice = choose_under_bound(
        preferred=preferred,
        weights=preferred_weights,
        loss=preferred_loss,
        threshold=preferred_threshold,
        candidate_losses=[float(r.loss) for r in candidates],  # type: ignore[arg-type]
        candidate_thresholds=[r.threshold for r in candidates],
        one_row_ms=one_row_ms,
        bound_ms=max_latency_ms,
        judge=judge,
        estimated=estimated,
    )
    if max_latency_ms is not None and estimated:
        shown = ", ".join(
            f"{candidates[i].family} #{candidates[i].number} ~{one_row_ms[i]:.2f} ms"
            for i in estimated
        )
        notes.append(
            f"one-row time estimated, not measured (from a measured candidate of the same "
            f"family and similar size): {shown}"
        )
    members = [candidates[i] for i in choice.members]
    weights = choice.weights
    extra_rows: list[dict[str, Any]] = []
    latency_cost = 0.0

    def score_of(loss: float) -> float:
        return -loss if metric.greater_is_better else loss

    def described(indices: Sequence[int]) -> str:
        if len(indices) == 1:
            return f"{candidates[indices[0]].family} #{candidates[indices[0]].number}"
        return f"an ensemble of {len(indices)}"

    if choice.bound_binds:
        latency_cost = max(0.0, choice.loss - preferred_loss)
        estimate = sum(one_row_ms[i] or float("nan") for i in preferred)
        notes.append(
            f"the latency bound ({max_latency_ms:g} ms for one row) changed the choice: "
            f"{described(preferred)} (cv {metric.name} {score_of(preferred_loss):.4f}, one row "
            f"~{estimate:.2f} ms) gave way to {described(choice.members)} (cv {metric.name} "
            f"{score_of(choice.loss):.4f}, ~{choice.estimate_ms:.2f} ms): it cost "
            f"{latency_cost:.4f} {metric.name} (cross-validated)"
        )
        if len(preferred) > 1:
            extra_rows.append(
                _ensemble_row(
                    metric,
                    score_of(preferred_loss),
                    [candidates[i] for i in preferred],
                    [float(v) for v in preferred_weights],
                    {"one_row_ms": round(estimate, 4)},
                    chosen=False,
                )
            )
    if not choice.meets and max_latency_ms is not None:
        notes.append(
            f"no candidate answers one row within {max_latency_ms:g} ms: the fastest measured "
            f"({described(choice.members)}, ~{choice.estimate_ms:.2f} ms) is returned"
        )
    phases.end("selection")
    inputs = _stack_inputs(ranked) if bagging else []
    if inputs and level2_configs(ranked) and stack_verdict is not None:
        notes.append(stack_verdict)
    elif inputs and level2_configs(ranked):
        stacked = _stacked_selection(
            problem,
            inputs,
            ranked,
            choice.loss,
            latencies,
            refit_end,
            hard_end,
            notes,
            extra_rows,
            deterministic=deterministic,
            predict_seconds=_stacked_finish(inputs, level2_configs(ranked), finish_cost, probes),
            probes=probes,
            max_latency_ms=max_latency_ms,
            latency_rows=latency_rows,
            features=features,
            classes=classes,
            best=best,
            bags=bags,
        )
        phases.end("stacking")
        if stacked is not None:
            return replace(stacked, latencies=latencies)
    # the refits end early enough to leave the held-out evaluation its measured cost; the
    # calibration early enough to leave the refits theirs (in the deterministic mode, whatever
    # was measured: the refits and the calibration stop at the deadline only)
    end = refit_end - sum(finish_cost(r) for r in members)
    refits = sum(_refit_estimate(r, problem) for r in members if not bagged(r))
    if deterministic:
        end, refits = refit_end, 0.0
    threshold, threshold_metric, calibration, cv_loss = _decisions(
        problem,
        members,
        weights,
        choice.threshold,
        choice.loss,
        min(refit_end - 1.0, end - refits),
        notes,
    )
    phases.end("decisions")
    # refit on every training row; a member whose refit would not fit in the time left (or
    # was cut by the deadline) uses its cross-validation fold models instead
    fitted: list[Any] = []
    fitted_weights: list[float] = []
    fitted_members: list[TrialRecord] = []
    for record, weight in zip(members, weights, strict=True):
        estimate = _refit_estimate(record, problem)
        member: Any = None
        if bagged(record):
            member = _bag(record, problem, bags)  # no refit: the fold models, out of fold
        elif (
            time.monotonic() + (0.0 if deterministic else estimate) <= end
            or record.fold_models is None
        ):
            pipeline, outcome = fit_pipeline(
                problem,
                FAMILIES[record.family],
                record.params,
                problem.X,
                forward_transform(problem.y, record.transform),
                deadline=end if record.fold_models is not None else refit_end,
                rounds=record.rounds,
            )
            member = pipeline
            if outcome.truncated:
                if record.fold_models is not None:
                    member = None
                else:
                    notes.append(
                        f"the refit of {record.family} #{record.number} was cut at the deadline"
                    )
        if member is None:
            member = FoldBag(pipelines=record.fold_models or [], task=problem.task)
            n_kept = len(record.fold_models or [])
            notes.append(
                f"{record.family} #{record.number}: no time to refit; "
                + (
                    f"its {n_kept} cross-validation fold models are averaged"
                    if problem.folds.scheme == "cv"
                    else "its model fitted beside the validation split is used"
                )
            )
        _log.debug(
            "member %s #%d ready, %.2fs before the deadline",
            record.family,
            record.number,
            refit_end - time.monotonic(),
        )
        fitted.append(member)
        fitted_weights.append(float(weight))
        fitted_members.append(record)
    total = sum(fitted_weights)
    fitted_weights = [w / total for w in fitted_weights]

    def assemble(
        members_: list[Any], weights_: list[float], records_: list[TrialRecord]
    ) -> TrainedModel:
        return TrainedModel(
            members=members_,
            weights=weights_,
            task=problem.task,
            feature_columns=features,
            classes=classes,
            threshold=threshold,
            families=[r.family for r in records_],
            threshold_metric=threshold_metric,
            calibration=calibration,
            member_targets=_member_targets(records_, problem),
        )

    def measure(model: TrainedModel) -> dict[str, float]:
        # the returned model's times; a bag that kept its compiled form is not built again
        return _measure_returned(
            model,
            fitted_members,
            latencies,
            latency_rows,
            problem,
            refit_end,
            notes,
            built=[compiled_before(m, problem.task) for m in model.members],
        )

    model = assemble(fitted, fitted_weights, fitted_members)
    phases.end("refit")
    latency = measure(model)
    if (
        max_latency_ms is not None
        and len(fitted) > 1
        and latency.get("one_row_ms", 0.0) > max_latency_ms
    ):
        # the refit ensemble is slower than its members' estimate: its best member alone
        at = min(range(len(fitted)), key=lambda j: (float(fitted_members[j].loss), j))  # type: ignore[arg-type]
        record = fitted_members[at]
        slow = latency["one_row_ms"]
        threshold, threshold_metric, calibration, new_loss = _decisions(
            problem,
            [record],
            np.array([1.0]),
            record.threshold,
            float(record.loss),  # type: ignore[arg-type]
            end,
            notes,
        )
        latency_cost = max(0.0, latency_cost + new_loss - cv_loss)
        cv_loss = new_loss
        fitted, fitted_weights, fitted_members = [fitted[at]], [1.0], [record]
        model = assemble(fitted, fitted_weights, fitted_members)
        latency = measure(model)
        notes.append(
            f"the refit ensemble answered one row in {slow:.2f} ms, over the latency bound "
            f"({max_latency_ms:g} ms): its best member, {record.family} #{record.number}, is "
            f"returned alone ({latency.get('one_row_ms', float('nan')):.2f} ms); it cost "
            f"{latency_cost:.4f} {metric.name} (cross-validated)"
        )
    measured = latency.get("one_row_ms")
    if (
        max_latency_ms is not None
        and choice.meets
        and measured is not None
        and measured > max_latency_ms
    ):
        notes.append(
            f"the returned model answers one row in {measured:.2f} ms, over the latency bound "
            f"({max_latency_ms:g} ms): nothing faster was measured in the time left"
        )
    cv_score = score_of(cv_loss)
    ensemble: list[dict[str, Any]] = []
    chosen_trial: int | None = None
    if len(fitted_members) > 1:
        ensemble = [
            {"trial": r.number, "model": r.family, "weight": round(w, 4)}
            for r, w in zip(fitted_members, fitted_weights, strict=True)
        ]
        extra_rows.append(
            _ensemble_row(
                metric,
                cv_score,
                fitted_members,
                fitted_weights,
                latency,
                chosen=True,
                latency_cost=latency_cost,
            )
        )
    else:
        chosen_trial = fitted_members[0].number
    return _Selection(
        model=model,
        cv_score=float(cv_score),
        threshold=threshold,
        ensemble=ensemble,
        best=_best_info(best),
        extra_rows=extra_rows,
        latency=latency,
        latencies=latencies,
        chosen_trial=chosen_trial,
        latency_cost=latency_cost,
    )


def _best_info(best: TrialRecord) -> dict[str, Any]:
    return {
        "model": best.family,
        "trial": best.number,
        "score": best.score,
        "params": best.own_params(),
        "rounds": best.rounds,
    }


def _member_targets(
    records: Sequence[TrialRecord], problem: Problem
) -> list[tuple[str, float]] | None:
    """Each regression member's ``(transform, shift)`` (``TrainedModel.member_targets``);
    ``None`` for a classifier."""
    if problem.task != "regression":
        return None
    return [(r.transform, r.shift) for r in records]


def _model_targets(model: TrainedModel) -> list[tuple[str, float]]:
    """Every ``(transform, shift)`` a model's members and stacked bags apply."""
    found: list[Sequence[Any]] = list(model.member_targets or [])
    for member in model.members:
        if isinstance(member, StackedBag):
            found += [*(member.input_targets or []), *(member.member_targets or [])]
    return [(str(t), float(s)) for t, s in found]


def _bag(record: TrialRecord, problem: Problem, bags: dict[int, FoldBag] | None = None) -> FoldBag:
    """``record``'s fold models as a bag; with ``bags``, the one bag made for it (whatever
    it compiled for a latency measurement serves the returned model: ``compiled_before``)."""
    if bags is None:
        return FoldBag(pipelines=list(record.fold_models or []), task=problem.task)
    if record.number not in bags:
        bags[record.number] = FoldBag(pipelines=list(record.fold_models or []), task=problem.task)
    return bags[record.number]


def _measure_returned(
    model: TrainedModel,
    members: Sequence[TrialRecord],
    latencies: Mapping[int, Mapping[str, float]],
    rows: pd.DataFrame,
    problem: Problem,
    end: float,
    notes: list[str],
    built: Sequence[bool] = (),
) -> dict[str, float]:
    """The returned model's prediction times (``measure_latency``) on ``rows`` (the held-out
    rows), measured so that they and the prediction of those rows that follows end by ``end``
    (the permutation check after it keeps to the budget's end by itself): each part expected
    to take what its members took when measured during the search (summed: each call paid
    the fixed cost of a call, so the sum errs high; a member's first call builds its compiled
    form, unless it is a bag that kept the one its own measuring built: ``built``, one flag
    per member in order, the others false).
    A part that would not fit is not made (measured loaded at 60 s, measuring the returned
    model took 37.8 s on california-housing) and a note says so; when the one-row time was
    not measured, its members' sum is given as ``one_row_ms_estimated``, never as measured."""
    expected: dict[str, float] = {}
    for key in ("first_call_ms", "one_row_ms", "rows_1000_ms"):
        # a member whose compiled form was built before: its first call is a call
        times = [
            latencies.get(r.number, {}).get("one_row_ms" if key == "first_call_ms" and b else key)
            for r, b in zip(members, [*built, *[False] * (len(members) - len(built))], strict=True)
        ]
        if times and all(t is not None for t in times):
            expected[key] = float(sum(t for t in times if t is not None))
    held_out = len(rows) / 1000 * expected.get("rows_1000_ms", 0.0) / 1000
    deadline = end - held_out
    left = deadline - time.monotonic()
    latency = measure_latency(
        model,
        rows,
        problem.task,
        problem.seed,
        max_seconds=_MEASURE_SECONDS,
        deadline=deadline,
        expected=expected,
    )
    if len(rows) and "one_row_ms" not in latency:
        first = expected.get("first_call_ms")
        estimate = expected.get("one_row_ms")
        notes.append(
            "the returned model's prediction time was not measured: "
            + (
                f"its first call (which builds its compiled form; its members' took "
                f"{first / 1000:.2f} s when measured during the search) would not have ended "
                f"in the {max(left, 0.0):.2f} s left"
                if first is not None
                else "no time was left"
            )
            + (
                f"; its members, measured during the search, answered one row in "
                f"{estimate:.2f} ms summed (one_row_ms_estimated, an estimate)"
                if estimate is not None
                else ""
            )
        )
        if estimate is not None:
            latency["one_row_ms_estimated"] = round(estimate, 4)
    elif len(rows) and "rows_1000_ms" not in latency:
        notes.append(
            "the returned model's 1,000-row time was not measured: its members took "
            f"{expected.get('rows_1000_ms', float('nan')) / 1000:.2f} s for 1,000 rows when "
            f"measured during the search, more than the time left"
        )
    return latency


# Prediction calls the held-out evaluation makes: the test rows, the latency (a first call,
# 10 one-row calls, 1,000 rows) and the permutation check (a first call and eighths).
_FINISH_CALLS = 22


def _measured_finish(latency: Mapping[str, float], rows: int) -> float:
    """Seconds a model whose 1,000-row and one-row times were measured (``measure_latency``)
    takes to predict ``rows`` rows in the held-out evaluation's calls. Without a margin: so
    measured (one call of 1,000 rows, a median of one-row calls) they came to 0.9 to 2.2
    times the evaluation's own time (bike-sharing and california-housing, loaded); the search
    keeps time for its members so priced, and with a 1.5x margin after it members it had
    kept time for could be dropped (german-credit-amount at 60 s, loaded: time kept for
    five members, one returned, 9.4 s of the budget unused)."""
    ms = rows / 1000 * latency["rows_1000_ms"] + 12 * latency["one_row_ms"]
    return ms / 1000


def _predict_estimate(records: Sequence[TrialRecord], rows: int) -> float:
    """Seconds bags of these trials' fold models take to predict ``rows`` rows in the
    held-out evaluation's calls, from the fold models' measured per-call and per-row
    prediction times (with a margin for a busy machine)."""
    return 1.5 * sum(
        len(r.fold_models or []) * (_FINISH_CALLS * r.call_seconds + rows * r.row_seconds)
        for r in records
    )


def _stacked_finish(
    inputs: Sequence[TrialRecord],
    configs: Sequence[TrialRecord],
    finish_cost: Callable[[TrialRecord], float],
    probes: Mapping[str, Level2Probe] | None,
) -> float:
    """Seconds the stacked model's held-out evaluation should take: its input bags, and its
    level-2 bags as their level-1 originals scaled by their family's probe; before every
    family is probed, about as long as the input bags."""
    level1 = sum(finish_cost(r) for r in inputs)
    if not configs or any(c.family not in (probes or {}) for c in configs):
        return 2 * level1
    return level1 + sum((probes or {})[c.family].predict_ratio * finish_cost(c) for c in configs)


def _stacked_selection(
    problem: Problem,
    inputs: list[TrialRecord],
    ranked: list[TrialRecord],
    level1_loss: float,
    latencies: Mapping[int, Mapping[str, float]],
    refit_end: float,
    hard_end: float,
    notes: list[str],
    extra_rows: list[dict[str, Any]],
    *,
    deterministic: bool,
    predict_seconds: float,
    max_latency_ms: float | None,
    latency_rows: pd.DataFrame,
    features: list[str],
    classes: list[Any] | None,
    best: TrialRecord,
    probes: Mapping[str, Level2Probe] | None = None,
    bags: dict[int, FoldBag] | None = None,
) -> _Selection | None:
    """A second stacking level over the bagged ``inputs``, returned when its out-of-fold loss
    beats ``level1_loss`` (the level-1 choice's) and it answers one row within the bound;
    ``None`` otherwise (with a note, and its leaderboard row in ``extra_rows``)."""
    metric = problem.metric

    def score_of(loss: float) -> float:
        return -loss if metric.greater_is_better else loss

    configs = level2_configs(ranked)
    estimate = stack_estimate(ranked, probes)
    # keep a second for calibration, the threshold and building the model, and the time the
    # stacked model's held-out evaluation takes
    deadline = min(refit_end - 1.0, hard_end - predict_seconds)
    if deterministic:  # only the deadline, not a measured estimate, stops the level
        deadline = refit_end - 1.0
    if not deterministic and time.monotonic() + estimate > deadline:
        notes.append(
            f"no second stacking level: it needs about {estimate:.1f}s, "
            f"{max(0.0, deadline - time.monotonic()):.1f}s were left"
        )
        return None
    fitting = time.monotonic()
    level = fit_level2(problem, inputs, configs, deadline=deadline, stop_doomed=not deterministic)
    _log.debug(
        "second level fitted in %.2fs (estimated %.2fs; its evaluation %.2fs)",
        time.monotonic() - fitting,
        estimate,
        predict_seconds,
    )
    if level is None:
        notes.append("no second stacking level: no level-2 model finished in time")
        return None
    covered = problem.folds.covered
    y = problem.y[covered]
    preds = [np.asarray(r.oof)[covered] for r in level.models]
    w = (
        ensemble_selection(preds, _ensemble_loss_fn(problem, y), deadline=refit_end)[0]
        if len(preds) > 1
        else np.array([1.0])
    )
    keep = [i for i in range(len(preds)) if w[i] > 0]
    level.models = [level.models[i] for i in keep]
    weights = w[keep] / w[keep].sum()
    oof = np.asarray(sum(weights[j] * preds[i] for j, i in enumerate(keep)))
    loss, threshold = _judge(problem, y, oof)
    # one row: each input bag, and each level-2 bag about as long as its level-1 original's
    times = [latencies.get(r.number, {}).get("one_row_ms") for r in [*level.inputs, *level.models]]
    estimate_ms = float("inf") if None in times else float(sum(t or 0.0 for t in times))
    row = _stack_row(metric, score_of(loss), level, weights, {"one_row_ms": estimate_ms})
    extra_rows.append(row)
    described = f"{metric.name} {score_of(loss):.5g} out of fold"
    level1 = f"the level-1 choice ({score_of(level1_loss):.5g})"
    if loss >= level1_loss - 1e-9:
        notes.append(f"second stacking level not kept: {described}, not better than {level1}")
        return None
    if max_latency_ms is not None and estimate_ms > max_latency_ms:
        notes.append(
            f"second stacking level not kept: {described}, better than {level1}, but one row "
            f"would take ~{estimate_ms:.2f} ms, over the latency bound ({max_latency_ms:g} ms)"
        )
        return None
    threshold, threshold_metric, calibration, cv_loss = _decisions(
        problem, [], np.array([]), threshold, loss, deadline, notes, oof=oof
    )
    model = TrainedModel(
        members=[
            StackedBag(
                inputs=[_bag(r, problem, bags) for r in level.inputs],
                columns=level.columns,
                members=[_bag(r, problem) for r in level.models],
                weights=[float(v) for v in weights],
                task=problem.task,
                input_targets=_member_targets(level.inputs, problem),
                member_targets=_member_targets(level.models, problem),
            )
        ],
        weights=[1.0],
        task=problem.task,
        feature_columns=features,
        classes=classes,
        threshold=threshold,
        families=["stack(" + "+".join(r.family for r in level.models) + ")"],
        threshold_metric=threshold_metric,
        calibration=calibration,
    )
    latency = _measure_returned(
        model,
        [*level.inputs, *level.models],
        latencies,
        latency_rows,
        problem,
        refit_end,
        notes,
        built=[compiled_before(_bag(r, problem, bags), problem.task) for r in level.inputs],
    )
    if max_latency_ms is not None and latency.get("one_row_ms", 0.0) > max_latency_ms:
        notes.append(
            f"second stacking level not kept: {described}, but it answered one row in "
            f"{latency['one_row_ms']:.2f} ms, over the latency bound ({max_latency_ms:g} ms)"
        )
        return None
    notes.append(f"second stacking level: {described}, better than {level1}")
    row.update(
        {
            metric.name: score_of(cv_loss),  # calibrated, when calibration was kept
            "one_row_ms": latency.get("one_row_ms", float("nan")),
            "rows_1000_ms": latency.get("rows_1000_ms", float("nan")),
            "chosen": True,
            "latency_cost": 0.0,
        }
    )
    ensemble = [
        {"trial": r.number, "model": r.family, "weight": round(float(v), 4), "level": 2}
        for r, v in zip(level.models, weights, strict=True)
    ]
    return _Selection(
        model=model,
        cv_score=float(score_of(cv_loss)),
        threshold=threshold,
        ensemble=ensemble,
        best=_best_info(best),
        extra_rows=extra_rows,
        latency=latency,
        latencies={},
    )


_TRANSFORM_ORDER = ("none", "log1p").index


def _combined_row(
    kind: str,
    metric: Metric,
    score: float,
    latency: Mapping[str, float],
    params: Mapping[str, Any],
    *,
    chosen: bool = False,
    latency_cost: float = float("nan"),
    records: Sequence[TrialRecord] = (),
) -> dict[str, Any]:
    """A leaderboard row of a model made of trials (``ensemble`` or ``stack``: ``records``),
    its target transform those of the trials (``none+log1p`` for both)."""
    return {
        "target_transform": "+".join(sorted({r.transform for r in records}, key=_TRANSFORM_ORDER)),
        "model": kind,
        "trial": None,
        metric.name: score,
        "cv_std": float("nan"),
        "fit_s": None,
        "trial_s": None,
        "one_row_ms": latency.get("one_row_ms", float("nan")),
        "rows_1000_ms": latency.get("rows_1000_ms", float("nan")),
        "chosen": chosen,
        "latency_cost": latency_cost if chosen else float("nan"),
        "params": dumps_text(params, sort_keys=True),
    }


def _stack_row(
    metric: Metric,
    score: float,
    level: StackLevel,
    weights: Sequence[float],
    latency: Mapping[str, float],
) -> dict[str, Any]:
    params = {
        "inputs": [f"{r.family}#{r.number}" for r in level.inputs],
        "level2": {
            f"{r.family}#{r.number}": round(float(w), 4)
            for r, w in zip(level.models, weights, strict=True)
        },
    }
    return _combined_row(
        "stack", metric, score, latency, params, records=[*level.inputs, *level.models]
    )


def _ensemble_row(
    metric: Metric,
    score: float,
    members: Sequence[TrialRecord],
    weights: Sequence[float],
    latency: Mapping[str, float],
    *,
    chosen: bool,
    latency_cost: float = float("nan"),
) -> dict[str, Any]:
    params = {f"{r.family}#{r.number}": round(w, 4) for r, w in zip(members, weights, strict=True)}
    return _combined_row(
        "ensemble",
        metric,
        score,
        latency,
        params,
        chosen=chosen,
        latency_cost=latency_cost,
        records=members,
    )


def _fallback(
    problem: Problem,
    records: list[TrialRecord],
    refit_end: float,
    classes: list[Any] | None,
    features: list[str],
    notes: list[str],
    families: list[str],
    latency_rows: pd.DataFrame,
) -> _Selection:
    """No trial completed in time. Use the fold models of the unfinished trial that got
    furthest (most folds, then best mean fold score); if none has a fold, fit the starting
    point of LightGBM (or of the first family asked for, when LightGBM was not) on every
    training row, given at least 5% of the budget."""
    partial = [r for r in records if r.fold_models]
    if partial:
        chosen = min(
            partial,
            key=lambda r: (
                -len(r.fold_models or []),
                -float(np.mean(r.fold_scores or [0.0]))
                if problem.metric.greater_is_better
                else float(np.mean(r.fold_scores or [0.0])),
            ),
        )
        member: Any = FoldBag(pipelines=chosen.fold_models or [], task=problem.task)
        family, params, number = chosen.family, chosen.params, chosen.number
        # an unfinished trial has no out-of-fold shift: expm1 alone
        targets = _member_targets([replace(chosen, shift=0.0)], problem)
        notes.append(
            f"no trial finished within the budget: the model averages the "
            f"{len(chosen.fold_models or [])} fold model(s) {family} #{number} finished, "
            "without a cross-validated score (raise the time budget)"
        )
    else:
        family, number = ("lgbm" if "lgbm" in families else families[0]), None
        params = FAMILIES[family].start(problem.task, problem.imbalanced, len(problem.y))
        targets = None
        member, _ = fit_pipeline(
            problem,
            FAMILIES[family],
            params,
            problem.X,
            problem.y,
            deadline=max(refit_end, time.monotonic() + 0.05 * problem.budget),
            rounds=100,
        )
        notes.append(
            f"no trial finished within the budget: fitted {family}'s starting configuration "
            "without cross-validation (raise the time budget)"
        )
    model = TrainedModel(
        members=[member],
        weights=[1.0],
        task=problem.task,
        feature_columns=features,
        classes=classes,
        families=[family],
        member_targets=targets,
    )
    prefix = family + "."
    best = {
        "model": family,
        "trial": number,
        "score": None,
        "params": {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)},
        "rounds": None,
    }
    latency = measure_latency(
        model, latency_rows, problem.task, problem.seed, max_seconds=_MEASURE_SECONDS
    )
    return _Selection(
        model=model,
        cv_score=float("nan"),
        threshold=None,
        ensemble=[],
        best=best,
        extra_rows=[],
        latency=latency,
        latencies={},
    )
