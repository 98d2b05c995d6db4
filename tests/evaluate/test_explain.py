"""Explanations: additivity for each model family, contributions per original column."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from forgeml.evaluate import Explainer, explain, global_importance, raw_output


def table(seed: int, n: int = 300) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "city": rng.choice(["north", "south", "east", "west"], n),
            "income": rng.lognormal(3, 0.5, n),
            "noise": rng.normal(size=n),
        }
    )
    X.loc[::13, "income"] = np.nan
    logit = 0.08 * (X["age"] - 40) + (X["city"] == "north") * 1.5 - (X["city"] == "west")
    y = (logit + rng.logistic(size=n) > 0).astype(int).to_numpy()
    y3 = np.where(X["age"] > 45, 2, np.where(X["city"] == "south", 1, 0))
    return X, y, y3


def pipeline(model) -> Pipeline:
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()),
                ["age", "income", "noise"],
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    return Pipeline([("pre", pre), ("model", model)])


def families():
    import lightgbm
    import xgboost

    return {
        "lightgbm": (
            lightgbm.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0),
            "lightgbm.pred_contrib",
            "log_odds",
        ),
        "xgboost": (
            xgboost.XGBClassifier(n_estimators=30, random_state=0),
            "xgboost.pred_contribs",
            "log_odds",
        ),
        "random_forest": (
            RandomForestClassifier(n_estimators=20, random_state=0),
            "shap.TreeExplainer",
            "probability",
        ),
        "gradient_boosting": (
            GradientBoostingClassifier(n_estimators=30, random_state=0),
            "shap.TreeExplainer",
            "log_odds",
        ),
        "logistic_regression": (LogisticRegression(), "shap.LinearExplainer", "log_odds"),
    }


@pytest.mark.parametrize("family", list(families()))
def test_additivity_through_the_pipeline(family, seed):
    X, y, _ = table(seed)
    estimator, method, output = families()[family]
    model = pipeline(estimator).fit(X, y)
    rows = X.iloc[:60]
    e = explain(model, rows, background=X, seed=seed)
    assert e.method == method and e.output == output
    assert e.columns == ("age", "city", "income", "noise")  # the original columns
    assert e.contributions.shape == (60, 4)
    raw = raw_output(model, rows)
    np.testing.assert_allclose(e.contributions.sum(axis=1) + e.base_values, raw, atol=1e-5)
    if output == "log_odds":  # the margin is the log-odds of predict_proba
        proba = model.predict_proba(rows)[:, 1]
        np.testing.assert_allclose(1 / (1 + np.exp(-raw)), proba, atol=1e-5)
    else:
        np.testing.assert_allclose(raw, model.predict_proba(rows)[:, 1], atol=1e-12)
    # the signal is in age and city, not in the noise column
    importance = e.importance()
    assert set(importance.index[:2]) == {"age", "city"}


def test_one_hot_pieces_add_up_to_their_column():
    X, y, _ = table(0)
    model = pipeline(LogisticRegression()).fit(X, y)
    e = Explainer(model, background=X, background_rows=len(X)).explain(X.iloc[:20])
    coef = model.named_steps["model"].coef_[0]
    xt = model.named_steps["pre"].transform(X.iloc[:20])
    bg = model.named_steps["pre"].transform(X).mean(axis=0)
    city = slice(len(coef) - 4, len(coef))  # the four one-hot columns come last
    expected = (coef[city] * (xt[:, city] - bg[city])).sum(axis=1)
    np.testing.assert_allclose(e.frame()["city"], expected, atol=1e-10)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "logistic_regression"])
def test_multiclass_additivity(family):
    X, _, y3 = table(1)
    estimator = families()[family][0]
    model = pipeline(estimator).fit(X, y3)
    rows = X.iloc[:30]
    e = explain(model, rows, background=X)
    assert e.contributions.shape == (30, 4, 3)
    assert e.outputs == (0, 1, 2)
    np.testing.assert_allclose(e.raw_prediction, raw_output(model, rows), atol=1e-5)


def test_plain_estimators_without_pipeline_and_regression():
    X, _y, _ = table(2)
    numeric = X[["age", "income", "noise"]].fillna(0)
    target = numeric["age"] * 2 + numeric["noise"]
    for model in (RandomForestRegressor(n_estimators=10, random_state=0), Ridge()):
        model.fit(numeric, target)
        e = explain(model, numeric.iloc[:25], background=numeric)
        assert e.output == "value"
        np.testing.assert_allclose(e.raw_prediction, model.predict(numeric.iloc[:25]), atol=1e-8)


def test_model_agnostic_explainer_is_additive_and_seeded():
    from sklearn.neighbors import KNeighborsClassifier

    X, y, _ = table(3, n=200)
    model = pipeline(KNeighborsClassifier(n_neighbors=15)).fit(X, y)
    rows = X.iloc[:8]
    a = Explainer(model, background=X, background_rows=30, seed=4).explain(rows)
    b = Explainer(model, background=X, background_rows=30, seed=4).explain(rows)
    assert a.method == "shap.PermutationExplainer" and a.output == "probability"
    np.testing.assert_allclose(a.raw_prediction, raw_output(model, rows), atol=1e-8)
    np.testing.assert_array_equal(a.contributions, b.contributions)


def test_global_importance_samples_rows_with_the_seed():
    import lightgbm

    X, y, _ = table(0, n=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = pipeline(lightgbm.LGBMClassifier(n_estimators=20, verbose=-1)).fit(X, y)
    importance, e = global_importance(model, X, max_rows=100, seed=1)
    assert e.contributions.shape == (100, 4)
    again, _ = global_importance(model, X, max_rows=100, seed=1)
    pd.testing.assert_series_equal(importance, again)
    assert importance.index[-1] == "noise"
    records = e.to_records(top=2)
    assert len(records[0]["contributions"]) == 2
    assert records[0]["raw_prediction"] == pytest.approx(float(e.raw_prediction[0]))


class _RawColumnsModel(ClassifierMixin, BaseEstimator):
    """A model that takes raw mixed-type columns and hides its pipeline (like a trained
    forgeml model): only the model-agnostic explainer can read it."""

    def __init__(self, pipeline: Pipeline | None = None) -> None:
        self.pipeline = pipeline

    @property
    def classes_(self) -> np.ndarray:
        return self.pipeline.classes_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict(X)


def test_model_agnostic_explainer_takes_text_columns_and_stays_additive():
    X, y, _ = table(5)
    columns = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["age", "income", "noise"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    model = _RawColumnsModel(
        make_pipeline(columns, GradientBoostingClassifier(random_state=0)).fit(X, y)
    )
    explainer = Explainer(model, background=X.iloc[:30], seed=0)
    assert explainer.family_ == "other"
    rows = X.iloc[40:52]
    explanation = explainer.explain(rows)
    assert explanation.columns == ("age", "city", "income", "noise")
    total = explanation.contributions.sum(axis=1) + explanation.base_values
    np.testing.assert_allclose(total, raw_output(model, rows), atol=1e-9)
    # the text column carries signal; the noise column carries little
    importance = np.abs(explanation.contributions).mean(axis=0)
    assert importance[1] > importance[3]
