"""One validation split instead of k folds: when ``validation="auto"`` takes it, what the
split is, and a regression table large for its budget (california-housing) trained on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.train import train
from forgeml.train._validation import choose_validation, holdout_folds

from .conftest import shared


@pytest.fixture(scope="module")
def california() -> pd.DataFrame:
    return pd.read_csv(shared("california-housing.csv"))


@pytest.mark.parametrize(
    ("setting", "task", "n_rows", "budget", "time_ordered", "expected"),
    [
        ("auto", "regression", 16_512, 60, False, "holdout"),  # california at 60 s
        ("auto", "regression", 13_903, 60, False, "holdout"),  # bike-sharing at 60 s
        ("auto", "regression", 9_999, 10, False, "cv"),  # below the row floor
        ("auto", "regression", 16_512, 600, False, "cv"),  # 27 rows a second: folds fit
        ("auto", "regression", 90_000, 600, False, "holdout"),  # 150 rows a second
        ("auto", "binary", 39_073, 60, False, "cv"),  # classification keeps its folds
        ("auto", "multiclass", 39_073, 60, False, "cv"),
        ("auto", "regression", 16_512, 60, True, "cv"),  # expanding-window folds
        ("cv", "regression", 16_512, 60, False, "cv"),
        ("holdout", "binary", 800, 60, False, "holdout"),
    ],
)
def test_auto_takes_one_split_for_regression_tables_large_for_the_budget(
    setting: str, task: str, n_rows: int, budget: float, time_ordered: bool, expected: str
) -> None:
    got = choose_validation(
        setting, task=task, n_rows=n_rows, budget=budget, time_ordered=time_ordered
    )
    assert got == expected


def test_the_split_is_a_seeded_tenth_of_the_rows_at_most_2500() -> None:
    folds = holdout_folds(16_512, None, seed=0, time_ordered=False)
    assert len(folds) == 1
    ((train_pos, val_pos),) = folds.splits
    assert len(val_pos) == 1_651 and len(train_pos) == 16_512 - 1_651
    assert np.union1d(train_pos, val_pos).tolist() == list(range(16_512))
    assert np.array_equal(folds.covered, val_pos)  # the only rows scored out of fold
    again = holdout_folds(16_512, None, seed=0, time_ordered=False)
    assert np.array_equal(again.splits[0][1], val_pos)
    other = holdout_folds(16_512, None, seed=1, time_ordered=False)
    assert not np.array_equal(other.splits[0][1], val_pos)
    assert len(holdout_folds(80_000, None, seed=0, time_ordered=False).covered) == 2_500
    latest = holdout_folds(1_000, None, seed=0, time_ordered=True)
    assert latest.covered.tolist() == list(range(900, 1_000))
    y = np.array([0] * 900 + [1] * 100)
    stratified = holdout_folds(1_000, y, seed=0, time_ordered=False)
    assert int(y[stratified.covered].sum()) == 10


def test_california_trains_on_one_split_within_its_budget(california, ws) -> None:
    budget = 20
    result = train(
        california, target="median_house_value", time_budget=budget, seed=0, workspace=ws
    )
    assert result.validation == "holdout"
    assert result.n_train_rows == 16_512 and result.n_validation_rows == 1_651
    assert result.summary()["validation"] == "holdout"
    assert any(
        note.startswith("validation: the trials are scored on one split of 1,651 of the 16,512 ")
        and "validation='cv' cross-validates" in note
        for note in result.notes
    ), result.notes
    # one split has no spread over folds to show
    trials = result.leaderboard[result.leaderboard["trial"].notna()]
    assert len(trials) >= 3 and trials["cv_std"].isna().all()
    assert result.elapsed <= 1.1 * budget
    assert result.test_metrics["rmse"] < 0.6 * result.baseline_metrics["rmse"]


def test_cv_keeps_the_folds_on_the_same_table(california, ws) -> None:
    result = train(
        california,
        target="median_house_value",
        time_budget=15,
        seed=0,
        validation="cv",
        workspace=ws,
    )
    assert result.validation == "cv" and result.n_validation_rows == 16_512
    assert not any(note.startswith("validation:") for note in result.notes)


def test_same_seed_and_trial_budget_give_the_same_board_on_one_split(california, ws) -> None:
    """The deterministic mode on one split: two runs of two trials at a time (the split, the
    refits and the choice read no clock) give the same leaderboard and predictions."""
    from .test_parallel import _board, _replayable

    runs = [
        _replayable(
            california,
            ws,
            target="median_house_value",
            validation="holdout",
            models=["lgbm", "linear", "xgb"],
            max_trials=6,
            seed=0,
        )
        for _ in range(2)
    ]
    first, second = runs
    assert first.validation == "holdout" and sum(first.n_trials.values()) == 6
    pd.testing.assert_frame_equal(_board(first), _board(second))
    assert first.ensemble == second.ensemble and first.cv_score == second.cv_score
    rows = california.drop(columns=["median_house_value"]).head(500)
    np.testing.assert_array_equal(first.model.predict(rows), second.model.predict(rows))
