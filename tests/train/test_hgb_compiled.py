"""HistGradientBoosting compiled to its trees gives scikit-learn's own numbers.

On real tables with numbers, native categorical columns and missing values: binary (Adult,
missing work class, occupation and country), multiclass (Adult's work class from the other
columns) and regression (bike sharing, squared error and Poisson, whose link is ``exp``).
Both ways the compiled function predicts are compared: the NumPy walk of every tree (a
few rows) and scikit-learn's predictor tree by tree (more rows).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from forgeml.train import TabularEncoder, TrainedModel, infer_column_kinds
from forgeml.train._hgb_walk import HGBForest
from forgeml.train._latency import measure_latency
from forgeml.train._sklearn_compiled import NotCompilable, compile_hist_gradient_boosting

FIT_ROWS = 3000


@pytest.fixture(scope="module")
def bike(shared_dataset: Any) -> pd.DataFrame:
    frame = pd.read_csv(shared_dataset("bike-sharing-hour.csv"), nrows=4000)
    return frame.drop(columns=["casual", "registered", "instant"])


def _fit(X: pd.DataFrame, y: pd.Series, model: Any) -> Pipeline:
    encoder = TabularEncoder(kinds=infer_column_kinds(X), output="native", max_categories=12)
    return Pipeline([("encode", encoder), ("model", model)]).fit(X[:FIT_ROWS], y[:FIT_ROWS])


def _expected(pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(pipeline, "predict_proba"):
            return np.asarray(pipeline.predict_proba(X))
        return np.asarray(pipeline.predict(X))


def _assert_compiled_matches(pipeline: Pipeline, held_out: pd.DataFrame) -> None:
    """The compiled function on the encoder's codes gives scikit-learn's answers to the last
    bit, in one batch (its predictor) and a row at a time (the walk); row by row within
    1e-12 of the batch (scikit-learn's own softmax of one row may differ from its batch's in
    the last bit)."""
    encoder, model = pipeline.steps[0][1], pipeline.steps[1][1]
    predict = compile_hist_gradient_boosting(model)
    codes = encoder.codes(held_out)
    expected = _expected(pipeline, held_out)
    np.testing.assert_array_equal(predict(codes), expected)
    rows = np.concatenate([predict(codes[i : i + 1]) for i in range(len(codes))])
    np.testing.assert_allclose(rows, expected, rtol=1e-12, atol=1e-12)
    for i in range(0, len(codes), 97):
        one = _expected(pipeline, held_out.iloc[i : i + 1])
        np.testing.assert_array_equal(predict(codes[i : i + 1]), one)


def test_binary_with_categories_and_missing_values(adult_head):
    X, y = adult_head.drop(columns=["income"]), adult_head["income"]
    pipeline = _fit(
        X,
        y,
        HistGradientBoostingClassifier(
            max_iter=40, max_leaf_nodes=48, categorical_features="from_dtype", random_state=0
        ),
    )
    held_out = X[FIT_ROWS:]
    assert held_out.isna().any(axis=1).sum() > 20
    model = pipeline.steps[1][1]
    assert model.is_categorical_.sum() >= 5
    assert any(tree.nodes["is_categorical"].any() for trees in model._predictors for tree in trees)
    _assert_compiled_matches(pipeline, held_out)


def test_multiclass_with_categories_and_missing_values(adult_head):
    X = adult_head.drop(columns=["workclass"])
    y = adult_head["workclass"].fillna("unknown")
    assert y.nunique() >= 5
    pipeline = _fit(
        X,
        y,
        HistGradientBoostingClassifier(
            max_iter=15, categorical_features="from_dtype", random_state=0
        ),
    )
    _assert_compiled_matches(pipeline, X[FIT_ROWS:])


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regression_with_identity_and_exp_links(bike, loss):
    X, y = bike.drop(columns=["cnt"]), bike["cnt"]
    X = X.assign(season=X["season"].map({1: "spring", 2: "summer", 3: "fall", 4: "winter"}))
    X.loc[X.index % 11 == 0, "temp"] = np.nan  # missing numbers
    pipeline = _fit(
        X,
        y,
        HistGradientBoostingRegressor(
            loss=loss, max_iter=40, categorical_features="from_dtype", random_state=0
        ),
    )
    assert pipeline.steps[1][1].is_categorical_.any()
    _assert_compiled_matches(pipeline, X[FIT_ROWS:])


def test_a_trained_model_with_a_hgb_member_predicts_small_frames_compiled(adult_head):
    X, y = adult_head.drop(columns=["income"]), adult_head["income"]
    pipeline = _fit(
        X,
        (y == ">50K").astype(int),
        HistGradientBoostingClassifier(
            max_iter=30, categorical_features="from_dtype", random_state=0
        ),
    )
    trained = TrainedModel(
        members=[pipeline],
        weights=[1.0],
        task="binary",
        feature_columns=list(X.columns),
        classes=["<=50K", ">50K"],
        families=["hgb"],
    )
    held_out = X[FIT_ROWS:]
    # the latency bound's measurement takes the compiled path (built on its first call)
    assert "_compiled_model" not in trained.__dict__
    measure_latency(trained, held_out, "binary", seed=0, calls=3)
    assert trained.__dict__["_compiled_model"] is not None
    batch = trained.predict_proba(held_out)  # 1,000 rows: through the fitted pipeline
    compiled = trained._compiled()
    assert compiled is not None and compiled.direct  # no DataFrame per call
    for i in range(0, len(held_out), 37):
        one = trained.predict_proba(held_out.iloc[i : i + 1])
        np.testing.assert_allclose(one, batch[i : i + 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(trained.predict_proba(held_out[:100]), batch[:100], atol=1e-12)
    assert trained.predict(held_out[:100]).tolist() == trained.predict(held_out).tolist()[:100]


def _binary_pipeline(adult_head: pd.DataFrame) -> Pipeline:
    X, y = adult_head.drop(columns=["income"]), adult_head["income"]
    return _fit(
        X,
        y,
        HistGradientBoostingClassifier(
            max_iter=30, max_leaf_nodes=40, categorical_features="from_dtype", random_state=0
        ),
    )


def _predictor_raw(model: Any, X: np.ndarray) -> np.ndarray:
    """scikit-learn's raw predictions of preprocessed rows, tree by tree in its order."""
    known, feature_map = model._bin_mapper.make_known_categories_bitsets()
    raw = np.zeros((len(X), model.n_trees_per_iteration_), order="F")
    raw += model._baseline_prediction
    for trees in model._predictors:
        for k, tree in enumerate(trees):
            raw[:, k] += tree.predict(X, known, feature_map, 1)
    return raw


def test_the_walk_gives_the_predictors_numbers_on_and_beside_every_split(adult_head):
    """Rows on, just below and just above thresholds, missing numbers, known, unknown and
    negative categories: the walk's raw sums equal scikit-learn's to the last bit, in a batch
    and a row at a time, for binary and multiclass models."""
    X = adult_head.drop(columns=["income", "workclass"])
    for y in (adult_head["income"], adult_head["workclass"].fillna("unknown")):
        model = _fit(X, y, HistGradientBoostingClassifier(max_iter=12, random_state=0)).steps[1][1]
        known, feature_map = model._bin_mapper.make_known_categories_bitsets()
        forest = HGBForest.of(model, known, feature_map, lambda Z, m=model: _predictor_raw(m, Z))
        assert forest is not None
        probe = forest.probe_rows(model.n_features_in_, n=400)
        assert np.isin(probe, forest._threshold).any() and np.isnan(probe).any()
        categorical = sorted(set(forest._categorical_feature.tolist()))
        assert categorical and (probe[:, categorical] < 0).any()
        assert (probe[:, categorical] == forest.codes).any()  # a code no category has
        expected = _predictor_raw(model, probe)
        np.testing.assert_array_equal(forest.raw(probe), expected)
        for i in range(0, len(probe), 13):
            np.testing.assert_array_equal(forest.raw(probe[i : i + 1]), expected[i : i + 1])


def test_one_row_is_walked_without_the_predictor(adult_head, monkeypatch):
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    pipeline = _binary_pipeline(adult_head)
    encoder, model = pipeline.steps[0][1], pipeline.steps[1][1]
    predict = compile_hist_gradient_boosting(model)
    codes = encoder.codes(adult_head.drop(columns=["income"])[FIT_ROWS:])
    expected = predict(codes)  # 1,000 rows: scikit-learn's predictor

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("scikit-learn's predictor was called for one row")

    monkeypatch.setattr(TreePredictor, "predict", refused)
    for i in range(0, 200, 11):
        np.testing.assert_array_equal(predict(codes[i : i + 1]), expected[i : i + 1])


def test_large_trees_are_walked_one_row_at_most(adult_head, monkeypatch):
    """Trees of up to 255 leaves: the walk's arrays grow with their nodes, so it answers one
    row and leaves two to scikit-learn's predictor (smaller trees: several rows)."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    X, y = adult_head.drop(columns=["income"]), adult_head["income"]
    large = HistGradientBoostingClassifier(
        max_iter=30, max_leaf_nodes=255, min_samples_leaf=2, early_stopping=False, random_state=0
    )
    pipeline = _fit(X, y, large)
    model = pipeline.steps[1][1]
    assert np.mean([len(t.nodes) for trees in model._predictors for t in trees]) > 350
    codes = pipeline.steps[0][1].codes(X[FIT_ROWS : FIT_ROWS + 2])
    predict = compile_hist_gradient_boosting(model)
    calls = []
    predicted = TreePredictor.predict

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return predicted(self, *args, **kwargs)

    monkeypatch.setattr(TreePredictor, "predict", counted)
    predict(codes[:1])
    assert not calls  # one row: walked
    predict(codes)
    assert len(calls) == 30  # two rows: the predictor, tree by tree


def test_a_walk_that_differs_from_the_predictor_is_not_used(adult_head, monkeypatch):
    """A walk off by the last bit on the probe rows is refused: the model still compiles and
    its one-row answers come from scikit-learn's predictor, to the last bit."""
    pipeline = _binary_pipeline(adult_head)
    encoder, model = pipeline.steps[0][1], pipeline.steps[1][1]
    walked = HGBForest.raw

    def off_by_a_bit(self: HGBForest, X: np.ndarray) -> np.ndarray:
        raw = walked(self, X)
        raw[-1] = np.nextafter(raw[-1], np.inf)
        return raw

    monkeypatch.setattr(HGBForest, "raw", off_by_a_bit)
    predict = compile_hist_gradient_boosting(model)
    held_out = adult_head.drop(columns=["income"])[FIT_ROWS:]
    codes = encoder.codes(held_out)
    for i in range(0, 300, 17):
        np.testing.assert_array_equal(
            predict(codes[i : i + 1]), _expected(pipeline, held_out.iloc[i : i + 1])
        )


def test_other_estimators_and_wrong_widths_are_refused(adult_head):
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(NotCompilable, match="not a HistGradientBoosting"):
        compile_hist_gradient_boosting(RandomForestClassifier())
    with pytest.raises(NotCompilable, match="not fitted"):
        compile_hist_gradient_boosting(HistGradientBoostingClassifier())
    X = adult_head[["age", "hours_per_week"]]
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, adult_head["income"])
    predict = compile_hist_gradient_boosting(model)
    np.testing.assert_array_equal(predict(X.to_numpy()), model.predict_proba(X))
    with pytest.raises(ValueError, match="2 columns"):
        predict(np.zeros((1, 3)))


class HistGradientBoostingThreads(HistGradientBoostingClassifier):
    """HistGradientBoosting that notes the OpenMP thread count its predictor would use."""

    def predict_proba(self, X: Any) -> np.ndarray:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

        self.threads_seen_ = _openmp_effective_n_threads()
        return super().predict_proba(X)


def test_the_fitted_pipeline_predicts_small_batches_on_one_openmp_thread(adult_head):
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    from forgeml.train._model import raw_predict

    X, y = adult_head.drop(columns=["income"]), adult_head["income"]
    pipeline = _fit(X, y, HistGradientBoostingThreads(max_iter=10, random_state=0))
    before = _openmp_effective_n_threads()
    held_out = X[FIT_ROWS:]
    got = raw_predict(pipeline, held_out, "binary")
    assert pipeline.steps[1][1].threads_seen_ == 1
    assert _openmp_effective_n_threads() == before  # the limit ends with the call
    np.testing.assert_array_equal(got, _expected(pipeline, held_out))  # the same numbers
    assert pipeline.steps[1][1].threads_seen_ == before
