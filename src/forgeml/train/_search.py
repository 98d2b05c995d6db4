"""The search: Optuna (TPE, multivariate, seeded) over families and their parameters, under a
hard wall-clock deadline.

- **Cheap first, then the portfolio.** Before TPE samples anything, the search tries any
  warm-start configurations, then every family's starting point, the strong and cheap ones
  first (LightGBM, linear, XGBoost, HistGradientBoosting, extra trees, random forest, MLP),
  so a good model exists within the first seconds, then the zero-shot portfolio's
  configurations (``_portfolio``: chosen offline to do well across many tables of the task
  and size; one equal to a starting point is not tried twice). Alongside the starting points,
  not instead of them: measured on held-back tables at 30 s, a portfolio that replaced them
  (its forests first on small tables) lost up to 0.028 ROC AUC where the cheap linear start
  wins. Once a model exists, each family's first trial gets a fair share of the time left.
- **Pruning.** Each fold reports the running mean loss; a median pruner stops trials that are
  behind the others at the same fold. Boosting stops early on a split of the fold's training
  rows (never on the validation fold).
- **Deadline.** A trial is not started when one fold of its family (measured, or for a
  family not yet run the others' fold times scaled by the cost prior) would end past the
  search deadline. Before each fold the trial projects its remaining folds at the pace of
  its fastest fold so far and stops if they would pass its deadline (a trial that cannot
  finish is worth nothing to the ensemble); inside a fit, boosting rounds, tree/epoch chunks
  and linear solver chunks check the deadline (``_zoo``). The search deadline leaves room for
  the refit of the best models, which ``_api`` estimates from their measured fold times.
- **Cost-aware.** Outside the deterministic mode, a trial whose projected time would eat most
  of what is left stops after its first fold, so time goes to configurations that fit.

Deterministic mode (``max_trials`` given): a fixed number of trials and no decision that reads
the clock (except the deadline itself), so the same seed and data replay the same leaderboard.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from forgeml.train._memory import MEMORY_SLACK, MemoryModel, format_bytes, process_rss
from forgeml.train._metrics import Metric, tune_threshold
from forgeml.train._model import raw_predict
from forgeml.train._preprocess import TabularEncoder
from forgeml.train._target import fit_shift, forward_transform, in_target_units, inverse_transform
from forgeml.train._validation import Folds, early_stopping_split
from forgeml.train._zoo import _THREADED_CELLS, FAMILIES, Family, FitOutcome, fit_estimator

__all__ = [
    "Lanes",
    "MemoryBudget",
    "Problem",
    "TrialRecord",
    "fit_pipeline",
    "plan_lanes",
    "run_search",
]

_log = logging.getLogger("forgeml.train")

# Families that stop early on a split fit_pipeline makes (HGB and the MLP split themselves).
_SPLITS_FOR_EARLY_STOPPING = ("lgbm", "xgb", "catboost")
# Consecutive skipped trials after which the search ends (nothing left fits in time).
_MAX_SKIPS = 50
# Marks a trial enqueued before the search (its parameters fixed, the target transform too
# when it names one).
_ENQUEUED = {"enqueued": True}
# Complete trials whose fold models are kept (ensemble members and the refit fallback).
KEEP_FOLD_MODELS = 8


@dataclass
class Problem:
    """Everything a trial needs: the training rows, targets, folds and settings."""

    X: pd.DataFrame
    y: np.ndarray
    kinds: dict[str, str]
    task: str
    n_classes: int
    metric: Metric
    folds: Folds
    seed: int
    n_jobs: int
    time_ordered: bool
    imbalanced: bool
    budget: float = 60.0
    # regression: the target transforms trials are fitted on (``_target``); with both, each
    # trial has its own (``TrialRecord.transform``). ``y`` is always in the target's units.
    target_transforms: tuple[str, ...] = ("none",)

    @property
    def classification(self) -> bool:
        return self.task != "regression"

    @property
    def mixed_targets(self) -> bool:
        """Whether trials choose between several target transforms."""
        return len(self.target_transforms) > 1


@dataclass
class TrialRecord:
    """One trial: its configuration, state, fold scores, time and out-of-fold predictions."""

    number: int
    family: str
    params: dict[str, Any]
    state: str = "running"  # complete, pruned, stopped, failed
    fold_scores: list[float] = field(default_factory=list)
    score: float | None = None
    loss: float | None = None
    seconds: float = 0.0
    started: float | None = None  # monotonic time the trial started (trials may overlap)
    fit_seconds: list[float] = field(default_factory=list)
    best_iterations: list[int] = field(default_factory=list)
    # seconds each fold model took to predict its validation fold, and those folds' rows
    predict_seconds: list[float] = field(default_factory=list)
    predicted_rows: int = 0
    # seconds the first fold model took to predict one row: the fixed cost of a call
    call_seconds: float = 0.0
    oof: np.ndarray | None = None
    fold_models: list[Any] | None = None
    threshold: float | None = None
    note: str = ""
    predicted_bytes: int | None = None  # under a memory limit: the predicted peak
    # regression: the target transform its models are fitted on, and the log-scale shift
    # added before ``expm1`` (fitted on its out-of-fold predictions); ``oof`` is always in the
    # target's units
    transform: str = "none"
    shift: float = 0.0

    @property
    def rounds(self) -> int | None:
        """Boosting rounds for the refit: the folds' mean best round, 10% more for the
        larger training set."""
        if not self.best_iterations:
            return None
        return max(1, math.ceil(float(np.mean(self.best_iterations)) * 1.1))

    @property
    def row_seconds(self) -> float:
        """Seconds one fold model takes per predicted row (measured on validation folds),
        the fixed cost of each call taken out: on a small table it is most of a fold's time."""
        calls = len(self.predict_seconds) * self.call_seconds
        return max(0.0, sum(self.predict_seconds) - calls) / max(1, self.predicted_rows)

    def own_params(self) -> dict[str, Any]:
        """Parameters without the family prefix."""
        prefix = self.family + "."
        return {k[len(prefix) :]: v for k, v in self.params.items() if k.startswith(prefix)}


# Work the search does on a lane between trials: given the trials so far, a job to run now
# (on a lane, beside the running trials), which returns what applies its result on the
# search's own thread, or ``None``.
Chores = Callable[[list[TrialRecord]], Callable[[], Callable[[], None]] | None]


@dataclass(frozen=True)
class Lanes:
    """How the search uses the cores: ``trials`` at once, each fitting on ``threads``."""

    trials: int
    threads: int
    reason: str

    def note(self) -> str:
        if self.trials == 1:
            return f"trials one at a time on {self.threads} thread(s) ({self.reason})"
        return f"{self.trials} trials at a time, {self.threads} thread(s) each ({self.reason})"


@dataclass(frozen=True)
class MemoryBudget:
    """The memory limit as the search applies it: ``headroom`` bytes for trials and the
    fold models they keep, above what the process held when the search started."""

    limit: int
    base: int
    headroom: int
    model: MemoryModel

    @classmethod
    def start(cls, problem: Problem, limit: int) -> MemoryBudget:
        """The budget from now: the limit less what the process holds and a slack share.

        Raises:
            InputError: the limit leaves nothing for the search.
        """
        from forgeml.errors import InputError

        base = process_rss()
        headroom = int(limit * (1 - MEMORY_SLACK)) - base
        if headroom <= 0:
            raise InputError(
                f"memory_limit {format_bytes(limit)} leaves nothing for the search: the "
                f"process already holds {format_bytes(base)} with the data loaded (at least "
                f"{format_bytes(base / (1 - MEMORY_SLACK) + 64 * 1024**2)} is needed)"
            )
        return cls(limit, base, headroom, MemoryModel.for_problem(problem))


def plan_lanes(
    problem: Problem,
    requested: int | None = None,
    *,
    memory: MemoryBudget | None = None,
    families: Sequence[str] = (),
) -> Lanes:
    """How many trials run at once on ``problem.n_jobs`` cores.

    A documented rule, decided from measurements (README, "Parallel trials") and never from
    the clock, so the same seed and trial budget give the same batches on any run:

    - ``requested`` (``parallel_trials``) fixes the number (at most one per core);
    - one core: one trial;
    - a fold's training input under ``_THREADED_CELLS`` cells fits on one thread anyway
      (``fit_estimator``), so one trial per core keeps every core busy;
    - larger inputs: two trials, each on half the cores (measured on hotel-bookings, 119,390
      x 28, LightGBM, 2 cores: two at a time 1.27x faster than one on both cores on a quiet
      machine, 7.8x on a busy one, where a fit's spinning threads wait for each other);
    - under a memory limit, no more trials at once than the limit holds of the families'
      largest starting point.
    """
    lanes = _plan_lanes(problem, requested)
    if memory is None or lanes.trials == 1 or not families:
        return lanes
    n = len(problem.y)
    largest = max(
        memory.model.trial_bytes(f, FAMILIES[f].start(problem.task, problem.imbalanced, n))
        for f in families
    )
    fits = max(1, int(memory.headroom // max(1, largest)))
    if fits >= lanes.trials:
        return lanes
    cores = max(1, problem.n_jobs)
    return Lanes(
        fits,
        max(1, cores // fits),
        f"{lanes.reason}; the memory limit holds {fits} at once",
    )


def _plan_lanes(problem: Problem, requested: int | None) -> Lanes:
    cores = max(1, problem.n_jobs)
    if requested is not None:
        trials = max(1, min(requested, cores))
        return Lanes(trials, max(1, cores // trials), "as asked")
    if cores == 1:
        return Lanes(1, 1, "one core")
    n_folds = max(2, len(problem.folds))
    cells = len(problem.y) * (n_folds - 1) // n_folds * problem.X.shape[1]
    if cells < _THREADED_CELLS:
        return Lanes(cores, 1, f"{cells:,} cells per fold fit on one thread each")
    trials = 2
    return Lanes(trials, max(1, cores // trials), f"{cells:,} cells per fold: threaded fits")


def fit_pipeline(
    problem: Problem,
    family: Family,
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    deadline: float,
    rounds: int | None = None,
) -> tuple[Any, FitOutcome]:
    """Fit encoder and estimator on ``X``/``y`` only; returns the pipeline and the outcome.

    LightGBM and XGBoost stop early on a held-out share of ``X`` (HistGradientBoosting and the
    MLP split internally) unless ``rounds`` fixes their length.
    """
    from sklearn.pipeline import Pipeline

    encoder = TabularEncoder(kinds=problem.kinds, output=family.output, random_state=problem.seed)
    common: dict[str, Any] = {
        "task": problem.task,
        "seed": problem.seed,
        "n_jobs": problem.n_jobs,
        "deadline": deadline,
        "metric": problem.metric.name,
    }
    if family.iterative and family.name in _SPLITS_FOR_EARLY_STOPPING and rounds is None:
        fit_pos, stop_pos = early_stopping_split(
            y,
            classification=problem.classification,
            seed=problem.seed,
            time_ordered=problem.time_ordered,
        )
        encoder.fit(X.iloc[fit_pos], y[fit_pos])
        outcome = fit_estimator(
            family,
            params,
            X=encoder.transform(X.iloc[fit_pos]),
            y=y[fit_pos],
            eval_set=(encoder.transform(X.iloc[stop_pos]), y[stop_pos]),
            **common,
        )
    else:
        encoded = encoder.fit_transform(X, y)
        outcome = fit_estimator(family, params, X=encoded, y=y, rounds=rounds, **common)
    return Pipeline([("encode", encoder), ("model", outcome.estimator)]), outcome


def _oof_score(problem: Problem, record: TrialRecord) -> None:
    covered = problem.folds.covered
    y, pred = problem.y[covered], record.oof[covered]  # type: ignore[index]
    metric = problem.metric
    if metric.tunes_threshold and problem.task == "binary":
        record.threshold = tune_threshold(metric, y, pred)
    record.score = metric.score(y, pred, threshold=record.threshold)
    record.loss = -record.score if metric.greater_is_better else record.score


# A trial projected to take more than this share of its time left stops (cost-aware mode),
# with one lane; with several, each lane's trial may take this share times the lanes, at most
# all of it (``cost_share``).
_COST_AWARE_SHARE = 0.6


def cost_share(lanes: int) -> float:
    """The share of its time left a trial may be projected to take before the cost-aware rule
    stops it, with ``lanes`` trials at once. One lane: a trial taking most of what is left
    leaves no time for other configurations. Several: the other lanes keep searching beside
    it, and stopping it wastes what its first folds cost (measured loaded on
    california-housing at 60 s with two lanes: 10-19 stopped trials a run holding 14-44 s of
    the lanes' 100 or so with the single-lane share, over 12 runs; 7-9 holding 23-32 s with
    this one and the search's chores on lanes of their own, over 4, and 8-9 complete trials a
    run against 7-8, alternately)."""
    return min(1.0, _COST_AWARE_SHARE * max(1, lanes))


def _stop_reason(
    now: float,
    started: float,
    fastest: float,
    done: int,
    k: int,
    deadline: float,
    *,
    stop_doomed: bool,
    cost_aware: bool,
    share: float = _COST_AWARE_SHARE,
) -> str | None:
    """Why a trial that started at ``started`` and has ``done`` of its ``k`` folds behind it
    (the fastest in ``fastest`` seconds) stops at ``now`` rather than fit its next fold, or
    ``None``."""
    per_fold = (now - started) / done
    if now + per_fold > deadline:
        return "the next fold would pass the deadline"
    if stop_doomed and now + fastest * (k - done) > deadline:
        # a trial that cannot finish is worth nothing to the ensemble: its lane goes to
        # another trial now rather than after more folds (measured loaded on
        # california-housing at 60 s: XGBoost's starting point ran 4 of its 5 folds, 23 s,
        # before the next one would pass its deadline)
        return "its other folds would pass the deadline"
    if cost_aware and per_fold * (k - done) > share * (deadline - now):
        # (the caller turns this off for each family's starting point, whose first fold
        # also pays one-off costs such as loading the library)
        return "too slow for the time left"
    return None


def _fold_end_bound(
    fold_started: float,
    started: float,
    fastest: float,
    i: int,
    k: int,
    deadline: float,
    *,
    cost_aware: bool,
    share: float = _COST_AWARE_SHARE,
) -> float:
    """The latest time fold ``i`` (from 0; not the last) of a trial that started at
    ``started`` may end, the fold having started at ``fold_started``, for ``_stop_reason``
    (with ``stop_doomed``) to let the trial go on after it: a fold ending later has the trial
    stopped, whatever its score."""
    done, left = i + 1, k - i - 1
    # the next fold at the trial's mean pace so far would pass the deadline
    bound = (done * deadline + started) / (done + 1)
    # its other folds at the fastest fold's pace (this one's, were it the fastest) would
    doomed = (deadline + fold_started * left) / (left + 1)
    if math.isfinite(fastest):
        doomed = max(doomed, deadline - fastest * left)
    bound = min(bound, doomed)
    if cost_aware:  # its other folds at its mean pace would take most of the time left
        ratio = left / done
        bound = min(
            bound,
            (share * deadline + started * ratio) / (ratio + share),
        )
    return bound


class _Stop(Exception):
    def __init__(self, state: str, note: str) -> None:
        super().__init__(note)
        self.state, self.note = state, note


def evaluate_config(
    problem: Problem,
    record: TrialRecord,
    *,
    deadline: float,
    report: Callable[[float, int], bool] | None = None,
    cost_aware: bool = True,
    stop_doomed: bool = True,
    cost_share: float = _COST_AWARE_SHARE,
) -> TrialRecord:
    """Cross-validate one configuration into ``record`` (state, scores, OOF predictions).

    Args:
        problem: the data and settings.
        record: the trial (family and parameters set).
        deadline: monotonic time the trial must end by.
        report: ``(running mean loss, fold) -> prune?`` (Optuna's report/should_prune).
        cost_aware: stop a trial projected to take more than ``cost_share`` of the
            remaining time.
        stop_doomed: stop as soon as the remaining folds, at the fastest fold's pace, would
            end past ``deadline``; otherwise only when the next fold would (the
            deterministic mode: how far a trial gets then depends on the clock only through
            the deadline itself).
    """
    family = FAMILIES[record.family]
    n = len(problem.y)
    shape = (n, problem.n_classes) if problem.classification else (n,)
    oof = np.full(shape, np.nan)
    fold_losses: list[float] = []
    fold_models: list[Any] = []
    started = time.monotonic()
    record.started = started
    k = len(problem.folds)
    # a log-scale trial fits log1p(y) and reads its folds' losses in the target's units
    y_fit = forward_transform(problem.y, record.transform)
    fold_metric = in_target_units(problem.metric, record.transform)
    fastest = math.inf  # the fastest fold so far: a first fold's one-off costs left out
    try:
        for i, (train_pos, val_pos) in enumerate(problem.folds.splits):
            now = time.monotonic()
            if i > 0:
                reason = _stop_reason(
                    now,
                    started,
                    fastest,
                    i,
                    k,
                    deadline,
                    stop_doomed=stop_doomed,
                    cost_aware=cost_aware,
                    share=cost_share,
                )
                if reason is not None:
                    raise _Stop("stopped", reason)
            # Outside the deterministic mode a fold ending past this bound would have the
            # trial stopped by the rules above right after it: its fit stops there instead
            # of running to the trial's deadline (measured loaded on california-housing at
            # 60 s: a HistGradientBoosting trial's first fold ran 12.6 s, a CatBoost
            # starting point's 9.7 s, before the trial stopped with nothing kept).
            fit_deadline = deadline
            if stop_doomed and i < k - 1:
                fit_deadline = min(
                    deadline,
                    _fold_end_bound(
                        now,
                        started,
                        fastest,
                        i,
                        k,
                        deadline,
                        cost_aware=cost_aware,
                        share=cost_share,
                    ),
                )
            t0 = time.monotonic()
            pipeline, outcome = fit_pipeline(
                problem,
                family,
                record.params,
                problem.X.iloc[train_pos],
                y_fit[train_pos],
                deadline=fit_deadline,
            )
            fold_models.append(pipeline)
            if outcome.truncated:
                if fit_deadline < deadline:
                    # the fold's time so far, a lower bound, for the family's expected times
                    record.fit_seconds.append(time.monotonic() - t0)
                    raise _Stop(
                        "stopped", f"fold {i + 1} ran too long for its other folds to end in time"
                    )
                raise _Stop("stopped", "reached the deadline inside a fit")
            record.fit_seconds.append(time.monotonic() - t0)
            if outcome.best_iteration is not None and family.iterative:
                record.best_iterations.append(outcome.best_iteration)
            t1 = time.monotonic()
            pred = raw_predict(pipeline, problem.X.iloc[val_pos], problem.task)
            record.predict_seconds.append(time.monotonic() - t1)
            record.predicted_rows += len(val_pos)
            if i == 0:
                t1 = time.monotonic()
                raw_predict(pipeline, problem.X.iloc[val_pos[:1]], problem.task)
                record.call_seconds = time.monotonic() - t1
            oof[val_pos] = pred
            fastest = min(fastest, time.monotonic() - now)
            # label metrics read the most probable class per fold; the OOF score tunes the
            # binary threshold once the trial is complete
            fold_loss = fold_metric.loss(y_fit[val_pos], pred)
            fold_losses.append(fold_loss)
            sign = -1.0 if problem.metric.greater_is_better else 1.0
            record.fold_scores.append(sign * fold_loss)
            # after its last fold a trial has cost all it will: pruning it then saves nothing
            # and loses a candidate member (measured loaded on california-housing at 60 s:
            # LightGBM's log1p starting point was pruned after its fifth fold, 21 s)
            prune = report is not None and report(float(np.mean(fold_losses)), i)
            if prune and i < k - 1:
                raise _Stop("pruned", f"behind the other trials after fold {i + 1}")
        if record.transform != "none":
            # in the target's units from here on, with the shift that suits these rows
            covered = problem.folds.covered
            record.shift = fit_shift(problem.metric, problem.y[covered], oof[covered])
            oof = inverse_transform(oof, record.transform, record.shift)
        record.oof = oof
        record.fold_models = fold_models
        _oof_score(problem, record)
        record.state = "complete"
    except _Stop as stop:
        record.state, record.note = stop.state, "; ".join(filter(None, [record.note, stop.note]))
        # the folds it finished: the last resort when no trial completes in time
        record.fold_models = fold_models or None
    except Exception as e:  # a configuration or a library that cannot fit these data
        error = _first_line(f"{type(e).__name__}: {e}")
        record.state, record.note = "failed", "; ".join(filter(None, [record.note, error]))
    record.seconds = time.monotonic() - started
    return record


def _first_line(text: str) -> str:
    """The first line of an error (native libraries append stack traces), at most 300
    characters."""
    return text.strip().splitlines()[0][:300] if text.strip() else text


def run_search(
    problem: Problem,
    families: Sequence[str],
    *,
    search_deadline: Callable[[list[TrialRecord]], float],
    max_trials: int | None,
    on_trial: Callable[[TrialRecord, list[TrialRecord]], None] | None = None,
    warm_start: Sequence[Mapping[str, Any]] = (),
    lanes: Lanes | None = None,
    portfolio: Sequence[Mapping[str, Any]] = (),
    memory: MemoryBudget | None = None,
    chores: Chores | None = None,
) -> list[TrialRecord]:
    """Run trials until the deadline (or ``max_trials``); returns every trial, in the order
    they were told to the sampler.

    Args:
        problem: the data and settings.
        families: the families to search, in any order.
        search_deadline: ``(trials so far) -> monotonic deadline``; it moves earlier as the
            best models' refit time becomes known.
        max_trials: a fixed number of trials (the deterministic mode).
        on_trial: called after each trial with it and all trials so far.
        warm_start: configurations tried first (``{"model": family, "params": {...}}``,
            parameters without the family prefix), e.g. a champion's best trials; those of
            families not searched are left out.
        lanes: how many trials run at once and the threads each fits with (default: one
            trial on ``problem.n_jobs`` threads); see ``plan_lanes``.
        portfolio: the zero-shot portfolio's configurations for this task and size (same
            form), tried in order after the families' starting points.
        memory: the memory limit: configurations predicted over it are shrunk or skipped.
        chores: work that takes a lane when a lane is free, before the next trial (outside
            the deterministic mode), so the trials on the other lanes go on and are told
            meanwhile. One at a time: the next is asked for only once the last one's result
            was applied (each reads what the last measured), or once it failed.
    """
    import optuna

    ordered = sorted(families, key=lambda f: FAMILIES[f].cost)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _search(
            problem,
            ordered,
            search_deadline,
            max_trials,
            on_trial,
            warm_start,
            lanes,
            portfolio,
            memory,
            chores,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)


def _search(
    problem: Problem,
    ordered: list[str],
    search_deadline: Callable[[list[TrialRecord]], float],
    max_trials: int | None,
    on_trial: Callable[[TrialRecord, list[TrialRecord]], None] | None,
    warm_start: Sequence[Mapping[str, Any]] = (),
    lanes: Lanes | None = None,
    portfolio: Sequence[Mapping[str, Any]] = (),
    memory: MemoryBudget | None = None,
    chores: Chores | None = None,
) -> list[TrialRecord]:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.TPESampler(
            seed=problem.seed,
            multivariate=True,
            group=True,
            n_startup_trials=max(len(ordered), 5),
            warn_independent_sampling=False,
        )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    n_rows = len(problem.y)
    for config in warm_start:
        family = str(config["model"])
        if family in ordered:
            own = {f"{family}.{k}": v for k, v in dict(config.get("params") or {}).items()}
            study.enqueue_trial(
                {"family": family, **own}, user_attrs=_ENQUEUED, skip_if_exists=True
            )
    paired = _paired_family(problem, ordered)
    for name in ordered:
        start = FAMILIES[name].start(problem.task, problem.imbalanced, n_rows)
        if name == paired:
            # the first family's starting point on every transform: which one validation
            # favours decides the other starting points' and the portfolio's (see _Loop)
            for transform in problem.target_transforms:
                study.enqueue_trial(
                    {"family": name, "target": transform, **start},
                    user_attrs={**_ENQUEUED, "target": transform},
                )
        else:
            study.enqueue_trial({"family": name, **start}, user_attrs=_ENQUEUED)
    for config in portfolio:
        family = str(config["model"])
        if family in ordered:
            params = _fitted_to_space(problem, family, dict(config.get("params") or {}))
            own = {f"{family}.{k}": v for k, v in params.items()}
            study.enqueue_trial(
                {"family": family, **own}, user_attrs=_ENQUEUED, skip_if_exists=True
            )

    lanes = lanes or Lanes(1, problem.n_jobs, "one trial at a time")
    loop = _Loop(
        problem, ordered, study, search_deadline, max_trials, on_trial, lanes, memory, chores
    )
    if lanes.trials == 1:
        return loop.run(None)
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    # Trials run on threads: the model libraries release the GIL while they fit. Every
    # native thread pool is held to the trial's share of the cores, and warnings stay
    # silenced for the whole search (``catch_warnings`` is not thread-safe, so the trials'
    # own blocks must restore to this state whichever order they leave in).
    with (
        warnings.catch_warnings(),
        threadpool_limits(limits=lanes.threads),
        ThreadPoolExecutor(lanes.trials, thread_name_prefix="forgeml-trial") as pool,
    ):
        warnings.simplefilter("ignore")
        return loop.run(pool)


class _Loop:
    """Ask, evaluate and tell: up to ``lanes.trials`` trials at once.

    Deterministic mode (``max_trials``) asks trials in fixed batches of ``lanes.trials`` and
    tells their results in trial-number order once the whole batch is done, so TPE and the
    pruner see the same history whichever trial finished first (the median pruner reads
    finished trials only, and the batch's trials are all running until told). Otherwise a
    lane asks a new trial as soon as its trial ends.
    """

    def __init__(
        self,
        problem: Problem,
        ordered: list[str],
        study: Any,
        search_deadline: Callable[[list[TrialRecord]], float],
        max_trials: int | None,
        on_trial: Callable[[TrialRecord, list[TrialRecord]], None] | None,
        lanes: Lanes,
        memory: MemoryBudget | None = None,
        chores: Chores | None = None,
    ) -> None:
        self.problem = problem
        # never in the deterministic mode: a chore's lane would change the batches
        self.chores = chores if max_trials is None else None
        self.memory = memory
        self.running: dict[int, int] = {}  # trial number -> predicted bytes, while it runs
        # each trial fits with its lane's share of the threads
        self.trial_problem = (
            problem if lanes.threads == problem.n_jobs else replace(problem, n_jobs=lanes.threads)
        )
        self.ordered = ordered
        self.study = study
        self.search_deadline = search_deadline
        self.max_trials = max_trials
        self.on_trial = on_trial
        self.lanes = lanes
        self.deterministic = max_trials is not None
        self.records: list[TrialRecord] = []  # told, in the order told
        self.asked: list[TrialRecord] = []  # every trial asked, running or told
        self.skipped = 0

    def run(self, pool: Any) -> list[TrialRecord]:
        from concurrent.futures import FIRST_COMPLETED, Future, wait

        # each running future's trial, or ``None`` for a chore
        running: dict[Future[Any], Any] = {}
        while True:
            # deterministic: a new batch only once the last one is told
            may_ask = not (self.deterministic and running)
            while may_ask and len(running) < self.lanes.trials:
                if self.max_trials is not None and len(self.asked) >= self.max_trials:
                    break
                if self.skipped >= _MAX_SKIPS:
                    break
                # one chore at a time: a running one is a future without a trial
                idle = all(t is not None for t in running.values())
                job = self.chores(self.records) if self.chores is not None and idle else None
                if job is not None:
                    running[self._run(pool, job)] = None
                    continue
                deadline = self.search_deadline(self.records)
                if time.monotonic() >= deadline or self._nothing_fits(deadline):
                    break
                asked = self._ask(deadline)
                if asked is None:  # skipped before it cost anything (told already)
                    # the trials that ended meanwhile are told now, not after the next start:
                    # skips can run for seconds (measured loaded on california-housing at
                    # 60 s: 65-124 skipped asks a run, 40-50 ms each), the lanes waiting
                    self._finish(running, [f for f in running if f.done()])
                    continue
                trial, record, trial_deadline, cost_aware = asked
                now = time.monotonic()
                _log.debug(
                    "trial %d %s started, its deadline in %.2fs, the search's in %.2fs",
                    record.number,
                    record.family,
                    trial_deadline - now,
                    deadline - now,
                )
                future = self._start(pool, trial, record, trial_deadline, cost_aware)
                running[future] = trial
            if not running:
                break
            if self.deterministic:
                done = set(running)
                wait(done)
            else:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            self._finish(running, done)
        return self.records

    def _finish(self, running: dict[Any, Any], done: Iterable[Any]) -> None:
        """Tell the finished trials of ``done`` (in trial-number order) and apply the finished
        chores' results; all leave ``running``."""
        for future in sorted(done, key=lambda f: _order(running[f])):
            trial = running.pop(future)
            if trial is None:  # a chore: its result applied here
                try:
                    apply = future.result()
                except Exception as e:  # the search goes on without what it measured
                    _log.debug("a chore of the search failed: %s", _first_line(str(e)))
                    continue
                apply()
                continue
            self.running.pop(trial.number, None)
            self._tell(trial, future.result())

    def _nothing_fits(self, deadline: float) -> bool:
        """Whether no family's fold is expected to end by ``deadline`` (never in the
        deterministic mode, which does not read the clock)."""
        if self.deterministic:
            return False
        folds = [_expected_seconds(f, self.records, 1) for f in self.ordered]
        known = [t for t in folds if t is not None]
        return bool(known) and min(known) > deadline - time.monotonic()

    def _ask(self, deadline: float) -> tuple[Any, TrialRecord, float, bool] | None:
        problem = self.problem
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask()
            name = trial.suggest_categorical("family", list(self.ordered))
            params = FAMILIES[name].space(trial, problem.task, problem.imbalanced)
            transform = self._transform(trial)
        record = TrialRecord(number=trial.number, family=name, params=params, transform=transform)
        untried = [f for f in self.ordered if all(r.family != f for r in self.asked)]
        self.asked.append(record)
        first_of_family = name in untried
        trial_deadline = deadline
        records = self.records
        if not self.deterministic:
            # a trial whose first fold is not expected to end by the deadline would only run
            # past it (a fit stops between rounds or chunks, and one CatBoost round on many
            # classes or one linear solver call can take seconds): skipped, whether or not
            # a model exists yet
            fold = _expected_seconds(name, records, 1)
            left = deadline - time.monotonic()
            if fold is not None and fold > left:
                record.state = "skipped"
                record.note = f"one fold expected to take {fold:.1f}s, {max(left, 0.0):.1f}s left"
                self._tell_skipped(trial, record)
                return None
        if not self.deterministic and any(r.state == "complete" for r in records):
            # once a model exists, each family's starting point gets a fair share of what
            # is left (each lane has the time left); a trial expected to overrun its share
            # (or, later, the time left) is skipped before it costs anything
            left = deadline - time.monotonic()
            share = left
            if first_of_family:
                share = min(left, 2.0 * left * self.lanes.trials / (len(untried) + 1))
            trial_deadline = min(deadline, time.monotonic() + share)
            expected = _expected_seconds(name, records, len(problem.folds))
            if expected is not None and expected > share:
                record.state, record.note = "skipped", f"expected {expected:.1f}s, over its share"
                # told as a completed trial as bad as the worst so far, so TPE learns that
                # this region does not fit the time left (it ignores failed trials)
                self._tell_skipped(trial, record)
                return None
        if self.memory is not None and not self._fit_memory(trial, record):
            return None
        self.skipped = 0
        cost_aware = not self.deterministic and not first_of_family
        return trial, record, trial_deadline, cost_aware

    def _transform(self, trial: Any) -> str:
        """The trial's target transform: the only one allowed; the one an enqueued trial
        names (the paired starting points); for the others the best trial's so far (in the
        deterministic mode the trials told so far are the same on every run). Not sampled:
        measured at 60 s on 2 loaded cores, a sampled transform spent half the trials on the
        worse one (bike-sharing 37.5 and 35.9 RMSE against 34.8 and 35.6 with one transform
        for the search), while the ensemble still gains from the pair's other member."""
        transforms = self.problem.target_transforms
        if len(transforms) == 1:
            return transforms[0]
        if "target" in trial.user_attrs:
            return str(trial.suggest_categorical("target", list(transforms)))
        return _favoured_transform(self.problem, self.records)

    def _fit_memory(self, trial: Any, record: TrialRecord) -> bool:
        """Shrink ``record``'s configuration to what the memory limit leaves; ``False``
        (the trial skipped and told) when even its smallest form does not fit."""
        memory = self.memory
        assert memory is not None
        model = memory.model

        def left() -> float:
            kept = sum(model.kept_bytes(r.family, r.params) for r in self.records if r.fold_models)
            return memory.headroom - kept - sum(self.running.values())

        fit = model.fit(record.family, record.params, left())
        if fit is None and any(r.fold_models for r in self.records):
            # the fold models of every trial but the best are a convenience (ensemble
            # members refit from their parameters): free them before giving up
            best = min(
                (r for r in self.records if r.loss is not None and r.fold_models),
                key=lambda r: (r.loss, r.number),
                default=None,
            )
            for r in self.records:
                if r is not best:
                    r.fold_models = None
            fit = model.fit(record.family, record.params, left())
        if fit is None:
            need = model.trial_bytes(record.family, record.params)
            record.state = "skipped"
            record.note = (
                f"predicted {format_bytes(need)}, over the {format_bytes(max(0.0, left()))} "
                f"the memory limit ({format_bytes(memory.limit)}) leaves"
            )
            record.predicted_bytes = need
            self._tell_skipped(trial, record)
            return False
        record.params, record.note, record.predicted_bytes = fit.params, fit.note, fit.bytes
        self.running[record.number] = fit.bytes
        return True

    def _tell_skipped(self, trial: Any, record: TrialRecord) -> None:
        """Tell a trial skipped before it ran: as bad as the worst so far (TPE ignores
        failed trials, and this region does not fit), or failed when nothing scored yet."""
        from optuna.trial import TrialState

        losses = [r.loss for r in self.records if r.loss is not None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if losses:
                self.study.tell(trial, max(losses))
            else:
                self.study.tell(trial, state=TrialState.FAIL)
        self.records.append(record)
        self.skipped += 1

    def _start(
        self, pool: Any, trial: Any, record: TrialRecord, deadline: float, cost_aware: bool
    ) -> Any:
        def report(value: float, step: int) -> bool:
            trial.report(value, step)
            return bool(trial.should_prune())

        def evaluate() -> TrialRecord:
            return evaluate_config(
                self.trial_problem,
                record,
                deadline=deadline,
                report=report,
                cost_aware=cost_aware,
                stop_doomed=not self.deterministic,
                cost_share=cost_share(self.lanes.trials),
            )

        return self._run(pool, evaluate)

    @staticmethod
    def _run(pool: Any, job: Callable[[], Any]) -> Any:
        """``job`` on a lane of ``pool``, or here and now without one; its future."""
        from concurrent.futures import Future

        if pool is not None:
            return pool.submit(job)
        future: Future[Any] = Future()
        future.set_result(job())
        return future

    def _tell(self, trial: Any, record: TrialRecord) -> None:
        from optuna.trial import TrialState

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if record.state == "complete":
                self.study.tell(trial, record.loss)
            elif record.state == "failed":
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self.study.tell(trial, state=TrialState.PRUNED)
        records = self.records
        records.append(record)
        _drop_fold_models(records)
        _log.debug(
            "trial %d %s %s score=%s %.2fs (deadline in %.2fs) %s",
            record.number,
            record.family,
            record.state,
            record.score,
            record.seconds,
            self.search_deadline(records) - time.monotonic(),
            record.note,
        )
        if self.on_trial is not None:
            self.on_trial(record, records)


def _order(trial: Any) -> int:
    """Finished work is handled chores first, then trials in trial-number order."""
    return -1 if trial is None else int(trial.number)


def _paired_family(problem: Problem, ordered: Sequence[str]) -> str | None:
    """The family whose starting point is tried on every target transform (a strong, cheap
    boosting family first), or ``None`` when trials do not choose a transform."""
    if not problem.mixed_targets or not ordered:
        return None
    return next((f for f in ("lgbm", "xgb", "catboost", "hgb") if f in ordered), ordered[0])


def _favoured_transform(problem: Problem, records: Sequence[TrialRecord]) -> str:
    """The transform of the best complete trial so far (the first allowed before any)."""
    best = min(
        (r for r in records if r.state == "complete" and r.loss is not None),
        key=lambda r: (r.loss, r.number),
        default=None,
    )
    return best.transform if best is not None else problem.target_transforms[0]


def _fitted_to_space(problem: Problem, family: str, params: dict[str, Any]) -> dict[str, Any]:
    """A portfolio configuration fitted to this problem's space: class weights left out
    where the space has none, ``none`` where it searches them and the configuration is silent
    (so no parameter of an enqueued trial is left to chance)."""
    from forgeml.train._portfolio import space_of

    weighted = problem.task == "multiclass" or (problem.classification and problem.imbalanced)
    space = space_of(family, problem.task, weighted)
    fitted = {k: v for k, v in params.items() if k in space}
    if "class_weight" in space:
        fitted.setdefault("class_weight", "none")
    return fitted


def _drop_fold_models(records: list[TrialRecord]) -> None:
    """Free the fold models of every trial outside the best ``KEEP_FOLD_MODELS`` and each
    family's best (the ensemble's candidates: their one-row time is measured on them)."""
    complete = sorted(
        (r for r in records if r.state == "complete" and r.loss is not None),
        key=lambda r: (r.loss, r.number),
    )
    families = {r.family for r in complete[:KEEP_FOLD_MODELS]}
    for r in complete[KEEP_FOLD_MODELS:]:
        if r.family in families:
            r.fold_models = None
        else:
            families.add(r.family)
    if complete:
        for r in records:
            if r.state != "complete":
                r.fold_models = None


def _expected_seconds(family: str, records: list[TrialRecord], n_folds: int) -> float | None:
    """A trial's expected seconds: the family's measured fold time, or for a family not yet
    run the other families' fold times scaled by the cost prior."""
    own = [t for r in records if r.family == family for t in r.fit_seconds]
    if own:
        return float(np.mean(own)) * n_folds
    unit = [t / FAMILIES[r.family].relative_cost for r in records for t in r.fit_seconds]
    if not unit:
        return None
    return float(np.median(unit)) * FAMILIES[family].relative_cost * n_folds
