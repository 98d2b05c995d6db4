"""A warm-started search tries the given configurations before anything else."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import forgeml as fm
from forgeml.errors import InputError


def test_the_first_trial_is_the_warm_start_configuration(shared_dataset, sqlite_workspace):
    frame = pd.read_csv(shared_dataset("electricity-elec2.csv"), nrows=3000).drop(columns="date")
    start = {
        "model": "lgbm",
        "params": {"num_leaves": 11, "learning_rate": 0.123, "min_child_samples": 17},
    }
    result = fm.train(
        frame,
        target="class",
        models=("lgbm", "linear"),
        max_trials=2,
        time_budget=60,
        n_jobs=1,
        warm_start=(start,),
        workspace=sqlite_workspace,
    )
    first = result.leaderboard.sort_values("trial").iloc[0]
    assert first["model"] == "lgbm"
    params = json.loads(first["params"])
    assert params["num_leaves"] == 11 and params["min_child_samples"] == 17
    assert params["learning_rate"] == pytest.approx(0.123)
    assert result.config.warm_start == (start,)


@pytest.mark.parametrize(
    ("warm", "words"),
    [
        ([{"model": "nope", "params": {}}], ["warm_start[0]", "nope"]),
        ([{"family": "lgbm"}], ["warm_start[0]", "'model'"]),
    ],
)
def test_a_bad_warm_start_names_the_entry(warm, words):
    with pytest.raises(InputError) as caught:
        fm.TrainConfig(target="y", warm_start=warm)
    for word in words:
        assert word in caught.value.message
