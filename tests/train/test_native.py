"""LightGBM's and XGBoost's C prediction functions called directly give the libraries' own
numbers, and a compiled bag of fold models calls them (not ``inplace_predict`` or
``Booster.predict``) for one row.

Real data: Adult, with native categorical columns and missing values, binary and multiclass.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.pipeline import Pipeline

from forgeml.train import TabularEncoder, TrainedModel, infer_column_kinds
from forgeml.train._model import FoldBag
from forgeml.train._native import ROWS, lightgbm_rows, xgboost_forest, xgboost_rows
from forgeml.train._xgboost_walk import XGBoostForest

FIT_ROWS = 3000


def _encoded(adult_head: pd.DataFrame, target: str) -> tuple[TabularEncoder, pd.DataFrame, Any]:
    X, y = adult_head.drop(columns=[target]), adult_head[target]
    encoder = TabularEncoder(kinds=infer_column_kinds(X), output="native", max_categories=12)
    frame = encoder.fit_transform(X[:FIT_ROWS], y[:FIT_ROWS])
    return encoder, frame, pd.factorize(y)[0]


def _rows(encoder: TabularEncoder, adult_head: pd.DataFrame, target: str) -> np.ndarray:
    return encoder.codes(adult_head.drop(columns=[target])[FIT_ROWS:])


@pytest.mark.parametrize("target", ["income", "relationship"])  # binary, multiclass
def test_xgboost_rows_give_inplace_predict_numbers(adult_head, target):
    encoder, frame, y = _encoded(adult_head, target)
    model = xgboost.XGBClassifier(
        n_estimators=60,
        max_depth=4,
        enable_categorical=True,
        early_stopping_rounds=5,
        random_state=0,
        nthread=1,
    )
    model.fit(frame, y[:FIT_ROWS], eval_set=[(frame[-500:], y[FIT_ROWS - 500 : FIT_ROWS])])
    booster = model.get_booster()
    rows = _rows(encoder, adult_head, target)
    assert np.isnan(rows).any()
    for iterations in [
        (0, model.best_iteration + 1),
        (0, 0),
        (2, 7),
    ]:  # early stopping's, all, some
        predict = xgboost_rows(booster, iterations)
        assert predict is not None
        for start in range(0, 400, 37):
            for n in (1, 3, ROWS):
                batch = rows[start : start + n]
                expected = booster.inplace_predict(batch, iteration_range=iterations)
                got = predict(batch)
                assert got.dtype == expected.dtype and got.shape == expected.shape
                assert np.array_equal(got, expected)
    with pytest.raises(ValueError, match="Feature shape mismatch"):
        predict(rows[:1, :-1])


def test_lightgbm_rows_stop_at_the_best_iteration_as_booster_predict(adult_head):
    encoder, frame, y = _encoded(adult_head, "income")
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0},
        lightgbm.Dataset(frame[:2500], y[:2500]),
        num_boost_round=200,
        valid_sets=[lightgbm.Dataset(frame[2500:], y[2500:FIT_ROWS])],
        callbacks=[lightgbm.early_stopping(5, verbose=False)],
        keep_training_booster=True,  # the trees after the best iteration are kept
    )
    assert 0 < booster.best_iteration < booster.current_iteration()
    predict = lightgbm_rows(booster)
    assert predict is not None
    rows = _rows(encoder, adult_head, "income")
    for start in range(0, 400, 41):
        for n in (1, 4):
            batch = rows[start : start + n]
            expected = booster.predict(batch, num_threads=1)
            assert np.allclose(predict(batch), expected, rtol=0, atol=1e-15)


def test_a_compiled_bag_calls_the_c_functions_for_one_row(adult_head, monkeypatch):
    X, y = adult_head.drop(columns=["income"]), (adult_head["income"] == ">50K").astype(int)
    kinds = infer_column_kinds(X)
    members = []
    for family in ("lgbm", "xgb"):
        folds = []
        for fold in range(3):
            rows = np.arange(FIT_ROWS) % 3 != fold
            if family == "lgbm":
                model: Any = lightgbm.LGBMClassifier(
                    n_estimators=40, num_leaves=15, random_state=fold, verbose=-1
                )
            else:
                model = xgboost.XGBClassifier(
                    n_estimators=40, max_depth=4, enable_categorical=True, random_state=fold
                )
            encoder = TabularEncoder(kinds=kinds, output="native", max_categories=12)
            pipeline = Pipeline([("encode", encoder), ("model", model)])
            folds.append(pipeline.fit(X[:FIT_ROWS][rows], y[:FIT_ROWS][rows]))
        members.append(FoldBag(pipelines=folds, task="binary"))
    trained = TrainedModel(
        members=members,
        weights=[0.6, 0.4],
        task="binary",
        feature_columns=list(X.columns),
        classes=["<=50K", ">50K"],
        families=["lgbm", "xgb"],
    )
    held_out = X[FIT_ROWS : FIT_ROWS + 200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = trained.predict_proba(held_out.iloc[:150])  # more rows: the libraries' calls

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the library's own predict was called for one row")

    monkeypatch.setattr(xgboost.Booster, "inplace_predict", refused)
    monkeypatch.setattr(lightgbm.Booster, "predict", refused)
    compiled = trained.compile_for_serving()
    for i in range(0, 150, 7):
        one = held_out.iloc[i : i + 1]
        got = trained.predict_proba(one)
        assert np.allclose(got, expected[i : i + 1], rtol=0, atol=1e-12)
        record = {c: [None if pd.isna(v) else v] for c, v in one.iloc[0].items()}
        _, proba = compiled.predict_both(record, 1)
        assert proba is not None and np.allclose(proba, got, rtol=0, atol=1e-12)


@pytest.mark.parametrize("objective", ["reg:squarederror", "reg:absoluteerror"])
def test_a_regression_booster_walked_in_numpy_gives_its_numbers_to_the_last_bit(
    shared_dataset, objective
):
    """Bike sharing: deep trees (where XGBoost's own one-row call is slow), missing values,
    an early-stopped iteration range; one row and a few rows, each equal to inplace_predict."""
    bike = pd.read_csv(shared_dataset("bike-sharing-hour.csv"))
    X = bike.drop(columns=["cnt", "casual", "registered", "instant", "dteday"]).astype(float)
    X = X.to_numpy()
    X[np.random.default_rng(0).random(X.shape) < 0.05] = np.nan
    y = bike["cnt"].to_numpy(float)
    model = xgboost.XGBRegressor(
        n_estimators=400, max_depth=8, learning_rate=0.1, objective=objective,
        early_stopping_rounds=20, random_state=0, nthread=1,
    )  # fmt: skip
    model.fit(X[:12000], y[:12000], eval_set=[(X[12000:14000], y[12000:14000])], verbose=False)
    booster = model.get_booster()
    iterations = (0, int(model.best_iteration) + 1)
    width = X.shape[1]
    forest = XGBoostForest.of(
        [(booster, iterations)],
        [list(range(width))],
        [lambda rows: booster.inplace_predict(rows, iteration_range=iterations)],
    )
    assert forest is not None and forest.walk_rows >= 1
    few = xgboost_rows(booster, iterations)
    assert few is not None
    rows = X[14000:14300]
    expected = booster.inplace_predict(rows, iteration_range=iterations)
    one_by_one = np.concatenate([forest.predict(rows[i : i + 1])[0] for i in range(len(rows))])
    np.testing.assert_array_equal(one_by_one, expected)
    np.testing.assert_array_equal(forest.predict(rows[:5])[0], expected[:5])
    np.testing.assert_array_equal(few(rows[:1]), expected[:1])
    np.testing.assert_array_equal(few(rows[:ROWS]), expected[:ROWS])
    # every tree, not only up to the best iteration
    reference = xgboost_rows(booster, (0, 0))
    assert reference is not None
    all_trees = booster.inplace_predict(rows[:3], iteration_range=(0, 0))
    np.testing.assert_array_equal(reference(rows[:3]), all_trees)


def test_classifiers_on_native_categories_walked_together_give_their_numbers(adult_head):
    """Three fold models of a binary classifier splitting on Adult's native categories (sets
    of categories and one-hot splits), with missing values, unseen categories (no code) and
    early stopping: walked at once, each gives its own inplace_predict to the last bit, its
    sigmoid included."""
    X, y = adult_head.drop(columns=["income"]), pd.factorize(adult_head["income"])[0]
    kinds = infer_column_kinds(X)
    boosters, matrices = [], []
    for fold in range(3):
        rows = np.arange(FIT_ROWS) % 3 != fold
        encoder = TabularEncoder(kinds=kinds, output="native", max_categories=12)
        frame = encoder.fit_transform(X[:FIT_ROWS][rows], y[:FIT_ROWS][rows])
        model = xgboost.XGBClassifier(
            n_estimators=80, max_depth=3 + 3 * fold, enable_categorical=True,
            max_cat_to_onehot=4, early_stopping_rounds=5, random_state=fold, nthread=1,
        )  # fmt: skip
        model.fit(frame, y[:FIT_ROWS][rows], eval_set=[(frame[:300], y[:FIT_ROWS][rows][:300])])
        booster = model.get_booster()
        assert booster.trees_to_dataframe()["Category"].notna().any()
        boosters.append((booster, (0, int(model.best_iteration) + 1)))
        matrices.append(encoder.codes(X[FIT_ROWS:]))
    width = matrices[0].shape[1]
    slots = [list(range(b * width, (b + 1) * width)) for b in range(3)]
    forest = xgboost_forest(boosters, slots)
    assert forest is not None and forest.walk_rows >= 1
    Z = np.hstack(matrices)
    assert np.isnan(Z).any()
    expected = np.stack(
        [
            b.inplace_predict(m, iteration_range=r)
            for (b, r), m in zip(boosters, matrices, strict=True)
        ]
    )
    one_by_one = np.concatenate([forest.predict(Z[i : i + 1]) for i in range(400)], axis=1)
    np.testing.assert_array_equal(one_by_one, expected[:, :400])
    for n in (2, 3, ROWS):
        np.testing.assert_array_equal(forest.predict(Z[:n]), expected[:, :n])


def test_no_walk_for_multiclass_or_dart(adult_head):
    """A multiclass booster (a softmax over several trees per iteration) and a DART booster
    (trees weighted at prediction) keep XGBoost's own call."""
    _, frame, y = _encoded(adult_head, "relationship")
    multiclass = xgboost.XGBClassifier(
        n_estimators=10, max_depth=3, enable_categorical=True, random_state=0, nthread=1
    ).fit(frame, y[:FIT_ROWS])
    _, frame, y = _encoded(adult_head, "income")
    dart = xgboost.XGBClassifier(
        n_estimators=10, max_depth=3, enable_categorical=True, booster="dart", random_state=0,
        nthread=1,
    ).fit(frame, y[:FIT_ROWS])  # fmt: skip
    for model in (multiclass, dart):
        booster = model.get_booster()
        width = booster.num_features()
        assert xgboost_forest([(booster, (0, 0))], [list(range(width))]) is None


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_walked_bag_gives_the_bag_of_c_calls_numbers_to_the_last_bit(
    adult_head, monkeypatch, task
):
    """Two bags of XGBoost fold models (fold encoders that code categories differently),
    walked at once: the compiled model's one-row answers equal, bit for bit, those of the same
    model calling XGBoost's C function per fold model."""
    from forgeml.train import _compiled

    target = "income" if task == "binary" else "age"
    X = adult_head.drop(columns=[target])
    y = (
        (adult_head[target] == ">50K").astype(int)
        if task == "binary"
        else adult_head[target].astype(float)
    )
    kinds = infer_column_kinds(X)
    members = []
    for depth in (3, 6):
        folds = []
        for fold in range(3):
            rows = np.arange(FIT_ROWS) % 3 != fold
            rows[fold * 40 : fold * 40 + 40] = False  # fold encoders see different categories
            estimator: Any = (xgboost.XGBClassifier if task == "binary" else xgboost.XGBRegressor)(
                n_estimators=50, max_depth=depth, enable_categorical=True, random_state=fold,
            )  # fmt: skip
            encoder = TabularEncoder(kinds=kinds, output="native", max_categories=12)
            pipeline = Pipeline([("encode", encoder), ("model", estimator)])
            folds.append(pipeline.fit(X[:FIT_ROWS][rows], y[:FIT_ROWS][rows]))
        members.append(FoldBag(pipelines=folds, task=task))
    trained = TrainedModel(
        members=members,
        weights=[0.7, 0.3],
        task=task,
        feature_columns=list(X.columns),
        classes=["<=50K", ">50K"] if task == "binary" else None,
        families=["xgb", "xgb"],
    )
    walked = trained.compile_for_serving()
    assert _compiled._WalkedBoosters.of(trained.members) is not None
    monkeypatch.setattr(_compiled._WalkedBoosters, "of", classmethod(lambda cls, *args: None))
    called = _compiled.CompiledModel(trained, raw_predict=lambda *a: None)
    held_out = X[FIT_ROWS : FIT_ROWS + 150]
    for i in range(len(held_out)):
        record = {c: [None if pd.isna(v) else v] for c, v in held_out.iloc[i].items()}
        got, expected = walked.predict_both(record, 1), called.predict_both(record, 1)
        np.testing.assert_array_equal(got[0], expected[0])
        if task == "binary":
            np.testing.assert_array_equal(got[1], expected[1])
