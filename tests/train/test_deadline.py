"""The deadline: the search does not start what cannot end in time, and the steps after the
search are skipped, with a note, when their measured cost does not fit the time left.
(How close a training ends to its budget is measured in benchmarks/budgets.py, not here.)"""

from __future__ import annotations

import math
import time

import numpy as np
import optuna
import pandas as pd
from hypothesis import assume, given
from hypothesis import strategies as st

from forgeml.train._metrics import get_metric
from forgeml.train._search import Lanes, Problem, TrialRecord, _Loop
from forgeml.train._validation import make_folds
from forgeml.train._zoo import FAMILIES


def _problem(rows: int = 300) -> Problem:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + rng.normal(size=rows) > 0).to_numpy().astype(int)
    return Problem(
        X=X,
        y=y,
        kinds=dict.fromkeys(X.columns, "numeric"),
        task="binary",
        n_classes=2,
        metric=get_metric(None, "binary"),
        folds=make_folds(rows, y, n_folds=3, seed=0, time_ordered=False),
        seed=0,
        n_jobs=1,
        time_ordered=False,
        imbalanced=False,
    )


def _loop(problem: Problem, families: list[str], max_trials: int | None = None) -> _Loop:
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    for name in families:
        study.enqueue_trial({"family": name, **FAMILIES[name].start("binary", False, 300)})
    far = time.monotonic() + 3600.0
    return _Loop(
        problem, families, study, lambda records: far, max_trials, None, Lanes(1, 1, "one")
    )


def _measured(family: str, fold_seconds: float) -> TrialRecord:
    """A trial told earlier whose folds took ``fold_seconds`` each (nothing completed)."""
    return TrialRecord(
        number=99, family=family, params={}, state="stopped", fit_seconds=[fold_seconds]
    )


def test_a_trial_whose_first_fold_cannot_end_by_the_deadline_is_not_started() -> None:
    problem = _problem()
    loop = _loop(problem, ["rf", "lgbm"])
    # an earlier rf trial's fold took 1,000 s; 100 s are left: the next rf trial is skipped
    # (no model exists yet: the rule does not wait for one), and told so with the reason
    loop.records.append(_measured("rf", 1000.0))
    asked = loop._ask(time.monotonic() + 100.0)
    assert asked is None
    skipped = loop.records[-1]
    assert skipped.family == "rf" and skipped.state == "skipped"
    assert "one fold expected to take 1000.0s" in skipped.note
    # lgbm was never run: its fold is the measured one scaled by the cost prior (1/3 of rf's)
    assert loop._nothing_fits(time.monotonic() + 100.0)
    assert not loop._nothing_fits(time.monotonic() + 3600.0)
    asked = loop._ask(time.monotonic() + 3600.0)
    assert asked is not None and asked[1].family == "lgbm"


def test_the_search_ends_when_no_family_fits_the_time_left() -> None:
    problem = _problem()
    loop = _loop(problem, ["lgbm", "linear"])
    loop.records.append(_measured("lgbm", 7200.0))  # no fold of any family fits an hour
    records = loop.run(None)
    assert [r.state for r in records] == ["stopped"]  # nothing else was started or skipped


def test_the_deterministic_mode_does_not_skip_by_the_clock() -> None:
    problem = _problem()
    loop = _loop(problem, ["lgbm"], max_trials=1)
    loop.records.append(_measured("lgbm", 7200.0))
    assert not loop._nothing_fits(time.monotonic() + 1.0)
    asked = loop._ask(time.monotonic() + 3600.0)
    assert asked is not None and asked[1].family == "lgbm"


def _trained(problem: Problem, number: int, family: str) -> TrialRecord:
    """A real trial (every fold fitted), cross-validated without a deadline."""
    from forgeml.train._search import evaluate_config

    start = FAMILIES[family].start(problem.task, False, len(problem.y))
    record = TrialRecord(number, family, dict(start))
    evaluate_config(problem, record, deadline=float("inf"), cost_aware=False)
    assert record.state == "complete"
    return record


def _select(problem: Problem, records: list[TrialRecord], *, bagging: bool, notes: list[str]):
    from forgeml.train._api import _select_and_refit

    return _select_and_refit(
        problem,
        records,
        time.monotonic() + 60.0,  # a minute left: less than any step measured at 1,000 s
        1.0,
        [0, 1],
        list(problem.X.columns),
        notes,
        [r.family for r in records],
        latency_rows=problem.X,
        bagging=bagging,
        deterministic=False,
        finish_rows=len(problem.y) + 1000,
    )


def test_a_refit_predicted_not_to_fit_is_skipped_and_noted() -> None:
    from forgeml.train._model import FoldBag

    problem = _problem()
    record = _trained(problem, 0, "linear")
    record.fit_seconds = [1000.0] * len(record.fit_seconds)  # as if each fold took 1,000 s
    notes: list[str] = []
    selection = _select(problem, [record], bagging=False, notes=notes)
    # its fold models are averaged instead, and the notes say so
    assert any("linear #0: no time to refit" in n for n in notes), notes
    (member,) = selection.model.members
    assert isinstance(member, FoldBag) and len(member.pipelines) == len(problem.folds)
    # with the fold times it measured, the same trial is refitted on all rows
    fresh = _trained(problem, 0, "linear")
    notes = []
    (member,) = _select(problem, [fresh], bagging=False, notes=notes).model.members
    assert not isinstance(member, FoldBag)
    assert not any("no time to refit" in n for n in notes)


def test_a_second_level_predicted_not_to_fit_is_skipped_and_noted() -> None:
    problem = _problem()
    records = [_trained(problem, 0, "lgbm"), _trained(problem, 1, "xgb")]
    for record in records:
        record.fit_seconds = [1000.0] * len(record.fit_seconds)
    notes: list[str] = []
    selection = _select(problem, records, bagging=True, notes=notes)
    assert any(n.startswith("no second stacking level: it needs about") for n in notes), notes
    assert all(not str(f).startswith("stack(") for f in selection.model.families)


def test_calibration_past_its_deadline_is_skipped_and_noted() -> None:
    from forgeml.train._calibration import choose_calibration

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)
    proba = rng.dirichlet(np.ones(3), size=300)
    choice = choose_calibration(
        get_metric("log_loss", "multiclass"), y, proba, seed=0, deadline=time.monotonic() - 1.0
    )
    assert choice.calibration is None and choice.cut_after == 0
    assert "cut at the deadline after 0 of" in choice.note()
    free = choose_calibration(get_metric("log_loss", "multiclass"), y, proba, seed=0)
    assert free.cut_after is None


def test_prediction_time_per_row_leaves_out_the_fixed_cost_of_a_call() -> None:
    from forgeml.train._api import _FINISH_CALLS, _predict_estimate

    # two folds of 10 rows, 11 ms each, of which a one-row call takes 10 ms: 0.1 ms a row
    record = TrialRecord(0, "lgbm", {}, predict_seconds=[0.011, 0.011], predicted_rows=20)
    record.call_seconds = 0.010
    assert abs(record.row_seconds - 1e-4) < 1e-12
    # a bag of 5 fold models predicting 1,000 rows in the held-out evaluation's calls
    record.fold_models = [object()] * 5
    expected = 1.5 * 5 * (_FINISH_CALLS * 0.010 + 1000 * 1e-4)
    assert abs(_predict_estimate([record], 1000) - expected) < 1e-9
    # extrapolated from the whole fold time, as if every row cost 1.1 ms, it would be 8.25 s
    assert _predict_estimate([record], 1000) < 1.5 * 5 * 1000 * 0.011 / 10
    # a trial measures the fixed cost on its first fold model
    measured = _trained(_problem(), 0, "lgbm")
    assert measured.call_seconds > 0.0


def test_the_search_keeps_time_for_the_members_the_ensemble_selection_would_pick() -> None:
    from forgeml.train._api import _REFIT_RESERVED, _likely_members

    problem = _problem(rows=600)
    rng = np.random.default_rng(1)
    signal = problem.X["a"].to_numpy()

    def proba(score: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-score))
        return np.column_stack([1 - p, p])

    def record(number: int, oof: np.ndarray | None) -> TrialRecord:
        return TrialRecord(number, "lgbm", {}, state="complete", loss=0.0, oof=oof)

    best = record(0, proba(signal + rng.normal(size=600)))
    flat = record(1, np.full((600, 2), 0.5))  # ranks no row: a blend with it changes nothing
    noise = record(2, proba(rng.normal(size=600)))
    # the runners-up add nothing to the best model: only its evaluation is kept in reserve
    assert _likely_members(problem, [best, flat, noise]) == [best]
    # a model with independent errors on the same signal lowers the blend's loss: both
    other = record(3, proba(signal + rng.normal(size=600)))
    assert {r.number for r in _likely_members(problem, [best, other, flat])} == {0, 3}
    # before out-of-fold predictions exist, the best few trials
    bare = [record(n, None) for n in range(5)]
    assert _likely_members(problem, bare) == bare[:_REFIT_RESERVED]


def test_a_second_level_the_probes_judged_not_worth_its_time_is_not_fitted() -> None:
    problem = _problem()
    records = [_trained(problem, 0, "lgbm"), _trained(problem, 1, "xgb")]
    notes: list[str] = []
    from forgeml.train._api import _select_and_refit

    reason = "no second stacking level: on the first fold its best probed model scored less"
    selection = _select_and_refit(
        problem,
        records,
        time.monotonic() + 3600.0,  # time for anything: only the verdict stops level 2
        1.0,
        [0, 1],
        list(problem.X.columns),
        notes,
        ["lgbm", "xgb"],
        latency_rows=problem.X,
        bagging=True,
        deterministic=True,  # which would otherwise always fit it
        finish_rows=len(problem.y) + 1000,
        stack_verdict=reason,
    )
    assert reason in notes
    assert not any("second stacking level:" in n and n != reason for n in notes), notes
    assert all(not str(f).startswith("stack(") for f in selection.model.families)
    assert all(row["model"] != "stack" for row in selection.extra_rows)


def test_bags_the_search_timed_are_not_timed_again() -> None:
    problem = _problem()
    records = [_trained(problem, 0, "lgbm"), _trained(problem, 1, "linear")]
    from forgeml.train._api import _select_and_refit

    # the search timed the LightGBM bag (a number no machine would measure)
    timed = {0: {"one_row_ms": 123.0, "rows_1000_ms": 4567.0}}
    selection = _select_and_refit(
        problem,
        records,
        time.monotonic() + 3600.0,
        1.0,
        [0, 1],
        list(problem.X.columns),
        [],
        ["lgbm", "linear"],
        latency_rows=problem.X,
        bagging=True,
        deterministic=True,
        finish_rows=len(problem.y) + 1000,
        timed=timed,
    )
    assert selection.latencies[0] == timed[0]
    assert selection.latencies[1]["rows_1000_ms"] != 4567.0  # the other one was measured


def test_a_boosted_refit_is_estimated_for_its_own_rounds_not_the_folds_waiting_ones() -> None:
    from forgeml.train._api import _refit_estimate

    problem = _problem()  # 3 folds of 200 training rows; the refit reads 300
    scale = 300 / 200 * 1.2
    # CatBoost at learning rate 0.1 waits 50 rounds past its best: folds whose best round was
    # 50 fitted 100 rounds each; the refit fits 10% more than 50
    record = TrialRecord(
        0,
        "catboost",
        {"catboost.learning_rate": 0.1},
        fit_seconds=[2.0] * 3,
        best_iterations=[50] * 3,
    )
    assert record.rounds in (55, 56)
    share = record.rounds / 100
    assert abs(_refit_estimate(record, problem) - 2.0 * scale * share) < 1e-9
    # a slower rate waits longer (200 rounds at 0.02 or below): a smaller share
    slow = TrialRecord(
        1,
        "catboost",
        {"catboost.learning_rate": 0.02},
        fit_seconds=[2.0] * 3,
        best_iterations=[50] * 3,
    )
    assert abs(_refit_estimate(slow, problem) - 2.0 * scale * share * 100 / 250) < 1e-9
    # folds that never stopped early (their best round is their last) refit all of it
    long = TrialRecord(2, "lgbm", {}, fit_seconds=[2.0] * 3, best_iterations=[3000] * 3)
    assert abs(_refit_estimate(long, problem) - 2.0 * scale) < 1e-9
    # families without rounds refit what a fold fitted
    forest = TrialRecord(3, "rf", {}, fit_seconds=[2.0] * 3)
    assert abs(_refit_estimate(forest, problem) - 2.0 * scale) < 1e-9


class _Clock:
    """Stands in for the ``time`` module in ``_search``: its clock moves only when a test
    moves ``now``."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now


def test_a_trial_whose_remaining_folds_cannot_end_by_its_deadline_stops_now(monkeypatch) -> None:
    from forgeml.train import _search

    clock = _Clock()  # moves only when a fold model is fitted: 10 s a fit
    fit = _search.fit_pipeline

    def slow_fit(*args, **kwargs):
        clock.now += 10.0
        return fit(*args, **kwargs)

    monkeypatch.setattr(_search, "time", clock)
    monkeypatch.setattr(_search, "fit_pipeline", slow_fit)
    problem = _problem()  # 3 folds
    start = FAMILIES["linear"].start("binary", False, 300)
    # 25 s: after its first fold (10 s) the other two would need 20 more; one more would fit
    record = _search.evaluate_config(
        problem,
        TrialRecord(0, "linear", dict(start)),
        deadline=clock.now + 25.0,
        cost_aware=False,
    )
    assert record.state == "stopped" and "other folds would pass the deadline" in record.note
    assert len(record.fit_seconds) == 1  # not a second fold that could not lead anywhere
    # the deterministic mode reads the clock only against the deadline: the next fold
    record = _search.evaluate_config(
        problem,
        TrialRecord(2, "linear", dict(start)),
        deadline=clock.now + 25.0,
        cost_aware=False,
        stop_doomed=False,
    )
    assert record.state == "stopped" and len(record.fit_seconds) == 2
    # with time for all three, it completes
    record = _search.evaluate_config(
        problem,
        TrialRecord(1, "linear", dict(start)),
        deadline=clock.now + 30.5,
        cost_aware=False,
    )
    assert record.state == "complete" and len(record.fit_seconds) == 3


def test_members_whose_measured_evaluation_fits_the_time_left_are_all_kept() -> None:
    from forgeml.train._api import _select_and_refit

    problem = _problem(rows=600)
    records = [_trained(problem, 0, "lgbm"), _trained(problem, 1, "xgb")]
    rng = np.random.default_rng(1)
    signal = problem.X["a"].to_numpy()
    for record in records:
        # two models of the same signal with independent errors: their blend is better
        p = 1 / (1 + np.exp(-(signal + rng.normal(size=600))))
        record.oof = np.column_stack([1 - p, p])
        record.loss = problem.metric.loss(problem.y, record.oof)
    # each bag's held-out evaluation was measured at 1,000 s (1,000 rows): 2,600 s are left,
    # time for both as measured (what the search kept), not for both with a 1.5x margin
    timed = {r.number: {"one_row_ms": 0.0, "rows_1000_ms": 1e6} for r in records}
    selection = _select_and_refit(
        problem,
        sorted(records, key=lambda r: r.loss),
        time.monotonic() + 2601.0,
        1.0,
        [0, 1],
        list(problem.X.columns),
        [],
        ["lgbm", "xgb"],
        latency_rows=problem.X,
        bagging=True,
        finish_rows=1000,
        stack_verdict="no second stacking level: not tried here",
        timed=timed,
    )
    assert sorted(e["trial"] for e in selection.ensemble) == [0, 1]


def test_a_trial_behind_the_others_after_its_last_fold_is_kept() -> None:
    """Pruning stops a trial to save its other folds; after the last one there is nothing to
    save, and the finished trial is a candidate member."""
    from forgeml.train._search import evaluate_config

    problem = _problem()  # 3 folds
    start = FAMILIES["linear"].start("binary", False, 300)
    steps: list[int] = []

    def behind(value: float, step: int) -> bool:
        steps.append(step)
        return step == len(problem.folds) - 1  # the pruner's verdict after the last fold

    record = evaluate_config(
        problem, TrialRecord(0, "linear", dict(start)), deadline=float("inf"), report=behind
    )
    assert steps == [0, 1, 2]
    assert record.state == "complete" and record.oof is not None
    # a verdict before the last fold still prunes
    record = evaluate_config(
        problem,
        TrialRecord(1, "linear", dict(start)),
        deadline=float("inf"),
        report=lambda value, step: step == 1,
    )
    assert record.state == "pruned" and len(record.fit_seconds) == 2


def test_a_fold_too_long_for_its_trial_to_go_on_stops_inside_its_fit(monkeypatch) -> None:
    """A fold that would have the trial stopped right after it is cut where that becomes
    certain, not run to the trial's deadline."""
    from dataclasses import replace

    from forgeml.train import _search

    clock = _Clock()
    fit = _search.fit_pipeline
    fold_seconds = [0.0]

    def timed_fit(*args, **kwargs):
        # a fit of fold_seconds that stops at its deadline, as the anytime fits do
        pipeline, outcome = fit(*args, **kwargs)
        allowed = kwargs["deadline"] - clock.now
        clock.now += min(fold_seconds[0], allowed)
        return pipeline, replace(outcome, truncated=fold_seconds[0] > allowed)

    monkeypatch.setattr(_search, "time", clock)
    monkeypatch.setattr(_search, "fit_pipeline", timed_fit)
    problem = _problem()  # 3 folds
    start = FAMILIES["linear"].start("binary", False, 300)
    # 100 s and 40 s a fold: three cannot end in time, so the first stops at a third of it
    fold_seconds[0] = 40.0
    record = _search.evaluate_config(
        problem,
        TrialRecord(0, "linear", dict(start)),
        deadline=clock.now + 100.0,
        cost_aware=False,
    )
    assert record.state == "stopped" and "ran too long" in record.note
    assert abs(record.seconds - 100.0 / 3) < 1e-6
    assert record.fit_seconds == [record.seconds]  # a lower bound the family's estimates read
    # cost-aware, the other two folds at its pace may take 60% of the time left after it
    record = _search.evaluate_config(
        problem, TrialRecord(1, "linear", dict(start)), deadline=clock.now + 100.0
    )
    assert record.state == "stopped" and abs(record.seconds - 60.0 / 2.6) < 1e-6
    # 30 s a fold: all three fit, none is cut
    fold_seconds[0] = 30.0
    record = _search.evaluate_config(
        problem,
        TrialRecord(2, "linear", dict(start)),
        deadline=clock.now + 100.0,
        cost_aware=False,
    )
    assert record.state == "complete" and record.fit_seconds == [30.0] * 3
    # the deterministic mode reads the clock only against the deadline: no bound
    fold_seconds[0] = 40.0
    record = _search.evaluate_config(
        problem,
        TrialRecord(3, "linear", dict(start)),
        deadline=clock.now + 100.0,
        cost_aware=False,
        stop_doomed=False,
    )
    assert record.state == "stopped" and len(record.fit_seconds) == 2


@given(
    started=st.floats(0.0, 100.0),
    spent=st.floats(0.01, 100.0),
    share=st.floats(0.01, 1.0),
    i=st.integers(0, 8),
    more=st.integers(0, 4),
    span=st.floats(0.0, 500.0),
    after=st.floats(0.0, 300.0),
    cost_aware=st.booleans(),
    cost_share=st.sampled_from([0.6, 1.0]),
)
def test_the_fold_end_bound_is_where_the_stop_rules_turn(
    started, spent, share, i, more, span, after, cost_aware, cost_share
) -> None:
    from forgeml.train._search import _fold_end_bound, _stop_reason

    k = i + 2 + more  # fold i is not the last
    if i == 0:  # no fold before the first one
        spent, fastest = 0.0, math.inf
    else:
        fastest = share * spent / i  # the fastest of i folds is at most their mean
    fold_started = started + spent
    deadline = fold_started + span
    end = fold_started + after
    bound = _fold_end_bound(
        fold_started, started, fastest, i, k, deadline, cost_aware=cost_aware, share=cost_share
    )
    assume(abs(end - bound) > 1e-6 * (1.0 + abs(bound)))  # away from rounding at the bound
    reason = _stop_reason(
        end,
        started,
        min(fastest, end - fold_started),
        i + 1,
        k,
        deadline,
        stop_doomed=True,
        cost_aware=cost_aware,
        share=cost_share,
    )
    assert (reason is None) == (end <= bound)


def test_with_several_lanes_a_trial_may_take_more_of_the_time_left(monkeypatch) -> None:
    """The cost-aware rule stops a trial projected to take most of the time left, so one
    lane can try other configurations; with two lanes the other lane goes on searching, and
    a trial that ends in time is not stopped for its share."""
    from dataclasses import replace

    from forgeml.train import _search

    clock = _Clock()

    def timed_fit(*args, **kwargs):  # 10 s a fold, stopping at its deadline
        pipeline, outcome = fit(*args, **kwargs)
        allowed = kwargs["deadline"] - clock.now
        clock.now += min(10.0, allowed)
        return pipeline, replace(outcome, truncated=allowed < 10.0)

    fit = _search.fit_pipeline
    monkeypatch.setattr(_search, "time", clock)
    monkeypatch.setattr(_search, "fit_pipeline", timed_fit)
    problem = _problem()  # 3 folds: 30 s of a 35 s deadline, the other two folds 20 of 25 s
    start = FAMILIES["linear"].start("binary", False, 300)
    records = {}
    far = clock.now + 3600.0
    for lanes in (1, 2):
        study = optuna.create_study(direction="minimize")
        loop = _Loop(
            problem, ["linear"], study, lambda records: far, None, None, Lanes(lanes, 1, "")
        )
        record = TrialRecord(lanes, "linear", dict(start))
        future = loop._start(None, study.ask(), record, clock.now + 35.0, True)
        records[lanes] = future.result()
    assert records[1].state == "stopped"
    assert records[2].state == "complete" and records[2].fit_seconds == [10.0] * 3


def _two_lanes_with_chores(problem, search_deadline, chores, on_trial=None) -> _Loop:
    """A search loop on two lanes over the linear family (its starting point enqueued first)
    with ``chores``."""
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial({"family": "linear", **FAMILIES["linear"].start("binary", False, 300)})
    return _Loop(
        problem,
        ["linear"],
        study,
        search_deadline,
        None,
        on_trial,
        Lanes(2, 1, "two"),
        None,
        chores,
    )


def test_a_chore_takes_a_lane_while_the_other_lane_goes_on() -> None:
    """Work between trials (the level-2 probes, timing the leaders' bags) runs on a lane of
    its own: the trials on the other lane are told meanwhile, and its result is applied on
    the search's thread. The deterministic mode runs none."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    problem = _problem()
    told = threading.Event()
    seen: dict[str, object] = {}
    calls: list[int] = []

    def chores(records):
        calls.append(len(records))
        if "job" in seen:
            return None
        seen["job"] = True

        def job():
            meanwhile = told.wait(120)  # a trial on the other lane ends and is told

            def apply():
                seen["told meanwhile"] = meanwhile
                seen["thread"] = threading.current_thread()

            return apply

        return job

    far = time.monotonic() + 3600.0

    def search_deadline(records):
        return 0.0 if "thread" in seen else far

    loop = _two_lanes_with_chores(
        problem, search_deadline, chores, on_trial=lambda record, records: told.set()
    )
    with ThreadPoolExecutor(2) as pool:
        records = loop.run(pool)
    assert seen["told meanwhile"] is True
    assert seen["thread"] is threading.current_thread()  # applied on the search's thread
    assert records and records[0].state == "complete"
    calls.clear()
    deterministic = _Loop(
        problem, ["linear"], loop.study, lambda records: far, 1, None, Lanes(1, 1, ""), None, chores
    )
    deterministic.run(None)
    assert calls == []


def test_chores_run_one_at_a_time_and_a_failed_one_does_not_stop_the_next() -> None:
    """The search asks for the next chore only once the last one's result was applied, or it
    failed: a chore that raises (a level-2 probe that could not fit) is dropped, the search
    goes on without what it would have measured, and the chores after it still run."""
    from concurrent.futures import ThreadPoolExecutor

    problem = _problem()
    started: list[str] = []
    in_flight: list[str] = []
    asked_while_one_ran: list[bool] = []
    applied: list[str] = []

    def chores(records):
        asked_while_one_ran.append(bool(in_flight))
        if len(started) == 2:
            return None
        name = "fails" if not started else "measures"
        started.append(name)
        in_flight.append(name)

        def job():
            try:
                time.sleep(0.05)
                if name == "fails":
                    raise RuntimeError("No models were fitted")
            finally:
                in_flight.remove(name)
            return lambda: applied.append(name)

        return job

    far = time.monotonic() + 3600.0
    loop = _two_lanes_with_chores(problem, lambda records: 0.0 if applied else far, chores)
    with ThreadPoolExecutor(2) as pool:
        records = loop.run(pool)
    assert started == ["fails", "measures"]
    assert applied == ["measures"]
    assert not any(asked_while_one_ran)
    assert records and all(r.state == "complete" for r in records)


def test_a_trial_that_ends_while_the_next_asks_are_skipped_is_told_meanwhile() -> None:
    """Skipped asks can follow each other for seconds near the end of a search: a trial that
    ended meanwhile is told then (its lane free for the next start), not after them."""
    from concurrent.futures import ThreadPoolExecutor

    problem = _problem()
    far = time.monotonic() + 3600.0
    stop: list[bool] = []
    loop = _Loop(
        problem,
        ["linear"],
        optuna.create_study(direction="minimize"),
        lambda records: 0.0 if stop else far,
        None,
        None,
        Lanes(2, 1, "two"),
    )
    loop.study.enqueue_trial({"family": "linear", **FAMILIES["linear"].start("binary", False, 300)})
    ask = loop._ask
    seen: dict[str, int] = {"skips after it ended": 0}

    def asking(deadline):
        if not loop.asked:
            return ask(deadline)  # the one trial, on the first lane
        # every other ask is skipped, as when nothing else fits the time left
        if loop.asked[0].state != "running":
            seen["skips after it ended"] += 1
        if loop.records or seen["skips after it ended"] >= 200:
            seen.setdefault("told after skips", seen["skips after it ended"])
            stop.append(True)
        time.sleep(0.005)
        return None

    loop._ask = asking  # type: ignore[method-assign]
    with ThreadPoolExecutor(2) as pool:
        records = loop.run(pool)
    assert records and records[0].state == "complete"
    assert seen["told after skips"] < 200
