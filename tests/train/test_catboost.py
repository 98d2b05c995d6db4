"""CatBoost as a family: categorical columns handed over natively, the deadline, the seed, the
thread count, and storage in CatBoost's own format through the registry."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("catboost")

from forgeml import registry
from forgeml.errors import InputError
from forgeml.train import TrainConfig, train
from forgeml.train._catboost import CatBoostModel
from forgeml.train._preprocess import TabularEncoder
from forgeml.train._task import infer_column_kinds
from forgeml.train._zoo import FAMILIES, OPTIONAL, available_families, fit_estimator


def _encoded(frame: pd.DataFrame, target: str) -> tuple[TabularEncoder, pd.DataFrame, np.ndarray]:
    X = frame.drop(columns=[target])
    kinds = infer_column_kinds(X, None)
    encoder = TabularEncoder(kinds=kinds, output="native")
    _, y = np.unique(frame[target].astype(str), return_inverse=True)
    return encoder, encoder.fit_transform(X, y), y


def test_categorical_columns_go_to_catboost_as_categorical_features(german):
    encoder, encoded, y = _encoded(german, "class")
    family = FAMILIES["catboost"]
    params = family.start("binary", False, len(y))
    outcome = fit_estimator(
        family, params, task="binary", X=encoded, y=y, seed=0, n_jobs=1,
        deadline=time.monotonic() + 120, rounds=60,
    )  # fmt: skip
    model = outcome.estimator
    categorical = [c for c in encoder.code_columns_]
    assert len(categorical) >= 10  # german credit: status, purpose, housing...
    assert model.cat_columns_ == categorical
    # no one-hot: CatBoost sees one feature per encoded column, the categorical ones as such
    assert list(model.feature_names_in_) == list(encoder.feature_names_out_)
    cat_indices = model.model_.get_cat_feature_indices()
    assert [encoder.feature_names_out_[i] for i in cat_indices] == categorical
    assert model.model_.tree_count_ == 60 and outcome.best_iteration == 60
    assert model.model_.get_params()["thread_count"] == 1


def test_the_same_seed_gives_the_same_model_and_another_seed_another(german):
    _, encoded, y = _encoded(german, "class")
    family = FAMILIES["catboost"]
    params = {**family.start("binary", False, len(y)), "catboost.bagging_temperature": 1.0}

    def fit(seed: int) -> np.ndarray:
        est = fit_estimator(
            family, params, task="binary", X=encoded, y=y, seed=seed, n_jobs=1,
            deadline=time.monotonic() + 120, rounds=40,
        ).estimator  # fmt: skip
        return est.predict_proba(encoded)

    first, again, other = fit(3), fit(3), fit(4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_fit_stops_at_the_deadline(dataset):
    frame = pd.read_csv(dataset("adult.csv")).drop(columns=["split"])
    _, encoded, y = _encoded(frame, "income")
    family = FAMILIES["catboost"]
    params = {**family.start("binary", False, len(y)), "catboost.learning_rate": 0.02}
    outcome = fit_estimator(
        family, params, task="binary", X=encoded, y=y, seed=0, n_jobs=1,
        deadline=time.monotonic() + 1.0, rounds=100_000,
    )  # fmt: skip
    assert outcome.truncated
    assert 0 < outcome.estimator.model_.tree_count_ < 100_000


def test_early_stopping_keeps_the_best_round_on_the_eval_set(german):
    _, encoded, y = _encoded(german, "class")
    family = FAMILIES["catboost"]
    params = {**family.start("binary", False, len(y)), "catboost.learning_rate": 0.3}
    outcome = fit_estimator(
        family, params, task="binary", X=encoded.iloc[:700], y=y[:700], seed=0, n_jobs=1,
        deadline=time.monotonic() + 120, eval_set=(encoded.iloc[700:], y[700:]),
    )  # fmt: skip
    assert not outcome.truncated
    # a high learning rate overfits a thousand rows long before 3000 rounds
    assert outcome.best_iteration is not None and outcome.best_iteration < 500
    assert outcome.estimator.model_.tree_count_ == outcome.best_iteration


def _early_stopped(german):
    import catboost

    _, encoded, y = _encoded(german, "class")
    model = CatBoostModel(task="binary", params={"learning_rate": 0.3}, iterations=3000)
    model.fit(
        encoded.iloc[:700], y[:700], eval_set=(encoded.iloc[700:], y[700:]),
        deadline=time.monotonic() + 120,
    )  # fmt: skip
    # the same fit by CatBoost itself, its learn metric recorded every round
    frame = model._frame(encoded)
    reference = catboost.CatBoostClassifier(
        iterations=3000, learning_rate=0.3, loss_function="Logloss", random_seed=0,
        thread_count=1, allow_writing_files=False, verbose=False,
    )  # fmt: skip
    reference.fit(
        catboost.Pool(frame.iloc[:700], y[:700], cat_features=model.cat_columns_),
        eval_set=catboost.Pool(frame.iloc[700:], y[700:], cat_features=model.cat_columns_),
        early_stopping_rounds=50, use_best_model=True,
    )  # fmt: skip
    return model, reference, encoded


def test_early_stopping_ends_where_catboost_alone_ends_without_a_warning(german, capfd):
    """The deadline callback gets the metric history every round; the learn metric is
    recorded every tenth round only (the callback's cost grew with the rounds), which does not
    change the rounds or the model, and CatBoost's warning about it is not written."""
    model, reference, encoded = _early_stopped(german)
    assert model.best_iteration_ == reference.get_best_iteration() + 1
    assert model.model_.tree_count_ == reference.tree_count_
    np.testing.assert_array_equal(model.predict_proba(encoded), reference.predict_proba(
        model._frame(encoded)))  # fmt: skip
    rounds = len(reference.get_evals_result()["learn"]["Logloss"])
    assert len(model.model_.get_evals_result()["learn"]["Logloss"]) < rounds / 5
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_fit_while_another_thread_holds_catboosts_loggers_gives_the_same_model(german, capfd):
    """CatBoost's loggers are the process's, set by one thread at a time: a fit started while
    another thread's fit holds them fits without them, at a period of one, to the same model."""
    import threading

    import catboost

    holding, release = threading.Event(), threading.Event()

    class Hold:
        def after_iteration(self, info) -> bool:
            holding.set()
            release.wait(60)
            return False

    def other_fit() -> None:
        catboost.CatBoostClassifier(iterations=5, verbose=False, allow_writing_files=False).fit(
            np.arange(20.0).reshape(10, 2), np.arange(10) % 2, callbacks=[Hold()],
            log_cout=lambda text: None, log_cerr=lambda text: None,
        )  # fmt: skip

    thread = threading.Thread(target=other_fit)
    thread.start()
    try:
        assert holding.wait(60)
        model, reference, encoded = _early_stopped(german)
    finally:
        release.set()
        thread.join()
    assert model.model_.get_params()["metric_period"] == 1
    assert model.best_iteration_ == reference.get_best_iteration() + 1
    np.testing.assert_array_equal(model.predict_proba(encoded), reference.predict_proba(
        model._frame(encoded)))  # fmt: skip
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_trained_catboost_model_is_registered_in_its_own_format_and_loads(german, ws):
    result = train(
        german, target="class", models=("catboost",), time_budget=120, max_trials=2, seed=0,
        workspace=ws,
    )  # fmt: skip
    assert set(result.leaderboard["model"]) <= {"catboost", "ensemble"}
    assert result.test_metrics["roc_auc"] >= 0.70  # chance is 0.5
    X = german.drop(columns=["class"]).head(40)
    expected = result.model.predict_proba(X)
    version = registry.register(result, name="credit", sample=X, workspace=ws)
    loaded = registry.load(f"credit@{version.version}", workspace=ws)
    spec = loaded.metadata["model"]
    assert spec["format"] == "skops" and not spec.get("unsafe_format")
    assert "forgeml.train._catboost.CatBoostModel" in spec["trusted_types"]
    np.testing.assert_allclose(loaded.model.predict_proba(X), expected, rtol=0, atol=1e-12)
    # the served path: compiled for serving, same answers row by row
    compiled = loaded.model.compile_for_serving()
    columns = {c: X[c].tolist() for c in X.columns}
    _, proba = compiled.predict_both(columns, len(X))
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-12)
    assert compiled.direct  # CatBoost's own predictor on rows of values, no DataFrame
    for i in (0, 7, 39):
        one = {c: v[i : i + 1] for c, v in columns.items()}
        np.testing.assert_allclose(
            compiled.predict_both(one, 1)[1], expected[i : i + 1], rtol=0, atol=1e-12
        )


def test_the_stored_state_holds_catboost_bytes_not_the_python_object(german):
    _, encoded, y = _encoded(german, "class")
    model = CatBoostModel(task="binary", params={"depth": 4}, iterations=20).fit(encoded, y)
    state = model.__getstate__()
    assert "model_" not in state and state["model_cbm_"][:4] == b"CBM1"
    restored = CatBoostModel.__new__(CatBoostModel)
    restored.__setstate__(state)
    np.testing.assert_array_equal(restored.predict_proba(encoded), model.predict_proba(encoded))


def test_regression_with_catboost_on_bike_sharing(dataset):
    frame = pd.read_csv(dataset("bike-sharing-hour.csv")).drop(
        columns=["casual", "registered", "instant", "dteday"], errors="ignore"
    )
    frame = frame.sample(n=3000, random_state=0).reset_index(drop=True)
    result = train(frame, target="cnt", models=("catboost",), time_budget=120, max_trials=1)
    assert result.task == "regression"
    # the mean predictor's RMSE on these rows is about 180
    assert result.test_metrics["rmse"] < 0.5 * result.baseline_metrics["rmse"]


def test_naming_catboost_when_it_is_not_installed_is_refused(monkeypatch):
    monkeypatch.setitem(OPTIONAL, "catboost", "catboost_not_installed_here")
    assert "catboost" not in available_families()
    with pytest.raises((InputError, ValueError), match="catboost_not_installed_here"):
        TrainConfig(target="y", models=("catboost",))
