"""Bagged members and the second stacking level, on real tables.

That a bagged and stacked training ends within its budget (+10%) is measured in
benchmarks/budgets.py (the ``bagging`` rows), not here: tests assert behaviour, not the clock.
"""

from __future__ import annotations

import pickle
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from forgeml._json import loads
from forgeml.errors import InputError
from forgeml.train import TrainConfig, train
from forgeml.train._model import FoldBag, StackedBag, TrainedModel
from forgeml.train._search import Problem, TrialRecord, evaluate_config
from forgeml.train._stacking import fit_level2


def _problem(frame: pd.DataFrame, target: str, y: np.ndarray | None = None) -> Problem:
    from forgeml.train._api import _encode_target  # the training's own encoding
    from forgeml.train._metrics import get_metric
    from forgeml.train._task import infer_column_kinds
    from forgeml.train._validation import make_folds

    X = frame.drop(columns=[target]).reset_index(drop=True)
    if y is None:
        y, _ = _encode_target(frame[target].reset_index(drop=True), "binary", [])
    return Problem(
        X=X,
        y=y,
        kinds=infer_column_kinds(X, None),
        task="binary",
        n_classes=2,
        metric=get_metric("roc_auc", "binary"),
        folds=make_folds(len(y), y, n_folds=5, seed=0, time_ordered=False),
        seed=0,
        n_jobs=1,
        time_ordered=False,
        imbalanced=False,
    )


# a deterministic training on german credit in which the second level is always tried
_STACKED = {
    "target": "class",
    "models": ["lgbm", "xgb"],
    "max_trials": 4,
    "time_budget": 300,
    "n_jobs": 1,
    "seed": 0,
}


@pytest.fixture(scope="module")
def stacked(german, tmp_path_factory):
    """A deterministic training on german credit: the second level is always tried there."""
    from forgeml.config import Settings
    from forgeml.store import Workspace

    with Workspace(Settings(home=tmp_path_factory.mktemp("ws"))) as ws:
        return train(german, workspace=ws, **_STACKED)


@pytest.fixture(scope="module")
def stacked_model(german):
    """A ``TrainedModel`` whose one member is a second level over bagged LightGBM and
    XGBoost members, fitted on german credit."""
    from forgeml.train._zoo import FAMILIES

    problem = _problem(german, "class")
    level1 = []
    for number, family in enumerate(["lgbm", "xgb"]):
        start = FAMILIES[family].start("binary", False, len(problem.y))
        record = TrialRecord(number, family, dict(start))
        level1.append(evaluate_config(problem, record, deadline=float("inf"), cost_aware=False))
    level = fit_level2(problem, level1, level1[:1], deadline=float("inf"))
    assert level is not None
    stack = StackedBag(
        inputs=[FoldBag(pipelines=r.fold_models, task="binary") for r in level.inputs],
        columns=level.columns,
        members=[FoldBag(pipelines=r.fold_models, task="binary") for r in level.models],
        weights=[1.0],
        task="binary",
    )
    return TrainedModel(
        members=[stack],
        weights=[1.0],
        task="binary",
        feature_columns=list(problem.X.columns),
        classes=["bad", "good"],
        threshold=0.5,
        families=["stack(lgbm)"],
    )


def test_members_of_boosted_families_are_bags_of_their_fold_models(stacked):
    member = stacked.model.members[0]
    if isinstance(member, StackedBag):
        bags = list(member.inputs) + list(member.members)
    else:
        bags = list(stacked.model.members)
    assert bags and all(isinstance(b, FoldBag) for b in bags)
    assert {len(b.pipelines) for b in bags} == {5}  # 800 training rows: five folds, no refit
    assert any("second stacking level" in note for note in stacked.notes)


def test_the_second_level_is_scored_out_of_fold_and_chosen_on_that_score(stacked):
    board = stacked.leaderboard
    rows = board[board["model"] == "stack"]
    assert len(rows) == 1
    row = rows.iloc[0]
    params = loads(row["params"])
    assert params["inputs"] and params["level2"]
    assert {name.split("#")[0] for name in params["level2"]} <= {"lgbm", "xgb"}
    level1 = float(board.loc[board["model"] != "stack", "roc_auc"].max())
    if isinstance(stacked.model.members[0], StackedBag):
        assert stacked.cv_score == pytest.approx(float(row["roc_auc"]))
        assert float(row["roc_auc"]) > level1
        assert stacked.ensemble and all(e["level"] == 2 for e in stacked.ensemble)
    else:
        assert float(row["roc_auc"]) <= level1 + 1e-9
        assert any("second stacking level not kept" in note for note in stacked.notes)


def test_a_stacked_model_predicts_the_same_compiled_and_through_frames(stacked_model, german):
    model = stacked_model
    rows = german.drop(columns=["class"]).sample(40, random_state=1).reset_index(drop=True)
    small = model.predict_proba(rows)  # compiled (up to 100 rows)
    assert model._compiled() is not None  # every member runs on arrays
    frame = model._combined(pd.concat([rows] * 3, ignore_index=True))  # the frame path
    frame = frame / frame.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(small, frame[:40], rtol=1e-9, atol=1e-12)
    served = model.compile_for_serving()
    labels, proba = served.predict_both({c: rows[c].tolist() for c in rows.columns}, len(rows))
    np.testing.assert_allclose(proba, small, rtol=1e-9, atol=1e-12)
    assert list(labels) == list(model.predict(rows))


def test_a_stacked_model_round_trips_through_skops_without_pickle(stacked_model, german, tmp_path):
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump(stacked_model, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert "forgeml.train._model.StackedBag" in untrusted
    loaded = sio.load(path, trusted=untrusted)
    rows = german.drop(columns=["class"]).head(150)
    expected = stacked_model.predict_proba(rows)
    np.testing.assert_allclose(loaded.predict_proba(rows), expected, rtol=1e-12)


def test_level_two_out_of_fold_predictions_never_saw_their_rows_labels(adult_sample):
    """On a target with no signal, an honest out-of-fold score is at chance; a level 2
    fitted on level-1 predictions that saw their own rows' labels would score far above it."""
    from forgeml.train._api import _encode_target
    from forgeml.train._metrics import get_metric

    rng = np.random.default_rng(0)
    frame = adult_sample.head(2000).reset_index(drop=True)
    y, _ = _encode_target(pd.Series(rng.permutation(frame["income"].to_numpy())), "binary", [])
    problem = _problem(frame, "income", y)
    # deep, unregularised level-1 trees: their in-sample predictions memorise the labels
    params = {"lgbm.num_leaves": 255, "lgbm.min_child_samples": 1, "lgbm.learning_rate": 0.3}
    level1 = evaluate_config(
        problem, TrialRecord(0, "lgbm", dict(params)), deadline=float("inf"), cost_aware=False
    )
    assert level1.state == "complete" and abs(level1.score - 0.5) < 0.05
    level = fit_level2(problem, [level1], [level1], deadline=float("inf"))
    assert level is not None
    assert abs(level.models[0].score - 0.5) < 0.05
    # the bag's own in-sample predictions do carry the labels: what level 2 must not train on
    bag = FoldBag(pipelines=level1.fold_models, task="binary")
    in_sample = get_metric("roc_auc", "binary").score(y, bag.predict_proba(problem.X))
    assert in_sample > 0.75


def test_without_bagging_members_are_refitted_on_all_rows(german, ws):
    result = train(
        german,
        target="class",
        models=["lgbm", "xgb"],
        max_trials=3,
        time_budget=300,
        n_jobs=1,
        workspace=ws,
        bagging=False,
    )
    assert not any(isinstance(m, FoldBag | StackedBag) for m in result.model.members)
    assert "stack" not in set(result.leaderboard["model"])


def test_time_ordered_folds_refit_instead_of_bagging(german, ws):
    frame = german.assign(when=np.arange(len(german)))
    result = train(
        frame,
        target="class",
        models=["lgbm"],
        max_trials=2,
        time_budget=300,
        n_jobs=1,
        time_column="when",
        workspace=ws,
    )
    assert not any(isinstance(m, FoldBag | StackedBag) for m in result.model.members)


def test_a_short_budget_on_a_real_table_returns_a_bagged_model(dataset, ws):
    bank = pd.read_csv(dataset("bank-additional-full.csv")).drop(columns=["duration"])
    result = train(bank.sample(n=6000, random_state=0), target="y", time_budget=6, workspace=ws)
    assert result.model.predict_proba(bank.head(5)).shape == (5, 2)
    assert result.test_metrics["roc_auc"] > 0.7
    for member, family in zip(result.model.members, result.model.families, strict=True):
        if family in ("lgbm", "xgb") or family.startswith("stack("):
            assert isinstance(member, FoldBag | StackedBag)


def test_bagging_takes_a_boolean():
    with pytest.raises(InputError, match=r"TrainConfig\.bagging"):
        TrainConfig(bagging="sometimes")
    assert TrainConfig.from_json(TrainConfig(bagging=False).to_json()).bagging is False


def _timed(number: int, family: str, loss: float, fit: float, predict: float) -> TrialRecord:
    """A complete trial of five folds, each fitted in ``fit`` seconds and predicting its
    validation fold in ``predict`` seconds (nothing is fitted)."""
    return TrialRecord(
        number,
        family,
        {},
        state="complete",
        loss=loss,
        fit_seconds=[fit] * 5,
        predict_seconds=[predict] * 5,
    )


def test_the_second_levels_estimate_is_its_level1_folds_scaled_by_a_measured_probe():
    from forgeml.train._stacking import _COST_FACTOR, _PROBE_MARGIN, Level2Probe, stack_estimate

    lgbm, xgb = _timed(0, "lgbm", 0.1, 2.0, 0.2), _timed(1, "xgb", 0.2, 4.0, 0.1)
    ranked = [lgbm, _timed(2, "linear", 0.15, 9.0, 0.1), xgb]  # linear is refitted, not bagged
    # before a probe: the level-1 fold fits of the configurations level 2 refits, plus a share
    assert stack_estimate(ranked) == pytest.approx(_COST_FACTOR * (5 * 2.0 + 5 * 4.0))
    # a level-2 LightGBM fold took a fifth of its level-1 original's fold (fit and prediction)
    probe = Level2Probe("lgbm", 0, 2.2, 0.44, level1_predict_seconds=0.2, predict_seconds=0.05)
    assert probe.ratio == pytest.approx(0.2) and probe.predict_ratio == pytest.approx(0.25)
    probed = stack_estimate(ranked, {"lgbm": probe})
    assert probed == pytest.approx(_PROBE_MARGIN * 0.2 * 5 * 2.2 + _COST_FACTOR * 5 * 4.0)
    # the ratio carries over to a later leader of the family (its own level-1 folds scaled)
    leader = _timed(3, "lgbm", 0.05, 6.0, 0.4)
    assert stack_estimate([leader, *ranked], {"lgbm": probe}) == pytest.approx(
        _PROBE_MARGIN * 0.2 * 5 * 6.4 + _COST_FACTOR * 5 * 4.0
    )
    # no bagged family leads: no second level, nothing to reserve
    assert stack_estimate([_timed(4, "linear", 0.1, 1.0, 0.1)]) == 0.0


def test_the_stacked_models_evaluation_reads_the_level2_bags_at_their_probed_speed():
    from forgeml.train._api import _stacked_finish
    from forgeml.train._stacking import Level2Probe

    lgbm, xgb = _timed(0, "lgbm", 0.1, 2.0, 0.2), _timed(1, "xgb", 0.2, 4.0, 0.1)
    cost = {0: 3.0, 1: 5.0}.__getitem__

    def finish(record: TrialRecord) -> float:
        return cost(record.number)

    # before both families are probed: about as long again as the input bags
    assert _stacked_finish([lgbm, xgb], [lgbm, xgb], finish, None) == pytest.approx(16.0)
    half = Level2Probe("lgbm", 0, 2.2, 0.44, level1_predict_seconds=0.2, predict_seconds=0.1)
    assert _stacked_finish([lgbm, xgb], [lgbm, xgb], finish, {"lgbm": half}) == 16.0
    tenth = Level2Probe("xgb", 1, 4.1, 0.41, level1_predict_seconds=0.1, predict_seconds=0.01)
    probes = {"lgbm": half, "xgb": tenth}
    expected = 8.0 + 0.5 * 3.0 + 0.1 * 5.0
    assert _stacked_finish([lgbm, xgb], [lgbm, xgb], finish, probes) == pytest.approx(expected)


def test_a_probe_fits_one_level2_fold_and_compares_it_with_its_level1_original(german):
    from forgeml.train._stacking import level2_problem, probe_level2
    from forgeml.train._zoo import FAMILIES

    problem = _problem(german, "class")
    start = FAMILIES["lgbm"].start("binary", False, len(problem.y))
    level1 = evaluate_config(
        problem, TrialRecord(0, "lgbm", dict(start)), deadline=float("inf"), cost_aware=False
    )
    assert level1.state == "complete"
    probe = probe_level2(problem, [level1], level1, deadline=float("inf"))
    assert probe is not None and (probe.family, probe.number) == ("lgbm", 0)
    folds = len(problem.folds)
    mean_fold = (sum(level1.fit_seconds) + sum(level1.predict_seconds)) / folds
    assert probe.level1_seconds == pytest.approx(mean_fold)
    assert probe.level1_predict_seconds == pytest.approx(sum(level1.predict_seconds) / folds)
    assert 0.0 < probe.predict_seconds < probe.seconds
    # it fitted the problem level 2 fits: the raw columns and the level-1 predictions
    level2, columns = level2_problem(problem, [level1])
    assert list(level2.X.columns) == [*problem.X.columns, *columns] and len(columns) == 1
    # past its deadline, a probe is cut and measures nothing
    assert probe_level2(problem, [level1], level1, deadline=0.0) is None


def test_a_probe_keeps_its_folds_predictions_which_judge_whether_level2_is_worth_its_time():
    from forgeml.train._api import _level2_verdict
    from forgeml.train._stacking import Level2Probe

    rng = np.random.default_rng(0)
    rows = 500
    signal = rng.normal(size=rows)
    y = (signal + rng.normal(size=rows) > 0).astype(int)
    problem = _problem(pd.DataFrame({"a": signal, "class": y}), "class", y=y)

    def proba(score: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-score))
        return np.column_stack([1 - p, p])

    level1 = [
        TrialRecord(n, "lgbm", {}, state="complete", loss=0.0, oof=proba(signal + noise))
        for n, noise in enumerate([rng.normal(size=rows), rng.normal(size=rows)])
    ]
    fold = problem.folds.splits[0][1]

    def probe(score: np.ndarray) -> Level2Probe:
        return Level2Probe("lgbm", 0, 1.0, 0.5, 0.1, 0.05, prediction=proba(score[fold]))

    # a level-2 model that ranks the fold's rows no better than chance: not worth its time
    verdict = _level2_verdict(problem, level1, {"lgbm": probe(rng.normal(size=rows))})
    assert verdict is not None and verdict.startswith("no second stacking level: on the first")
    assert f"({len(fold):,} rows, out of fold)" in verdict
    # one that reads the signal itself beats the noisy level-1 blend: level 2 is tried
    assert _level2_verdict(problem, level1, {"lgbm": probe(3 * signal)}) is None
    # nothing probed, or a probe without predictions: nothing to judge by
    assert _level2_verdict(problem, level1, {}) is None
    bare = Level2Probe("lgbm", 0, 1.0, 0.5, 0.1, 0.05)
    assert _level2_verdict(problem, level1, {"lgbm": bare}) is None


def test_a_real_probe_predicts_its_validation_fold(german):
    from forgeml.train._stacking import probe_level2
    from forgeml.train._zoo import FAMILIES

    problem = _problem(german, "class")
    start = FAMILIES["lgbm"].start("binary", False, len(problem.y))
    level1 = evaluate_config(
        problem, TrialRecord(0, "lgbm", dict(start)), deadline=float("inf"), cost_aware=False
    )
    probe = probe_level2(problem, [level1], level1, deadline=float("inf"))
    assert probe is not None and probe.prediction is not None
    assert probe.prediction.shape == (len(problem.folds.splits[0][1]), 2)


def test_the_returned_model_does_not_build_a_members_compiled_form_again(german, ws, monkeypatch):
    """A bag compiled for its latency measurement keeps that form: the returned model (and
    its held-out evaluation) calls it without compiling any of its fold models again."""
    from forgeml.train import _compiled

    builds: Counter[int] = Counter()
    build = _compiled._member_call

    def counted(member: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(member, "steps", None):  # a fold model (a pipeline), compiled
            builds[id(member)] += 1
        return build(member, *args, **kwargs)

    monkeypatch.setattr(_compiled, "_member_call", counted)
    result = train(german, workspace=ws, **_STACKED)
    result.model.predict_proba(german.head(1))
    bags = [b for m in result.model.members for b in [*getattr(m, "inputs", []), m]]
    pipelines = [p for b in bags if isinstance(b, FoldBag) for p in b.pipelines]
    measured = [p for p in pipelines if builds[id(p)]]
    assert measured  # the members' bags were compiled when they were timed
    assert all(builds[id(p)] == 1 for p in pipelines), sorted(builds.values())
    # what was kept is a cache of closures: never saved
    assert all(_compiled.KEPT_CALL not in b.__getstate__() for b in bags)
    assert pickle.loads(pickle.dumps(result.model)).predict_proba(german.head(2)).shape == (2, 2)
