"""Regression and metric care: the log1p target transform chosen by validation, objectives and
early stopping matched to the metric."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from forgeml.errors import InputError
from forgeml.train import train
from forgeml.train._metrics import get_metric
from forgeml.train._preprocess import TabularEncoder
from forgeml.train._search import Problem, TrialRecord, evaluate_config
from forgeml.train._target import (
    fit_shift,
    in_target_units,
    inverse_transform,
    skewed_positive,
)
from forgeml.train._task import infer_column_kinds
from forgeml.train._validation import make_folds
from forgeml.train._zoo import FAMILIES, fit_estimator


@pytest.fixture(scope="module")
def bike(shared_dataset) -> pd.DataFrame:
    frame = pd.read_csv(shared_dataset("bike-sharing-hour.csv"))
    # casual + registered == cnt: a leak; instant and dteday are row order and the date
    frame = frame.drop(columns=["casual", "registered", "instant", "dteday"])
    return frame.sample(n=3000, random_state=0).reset_index(drop=True)


def test_skewed_positive_targets_are_recognised(bike, shared_dataset):
    assert skewed_positive(bike["cnt"].to_numpy())  # hourly counts: skewness about 1.3
    california = pd.read_csv(shared_dataset("california-housing.csv"))
    assert skewed_positive(california["median_house_value"].to_numpy())
    wine = load_wine(as_frame=True).frame
    assert not skewed_positive(wine["alcohol"].to_numpy())  # about symmetric
    assert not skewed_positive(bike["temp"].to_numpy() - 0.5)  # negative values


def _problem(frame: pd.DataFrame, target: str, metric: str) -> Problem:
    X = frame.drop(columns=[target])
    y = frame[target].to_numpy(dtype=float)
    return Problem(
        X=X,
        y=y,
        kinds=infer_column_kinds(X, None),
        task="regression",
        n_classes=0,
        metric=get_metric(metric, "regression"),
        folds=make_folds(len(y), None, n_folds=5, seed=0, time_ordered=False),
        seed=0,
        n_jobs=1,
        time_ordered=False,
        imbalanced=False,
    )


def _log1p_trial(problem: Problem) -> TrialRecord:
    start = FAMILIES["lgbm"].start("regression", False, len(problem.y))
    return evaluate_config(
        problem,
        TrialRecord(number=0, family="lgbm", params=dict(start), transform="log1p"),
        deadline=time.monotonic() + 600,
        cost_aware=False,
    )


def test_a_log1p_trial_is_scored_and_kept_in_the_targets_units(bike):
    problem = _problem(bike, "cnt", "mae")
    record = _log1p_trial(problem)
    assert record.state == "complete" and record.oof is not None
    covered = problem.folds.covered
    # bicycles per hour (a log-scale MAE would be below 1), out of fold with its own shift
    assert 10 < record.score < 100
    assert record.score == pytest.approx(
        get_metric("mae", "regression").score(problem.y[covered], record.oof[covered])
    )
    assert abs(record.oof.mean() - problem.y.mean()) < 0.2 * problem.y.mean()
    # its folds' losses too, in the target's units
    assert all(10 < s < 100 for s in record.fold_scores)
    # the metric of log-scale predictions read in the target's units
    transformed = in_target_units(problem.metric, "log1p")
    logs = np.log1p(problem.y)
    assert transformed.score(logs, logs + np.log(1.1)) == pytest.approx(
        float(np.mean(np.abs(problem.y * 0.1 + 0.1)))
    )
    # for RMSE, after the log-scale shift that suits it best on the rows scored
    rmse = get_metric("rmse", "regression")
    transformed = in_target_units(rmse, "log1p")
    noisy = logs + np.random.default_rng(0).normal(0.0, 0.3, len(logs))
    shift = fit_shift(rmse, problem.y, noisy)
    assert transformed.score(logs, noisy) == pytest.approx(
        float(np.sqrt(np.mean((problem.y - np.expm1(noisy + shift)) ** 2)))
    )
    # a constant error on the log scale is that shift: the metric reads none of it
    assert transformed.score(logs, logs + np.log(1.1)) < 1e-6


def test_the_log1p_shift_fitted_out_of_fold_lowers_the_rmse_on_other_rows(bike):
    """expm1 of a log-scale model estimates a median, below the mean of skewed counts: the
    shift fitted on four folds' out-of-fold rows raises the predictions and lowers the RMSE
    on the fifth fold's rows."""
    problem = _problem(bike, "cnt", "rmse")
    record = _log1p_trial(problem)
    assert record.state == "complete" and record.oof is not None
    assert 0.0 < record.shift < 0.5  # fitted on all its out-of-fold rows
    logs = np.log1p(record.oof) - record.shift  # the fold models' own outputs
    y = bike["cnt"].to_numpy(dtype=float)
    (_, held), *rest = problem.folds.splits
    fitted_on = np.concatenate([val for _, val in rest])
    rmse = get_metric("rmse", "regression")
    shift = fit_shift(rmse, y[fitted_on], logs[fitted_on])
    assert 0.0 < shift < 0.5
    plain = rmse.score(y[held], inverse_transform(logs[held], "log1p"))
    shifted = rmse.score(y[held], inverse_transform(logs[held], "log1p", shift))
    assert shifted < plain
    # MAE suits a median: its shift moves the predictions less than the RMSE's
    assert abs(fit_shift(get_metric("mae", "regression"), y, logs)) < shift


def test_a_log1p_model_predicts_in_the_targets_units_and_records_it(bike, tmp_path):
    from forgeml.config import Settings
    from forgeml.store import Workspace

    ws = Workspace(Settings(home=tmp_path / "ws"))
    try:
        result = train(
            bike, target="cnt", models=("lgbm",), time_budget=120, max_trials=2,
            target_transform="log1p", workspace=ws,
        )  # fmt: skip
        targets = result.model.member_targets
        assert targets and all(t == "log1p" for t, _ in targets)
        assert set(result.leaderboard["target_transform"]) == {"log1p"}
        params = ws.runs.get_run(result.run_id).params
        assert params["target_transform"] == "log1p"
        # RMSE (the default metric) wants the mean, above expm1's median: a positive shift
        assert all(0.0 < s < 0.5 for _, s in targets)
        assert any(n.startswith("log1p target: ") for n in result.notes)
    finally:
        ws.close()
    X = bike.drop(columns=["cnt"])
    pred = result.model.predict(X)
    # counts, not logs of counts: the mean prediction is near the mean count (about 190)
    assert abs(pred.mean() - bike["cnt"].mean()) < 0.15 * bike["cnt"].mean()
    assert result.test_metrics["rmse"] < 0.5 * result.baseline_metrics["rmse"]
    compiled = result.model.compile_for_serving()
    served, _ = compiled.predict_both({c: X[c].tolist() for c in X.columns}, len(X))
    np.testing.assert_allclose(served, pred, rtol=1e-12, atol=1e-9)


def test_auto_fits_trials_on_both_targets_and_records_each_ones(bike):
    """A skewed positive target: the first starting point is tried on the target and on its
    log, the other trials on the better one's or as sampled, each shown with its own."""
    result = train(bike, target="cnt", models=("lgbm", "xgb"), time_budget=120, max_trials=4)
    assert any(n.startswith("target transform per trial") for n in result.notes)
    board = result.leaderboard
    trials = board[board["trial"].notna()]
    assert set(trials["target_transform"]) == {"none", "log1p"}
    first = trials.set_index("trial").loc[[0, 1], "target_transform"]
    assert sorted(first) == ["log1p", "none"]
    # the paired starting points: both scored in bicycles per hour
    assert (trials.set_index("trial").loc[[0, 1], "rmse"] > 10).all()
    X = bike.drop(columns=["cnt"])
    pred = result.model.predict(X.iloc[:50])
    assert abs(pred.mean() - bike["cnt"].iloc[:50].mean()) < 0.5 * bike["cnt"].mean()


def test_target_transform_bad_values_are_refused_naming_the_field(bike):
    with pytest.raises(InputError, match="target_transform"):
        train(bike, target="cnt", time_budget=5, target_transform="sqrt")
    shifted = bike.assign(cnt=bike["cnt"] - 500.0)
    with pytest.raises(InputError, match="target_transform log1p needs target values above -1"):
        train(shifted, target="cnt", time_budget=5, target_transform="log1p")


def _encoded(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    X = frame.drop(columns=[target])
    encoder = TabularEncoder(kinds=infer_column_kinds(X, None), output="native")
    y = frame[target].to_numpy(dtype=float)
    return encoder.fit_transform(X, y), y


@pytest.mark.parametrize(
    ("family", "metric", "expected"),
    [("lgbm", "mae", "l1"), ("xgb", "mae", "reg:absoluteerror"), ("hgb", "mae", "absolute_error")],
)
def test_the_objective_follows_the_metric(bike, family, metric, expected):
    X, y = _encoded(bike, "cnt")
    params = FAMILIES[family].start("regression", False, len(y))
    est = fit_estimator(
        FAMILIES[family], params, task="regression", X=X, y=y, seed=0, n_jobs=1,
        deadline=time.monotonic() + 120, rounds=20, metric=metric,
    ).estimator  # fmt: skip
    objective = est.get_params().get("loss") if family == "hgb" else est.get_params()["objective"]
    assert objective == expected
    # the default metric keeps the squared error
    est = fit_estimator(
        FAMILIES[family], params, task="regression", X=X, y=y, seed=0, n_jobs=1,
        deadline=time.monotonic() + 120, rounds=20, metric="rmse",
    ).estimator  # fmt: skip
    objective = est.get_params().get("loss") if family == "hgb" else est.get_params()["objective"]
    assert objective in (None, "squared_error", "reg:squarederror")


def test_lightgbm_stops_early_on_the_auc_for_roc_auc(german):
    X = german.drop(columns=["class"])
    encoder = TabularEncoder(kinds=infer_column_kinds(X, None), output="native")
    y = (german["class"] == "good").to_numpy(dtype=int)
    encoded = encoder.fit_transform(X, y)
    params = FAMILIES["lgbm"].start("binary", False, len(y))
    est = fit_estimator(
        FAMILIES["lgbm"], params, task="binary", X=encoded.iloc[:700], y=y[:700], seed=0,
        n_jobs=1, deadline=time.monotonic() + 120,
        eval_set=(encoded.iloc[700:], y[700:]), metric="roc_auc",
    ).estimator  # fmt: skip
    assert list(est.best_score_["valid_0"]) == ["auc"]


def test_per_class_calibration_is_kept_only_when_it_helps_out_of_fold(shared_dataset):
    from sklearn.datasets import load_digits

    from forgeml.train._calibration import apply_calibration, choose_calibration

    digits = load_digits(as_frame=True).frame
    X, y = digits.drop(columns=["target"]), digits["target"].to_numpy()
    # out-of-fold probabilities of a deliberately over-confident model (an unregularised
    # logistic regression on raw pixels)
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    proba = cross_val_predict(
        LogisticRegression(C=1e4, max_iter=300), X, y, cv=5, method="predict_proba"
    )
    log_loss = get_metric("log_loss", "multiclass")
    choice = choose_calibration(log_loss, y, proba, seed=0)
    assert choice.calibration is not None and choice.calibrated < choice.raw
    assert "cross-fitted" in choice.note() and "1,797 rows" in choice.note()
    calibrated = apply_calibration(proba, choice.calibration)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert log_loss.score(y, calibrated) < log_loss.score(y, proba)


def test_calibration_fits_on_a_sample_of_many_rows_and_stops_at_its_deadline():
    import time

    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from forgeml.train._calibration import (
        apply_calibration,
        choose_calibration,
        fit_vector_scaling,
    )

    digits = load_digits(as_frame=True).frame
    X, y = digits.drop(columns=["target"]), digits["target"].to_numpy()
    proba = cross_val_predict(
        LogisticRegression(C=1e4, max_iter=300), X, y, cv=5, method="predict_proba"
    )
    log_loss = get_metric("log_loss", "multiclass")
    # fitted on 600 of the 1,797 rows (seeded): still better on all of them, and not the fit
    # on every row
    sampled = fit_vector_scaling(proba, y, seed=0, max_rows=600)
    assert sampled == fit_vector_scaling(proba, y, seed=0, max_rows=600)
    assert sampled != fit_vector_scaling(proba, y, seed=0)
    assert log_loss.score(y, apply_calibration(proba, sampled)) < log_loss.score(y, proba)
    late = choose_calibration(log_loss, y, proba, seed=0, deadline=time.monotonic() - 1.0)
    assert late.calibration is None and late.cut_after == 0
    assert "cut at the deadline after 0 of 5 folds" in late.note()
    assert "1,797 out-of-fold rows" in late.note()


def test_a_calibrated_multiclass_model_serves_the_same_probabilities(tmp_path):
    from forgeml.train._calibration import apply_calibration

    wine = load_wine(as_frame=True).frame
    result = train(wine, target="target", models=("lgbm", "linear"), time_budget=120, max_trials=3)
    notes = [n for n in result.notes if "calibration" in n]
    assert len(notes) == 1 and "out-of-fold log_loss" in notes[0]
    X = wine.drop(columns=["target"])
    proba = result.model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    if result.model.calibration is not None:
        raw = result.model._combined(X)
        expected = apply_calibration(raw / raw.sum(axis=1, keepdims=True), result.model.calibration)
        np.testing.assert_allclose(proba, expected)
    compiled = result.model.compile_for_serving()
    _, served = compiled.predict_both({c: X[c].tolist() for c in X.columns}, len(X))
    np.testing.assert_allclose(served, proba, rtol=0, atol=1e-12)


def test_multiclass_searches_class_weights_even_when_classes_are_balanced():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for name, family in FAMILIES.items():
        if "multiclass" not in family.tasks or name == "mlp":
            continue
        trial = study.ask()
        assert f"{name}.class_weight" in family.space(trial, "multiclass", False), name
        assert family.start("multiclass", False, 1000)[f"{name}.class_weight"] == "none"
        # a balanced binary task keeps its weights as they are
        assert f"{name}.class_weight" not in family.space(study.ask(), "binary", False)


def test_early_stopping_waits_longer_at_a_slower_learning_rate():
    from forgeml.train._zoo import patience_for

    assert patience_for("lgbm", {"lgbm.learning_rate": 0.1}) == 50
    assert patience_for("xgb", {"xgb.learning_rate": 0.3}) == 50
    assert patience_for("catboost", {"catboost.learning_rate": 0.05}) == 100
    assert patience_for("hgb", {"hgb.learning_rate": 0.025}) == 200
    assert patience_for("lgbm", {"lgbm.learning_rate": 0.01}) == 200  # at most
    assert patience_for("et", {"et.n_estimators": 100}) == 50


@pytest.mark.parametrize("family", ["lgbm", "xgb"])
def test_a_slow_boosting_fit_runs_its_patience_past_the_best_round(bike, family):
    X, y = _encoded(bike, "cnt")
    from forgeml.train._zoo import patience_for

    start = FAMILIES[family].start("regression", False, len(y))
    params = {**start, f"{family}.learning_rate": 0.04}
    assert patience_for(family, params) == 125
    rng = np.random.default_rng(0)
    noise = rng.normal(size=len(y)) * 1e3  # a target early stopping ends on soon
    outcome = fit_estimator(
        FAMILIES[family], params, task="regression", X=X.iloc[:2000], y=noise[:2000], seed=0,
        n_jobs=1, deadline=time.monotonic() + 120, eval_set=(X.iloc[2000:], noise[2000:]),
        metric="rmse",
    )  # fmt: skip
    est = outcome.estimator
    # rounds run: one validation loss each; the best round (1-based) and 125 more
    history = est.evals_result_ if family == "lgbm" else est.evals_result()
    (losses,) = next(iter(history.values())).values()
    assert outcome.best_iteration < 500
    assert len(losses) == outcome.best_iteration + 125


def test_a_regression_network_learns_a_target_far_from_zero():
    """The MLP fits the standardised target and predicts in the target's units: fitted on the
    raw values (near 200,000) it ended far worse than the training mean."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4))
    y = 200_000 + 50_000 * (X[:, 0] + 0.5 * X[:, 1] ** 2) + rng.normal(size=3000) * 5_000
    params = FAMILIES["mlp"].start("regression", False, 2000)
    for rounds in (None, 30):  # early stopping, then a refit of fixed epochs
        est = fit_estimator(
            FAMILIES["mlp"], params, task="regression", X=X[:2000], y=y[:2000], seed=0,
            n_jobs=1, deadline=time.monotonic() + 120, rounds=rounds, metric="rmse",
        ).estimator  # fmt: skip
        rmse = float(np.sqrt(np.mean((est.predict(X[2000:]) - y[2000:]) ** 2)))
        assert rmse < 0.3 * float(np.std(y[2000:])), rounds
