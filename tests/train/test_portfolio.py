"""The zero-shot portfolio: the shipped file is valid, and the search tries it first."""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings

import pandas as pd
import pytest

import forgeml as fm
from forgeml._json import loads
from forgeml.errors import InputError
from forgeml.train._portfolio import (
    PORTFOLIO_FILE,
    load_portfolio,
    parse_portfolio,
    portfolio_configs,
    size_class,
)
from forgeml.train._zoo import FAMILIES

TASKS = ("binary", "multiclass", "regression")


def test_the_shipped_portfolio_loads_with_its_provenance():
    portfolio = load_portfolio()
    for task in TASKS:
        for rows in (300, 10_000, 200_000):
            assert portfolio.for_problem(task, rows), (task, rows)
    provenance = portfolio.provenance
    assert provenance["command"].startswith("python tools/build_portfolio.py")
    assert provenance["built"] and provenance["seed"] is not None
    tables = {t["name"] for t in provenance["tables"]}
    assert len(tables) >= 20
    # the tables the AutoML benchmark scores were not used to build it
    assert "adult" in provenance["held_back"]
    assert not tables & set(provenance["held_back"])
    assert {t["task"] for t in provenance["tables"]} == set(TASKS)


def test_every_configuration_is_inside_its_family_space():
    """Independent of the loader's own check: Optuna's FixedTrial warns on a value outside a
    distribution, and every parameter of the space must be given."""
    import optuna

    document = loads(PORTFOLIO_FILE.read_bytes())
    for task, by_size in document["portfolios"].items():
        for members in by_size.values():
            for member in members:
                family = member["model"]
                weighted = task != "regression"
                fixed = {f"{family}.{k}": v for k, v in member["params"].items()}
                if weighted and "class_weight" not in member["params"]:
                    fixed[f"{family}.class_weight"] = "none"
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    sampled = FAMILIES[family].space(optuna.trial.FixedTrial(fixed), task, weighted)
                assert sampled == {k: fixed[k] for k in sampled}
                assert set(sampled) >= {k for k in fixed if not k.endswith("class_weight")}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda m: m.update(model="nope"), ["portfolio.portfolios.binary.small[0].model", "nope"]),
        (
            lambda m: m["params"].update(num_leaves=100_000),
            ["small[0].params.num_leaves", "4..256", "100000"],
        ),
        (lambda m: m["params"].update(depth_of_sea=3), ["depth_of_sea", "not in the lgbm space"]),
    ],
)
def test_a_bad_portfolio_names_the_entry(change, words):
    document = loads(PORTFOLIO_FILE.read_bytes())
    bad = copy.deepcopy(document)
    lgbm = {
        "model": "lgbm",
        "params": {k: v for k, v in _lgbm_config().items()},
    }
    bad["portfolios"]["binary"]["small"] = [lgbm]
    change(lgbm)
    with pytest.raises(InputError) as caught:
        parse_portfolio(bad)
    for word in words:
        assert word in caught.value.message


def _lgbm_config() -> dict:
    return _unprefixed(FAMILIES["lgbm"].start("binary", False, 1000))


def test_the_configurations_respect_the_families_asked_for():
    every = portfolio_configs("binary", 2000, list(FAMILIES), 100)
    only = portfolio_configs("binary", 2000, ["linear", "rf"], 100)
    assert only == [c for c in every if c["model"] in ("linear", "rf")]
    assert portfolio_configs("binary", 2000, list(FAMILIES), 0) == []
    assert len(portfolio_configs("binary", 2000, list(FAMILIES), 2)) == min(2, len(every))
    assert size_class(4999) == "small" and size_class(5000) == "medium"
    assert size_class(60_000) == "large"


def test_a_negative_portfolio_size_is_refused():
    with pytest.raises(InputError) as caught:
        fm.TrainConfig(target="y", portfolio=-1)
    assert "portfolio" in caught.value.message


@pytest.fixture(scope="module")
def electricity(shared_dataset) -> pd.DataFrame:
    return pd.read_csv(shared_dataset("electricity-elec2.csv"), nrows=1000).drop(columns="date")


def _train(frame, workspace, **options):
    return fm.train(
        frame,
        target="class",
        time_budget=120,
        n_jobs=1,
        seed=3,
        workspace=workspace,
        **options,
    )


def test_the_search_tries_the_starting_points_then_the_portfolio(electricity, sqlite_workspace):
    families = ("lgbm", "linear", "xgb")
    starts = [
        {"model": f, "params": _unprefixed(FAMILIES[f].start("binary", False, 800))}
        for f in sorted(families, key=lambda f: FAMILIES[f].cost)
    ]
    # the training rows after the 20% hold-out decide the size class
    portfolio = portfolio_configs("binary", 800, families, 3)
    assert portfolio, "the binary portfolio has no lgbm, linear or xgb configuration"
    expected = starts + [c for c in portfolio if c not in starts]
    result = _train(
        electricity, sqlite_workspace, models=families, max_trials=len(expected), portfolio=3
    )
    board = result.leaderboard
    # one row per trial (ensemble and stacking rows have no trial number)
    trials = board[board["trial"].notna() & board["model"].isin(families)]
    trials = trials.drop_duplicates("trial")
    # the first five trials are never pruned
    assert set(range(min(5, len(expected)))) <= {int(t) for t in trials["trial"]}
    for _, row in trials.iterrows():
        config = expected[int(row["trial"])]
        assert row["model"] == config["model"]
        params = json.loads(row["params"])
        assert params == pytest.approx(config["params"]), (row["trial"], config["model"])
    assert any("zero-shot portfolio" in note for note in result.notes)


def _unprefixed(params: dict) -> dict:
    return {k.split(".", 1)[1]: v for k, v in params.items()}


def test_without_the_portfolio_the_first_trial_is_the_starting_point(electricity, sqlite_workspace):
    result = _train(electricity, sqlite_workspace, models=("lgbm",), max_trials=1, portfolio=0)
    params = json.loads(result.leaderboard.iloc[0]["params"])
    start = _lgbm_config()
    assert params == pytest.approx({k: start[k] for k in params})
    assert not any("zero-shot portfolio" in note for note in result.notes)


def test_the_same_seed_gives_the_same_leaderboard(electricity, sqlite_workspace):
    runs = [
        _train(electricity, sqlite_workspace, models=("lgbm", "linear"), max_trials=3)
        for _ in range(2)
    ]
    first, second = (r.leaderboard[["trial", "model", "params", "roc_auc"]] for r in runs)
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))


def test_a_negative_portfolio_on_the_command_line_exits_2_with_one_line(tmp_path, shared_dataset):
    import os
    import subprocess
    import sys

    data = str(shared_dataset("german-credit.csv"))
    args = ["train", data, "--target", "class", "--portfolio", "-1"]
    result = subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(tmp_path / "ws"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "portfolio" in result.stderr and "-1" in result.stderr


def test_an_entry_that_was_a_starting_point_is_left_to_the_starting_point():
    """The small regression list holds starting points as they were at build time (kind
    ``start``): the search tries each family's starting point first anyway, so they are not
    returned, and the other entries keep their order."""
    first = load_portfolio().for_problem("regression", 800)[:8]
    starts = [c for c in first if c["kind"] == "start"]
    assert any(c["model"] == "catboost" for c in starts)
    chosen = portfolio_configs("regression", 800, list(FAMILIES), 8)
    assert chosen == [
        {"model": c["model"], "params": c["params"]} for c in first if c["kind"] != "start"
    ]


def test_a_changed_starting_point_is_not_followed_by_the_old_one(
    german, sqlite_workspace, monkeypatch
):
    family = FAMILIES["catboost"]
    old = family.start("regression", False, 240)

    def changed(task: str, imbalanced: bool, n_rows: int) -> dict:
        return {**family.start(task, imbalanced, n_rows), "catboost.learning_rate": 0.05}

    monkeypatch.setitem(FAMILIES, "catboost", dataclasses.replace(family, start=changed))
    frame = german.sample(300, random_state=0).reset_index(drop=True)
    result = fm.train(
        frame,
        target="credit_amount",
        task="regression",
        models=("catboost",),
        max_trials=2,
        max_latency_ms=None,
        time_budget=600,
        n_jobs=1,
        workspace=sqlite_workspace,
    )
    board = result.leaderboard
    trials = board[board["trial"].notna()].sort_values("trial")
    rates = [json.loads(p)["learning_rate"] for p in trials["params"]]
    # the changed starting point, then the first portfolio entry that was not a starting
    # point; never the old starting point the portfolio recorded
    assert len(rates) == 2 and rates[0] == 0.05
    assert old["catboost.learning_rate"] not in rates
