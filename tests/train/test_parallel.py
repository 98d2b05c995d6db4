"""Parallel trials: the rule that sets how many run at once, and the must-hold that the same
seed and trial budget give the same leaderboard with parallel trials on."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forgeml.train import train
from forgeml.train._metrics import get_metric
from forgeml.train._search import Problem, plan_lanes
from forgeml.train._validation import make_folds


def _problem(rows: int, columns: int, n_jobs: int) -> Problem:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, columns)), columns=[f"x{i}" for i in range(columns)])
    y = (X["x0"] > 0).to_numpy().astype(int)
    return Problem(
        X=X,
        y=y,
        kinds={c: "numeric" for c in X.columns},
        task="binary",
        n_classes=2,
        metric=get_metric(None, "binary"),
        folds=make_folds(rows, y, n_folds=5, seed=0, time_ordered=False),
        seed=0,
        n_jobs=n_jobs,
        time_ordered=False,
        imbalanced=False,
    )


def test_lanes_follow_the_table_size_and_the_cores() -> None:
    small = plan_lanes(_problem(2000, 10, n_jobs=2))
    assert (small.trials, small.threads) == (2, 1)
    assert "2 trials at a time, 1 thread(s) each" in small.note()
    # a fold of 40,000 x 30 = 1.2 M cells fits on several threads: two trials, half each
    large = plan_lanes(_problem(50_000, 30, n_jobs=4))
    assert (large.trials, large.threads) == (2, 2)
    assert "threaded fits" in large.reason
    assert (plan_lanes(_problem(2000, 10, n_jobs=1)).trials) == 1
    asked = plan_lanes(_problem(50_000, 30, n_jobs=4), requested=2)
    assert (asked.trials, asked.threads) == (2, 2)
    # never more trials at once than cores
    assert plan_lanes(_problem(2000, 10, n_jobs=2), requested=8).trials == 2


def _board(result: object) -> pd.DataFrame:
    board = result.leaderboard  # type: ignore[attr-defined]
    timing = ("fit_s", "trial_s", "one_row_ms", "rows_1000_ms")  # measured, not chosen
    return board.drop(columns=[c for c in timing if c in board.columns])


def _replayable(german: pd.DataFrame, ws: object, **options: Any) -> Any:
    """``train`` with a trial budget, two trials at a time, and nothing else that reads the
    clock: the trial budget ends the run; a time budget far from binding keeps the deadline,
    the one clock left (it cuts the second stacking level's fits), from changing the
    leaderboard on a busy machine; the latency bound reads the clock (``train._latency``):
    off, for a replayable choice."""
    settings: dict[str, Any] = {
        "parallel_trials": 2,
        "n_jobs": 2,
        "time_budget": 600,
        "max_latency_ms": None,
        "workspace": ws,
    }
    return train(german, **{**settings, **options})


def test_same_seed_and_trial_budget_give_the_same_leaderboard_in_parallel(german, ws) -> None:
    """Two runs, two trials at a time: identical leaderboards (families, parameters, scores),
    and the trials really overlapped in time."""
    spans: set[tuple[float, float]] = set()

    def progress(event: object) -> None:
        for r in event.trials:  # type: ignore[attr-defined]
            if r.started is not None:
                spans.add((r.started, r.started + r.seconds))

    runs = [
        _replayable(  # about 12 s each
            german,
            ws,
            target="class",
            models=["lgbm", "linear", "xgb"],
            max_trials=10,
            seed=7,
            progress=progress if i == 0 else None,
        )
        for i in range(2)
    ]
    first, second = runs
    assert "2 trials at a time, 1 thread(s) each (as asked)" in first.notes
    pd.testing.assert_frame_equal(_board(first), _board(second))
    assert sum(first.n_trials.values()) == 10
    assert first.best == second.best and first.ensemble == second.ensemble
    assert first.cv_score == second.cv_score
    assert len(set(_board(first)["model"])) >= 3
    ordered = sorted(spans)
    assert len(ordered) == 10
    overlaps = sum(1 for a, b in itertools.pairwise(ordered) if b[0] < a[1])
    assert overlaps >= 3, ordered


def test_trials_on_both_target_transforms_replay_the_same_leaderboard_in_parallel(
    german, ws
) -> None:
    """A skewed positive regression target: each trial has its own target transform, chosen
    from the trials told so far (the enqueued ones) or sampled, and two parallel runs of the
    same seed and trial budget still give the same leaderboard and the same model."""
    runs = [
        _replayable(
            german, ws, target="credit_amount", models=["lgbm", "linear"], max_trials=8, seed=3
        )
        for _ in range(2)
    ]
    first, second = runs
    pd.testing.assert_frame_equal(_board(first), _board(second))
    assert set(first.leaderboard["target_transform"].dropna()) >= {"none", "log1p"}
    assert first.ensemble == second.ensemble and first.cv_score == second.cv_score
    rows = german.drop(columns=["credit_amount"]).iloc[:30]
    np.testing.assert_array_equal(first.model.predict(rows), second.model.predict(rows))


class _SlowPredictions:
    """Stands in for the ``time`` module in ``_search``: the real clock, plus ``step``
    seconds each time a fold model predicts (what a starved process measures: on a busy
    machine a one-row call can wait a whole scheduling period)."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.offset = 0.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def jump(self) -> None:
        with self.lock:
            self.offset += self.step

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Be ``_search``'s clock, moved on by ``step`` at each fold model's prediction."""
        from forgeml.train import _search

        predict = _search.raw_predict

        def slow_predict(*args: Any, **kwargs: Any) -> Any:
            self.jump()
            return predict(*args, **kwargs)

        monkeypatch.setattr(_search, "time", self)
        monkeypatch.setattr(_search, "raw_predict", slow_predict)


def test_prediction_times_do_not_change_the_same_seed_leaderboard(german, ws, monkeypatch) -> None:
    """With a trial budget only the time budget's end reads the clock: fold models whose
    predictions time as seconds each, and candidates whose latencies time 1,000 times
    slower (the time kept for the held-out evaluation, estimated from them, would then
    exceed the whole budget), give the same leaderboard and model."""
    from forgeml.train import _api

    def run() -> object:  # the time budget far from binding: the slow clock runs ~80 s ahead
        return _replayable(
            german, ws, target="class", models=["lgbm", "linear"], max_trials=6, seed=7
        )

    first = run()
    clock = _SlowPredictions(2.0)
    measure = _api.measure_latency

    def slow_latency(*args, **kwargs):
        return {
            k: v * 1000 if k.endswith("_ms") else v for k, v in measure(*args, **kwargs).items()
        }

    clock.install(monkeypatch)
    monkeypatch.setattr(_api, "measure_latency", slow_latency)
    second = run()
    assert clock.offset > 40.0  # the predictions did time as slow
    pd.testing.assert_frame_equal(_board(first), _board(second))
    assert first.ensemble == second.ensemble and first.cv_score == second.cv_score
    assert "stack" in set(first.leaderboard["model"])
    assert not any("time budget was reached" in note for note in second.notes)
    rows = german.drop(columns=["class"]).iloc[:30]
    np.testing.assert_array_equal(first.model.predict(rows), second.model.predict(rows))


def test_a_trial_budget_cut_by_the_time_budget_says_so(german, ws, monkeypatch) -> None:
    """The deadline still stops the deterministic mode's trials, and a note says the
    leaderboard then depends on the run."""
    # past the search's deadline within a trial's first fold
    _SlowPredictions(400.0).install(monkeypatch)
    result = _replayable(
        german,
        ws,
        target="class",
        models=["linear"],
        max_trials=6,
        seed=7,
        parallel_trials=1,
        n_jobs=1,
    )
    assert sum(result.n_trials.values()) < 6
    assert any("time budget was reached before the 6 trials ended" in n for n in result.notes)
