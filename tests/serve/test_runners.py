"""The fast runners give the checked path's answers on real rows, or are not used."""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import forgeml as fm
from forgeml.config import Settings
from forgeml.registry import UnknownCategoryWarning
from forgeml.serve._runners import (
    BoosterRunner,
    CompiledRunner,
    FrameRunner,
    PipelineRunner,
    Runner,
    TypedFrameRunner,
    XGBoostRunner,
    runner_for,
)
from forgeml.serve._types import Rows
from forgeml.serve._validate import Validator
from forgeml.store import Workspace
from forgeml.train import TabularEncoder, TrainedModel, infer_column_kinds
from forgeml.train._model import FoldBag

from .conftest import TARGET, adult_frame


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    with Workspace(Settings(home=tmp_path_factory.mktemp("runners"))) as workspace:
        yield workspace


@pytest.fixture(scope="module")
def adult_rows(shared_dataset) -> pd.DataFrame:
    """6,000 real Adult rows: the first 4,000 to fit on, the rest to compare answers on."""
    return adult_frame(shared_dataset("adult.csv"), rows=6000)


def _columns(model: Any, frame: pd.DataFrame) -> dict[str, list[Any]]:
    """Rows as the server hands them to a runner: decoded JSON values, validated."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    names = list(records[0])
    rows = Rows(columns={c: [r[c] for r in records] for c in names}, n=len(records))
    return Validator(model.signature, unknown_categories="pass").check(rows)


def _same_labels(labels: list[Any], expected: list[Any]) -> None:
    """Class labels equal; regression values within 1e-12 (relative), the gate's rule (a
    matrix product summed in another order may differ in the last bit)."""
    if expected and isinstance(expected[0], float):
        np.testing.assert_allclose(labels, expected, rtol=1e-12, atol=0)
    else:
        assert labels == expected


def _same_answers(runner: Runner, model: Any, frame: pd.DataFrame) -> None:
    """The runner's answers equal the registry model's own, in one batch and row by row."""
    columns = _columns(model, frame)
    labels, proba = runner.run(columns, len(frame))
    model.unknown_categories = "pass"  # categories never seen in training: compared too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownCategoryWarning)
        expected, expected_proba = FrameRunner(model).run(columns, len(frame))
    _same_labels(labels, expected)
    if expected_proba is None:
        assert proba is None
    else:
        np.testing.assert_allclose(proba, expected_proba, rtol=0, atol=1e-12)
    for i in range(0, len(frame), 97):
        one, one_proba = runner.run({c: v[i : i + 1] for c, v in columns.items()}, 1)
        _same_labels(one, expected[i : i + 1])
        if expected_proba is not None:
            np.testing.assert_allclose(one_proba, expected_proba[i : i + 1], rtol=0, atol=1e-12)


def _register(ws: Workspace, model: Any, name: str, sample: pd.DataFrame) -> Any:
    version = fm.register(model, name=name, sample=sample, workspace=ws).version
    return fm.load(f"{name}@{version}", workspace=ws)


def test_xgboost_classifier_runs_on_its_booster(ws, adult_rows, monkeypatch):
    X, y = adult_rows.drop(columns=[TARGET]), (adult_rows[TARGET] == ">50K").astype(int)
    fitted = xgb.XGBClassifier(
        n_estimators=40, max_depth=5, enable_categorical=True, tree_method="hist", random_state=0
    ).fit(X[:4000], y[:4000])
    model = _register(ws, fitted, "adult-xgb", X[:4000])
    runner = runner_for(model)
    assert isinstance(runner, XGBoostRunner)
    _same_answers(runner, model, X[4000:])

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("inplace_predict was called for one row")

    # one row goes through XGBoost's C function called directly, not inplace_predict
    columns = _columns(model, X[4000:4001])
    expected = runner.run(columns, 1)
    monkeypatch.setattr(xgb.Booster, "inplace_predict", refused)
    labels, proba = runner.run(columns, 1)
    assert labels == expected[0] and np.array_equal(proba, expected[1])


def test_xgboost_regressor_runs_on_its_booster(ws, shared_dataset):
    frame = pd.read_csv(shared_dataset("california-housing.csv"), nrows=5000)
    target = "median_house_value"
    X, y = frame.drop(columns=[target]), frame[target]
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    X = X.astype({c: "category" for c in categorical})
    fitted = xgb.XGBRegressor(
        n_estimators=30, enable_categorical=True, tree_method="hist", random_state=0
    ).fit(X[:4000], y[:4000])
    model = _register(ws, fitted, "housing-xgb", X[:4000])
    runner = runner_for(model)
    assert isinstance(runner, XGBoostRunner)
    _same_answers(runner, model, X[4000:])


def test_lightgbm_classifier_runs_on_its_booster(ws, adult_rows):
    X, y = adult_rows.drop(columns=[TARGET]), adult_rows[TARGET]
    fitted = lgb.LGBMClassifier(n_estimators=40, random_state=0, verbose=-1).fit(X[:4000], y[:4000])
    model = _register(ws, fitted, "adult-lgbm-runner", X[:4000])
    runner = runner_for(model)
    assert isinstance(runner, BoosterRunner)
    _same_answers(runner, model, X[4000:])


def _sklearn_pipeline(X: pd.DataFrame, estimator: Any) -> Pipeline:
    """A user's pipeline: imputation with indicators and scaling of the numbers, one-hot
    encoding (rare categories grouped) and ordinal encoding of the categories."""
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    prepare = ColumnTransformer(
        [
            (
                "numbers",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
            (
                "one_hot",
                OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False),
                categorical[:-2],
            ),
            (
                "ordinal",
                Pipeline(
                    [
                        (
                            "codes",
                            OrdinalEncoder(
                                handle_unknown="use_encoded_value",
                                unknown_value=-1,
                                encoded_missing_value=-2,
                            ),
                        ),
                        ("scale", StandardScaler()),
                    ]
                ),
                categorical[-2:],
            ),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("prepare", prepare), ("model", estimator)])


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=30, random_state=0),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
    ],
    ids=["logistic", "forest", "hgb"],
)
def test_sklearn_pipelines_run_compiled(ws, adult_rows, estimator):
    X, y = adult_rows.drop(columns=[TARGET]), adult_rows[TARGET]
    fitted = _sklearn_pipeline(X, estimator).fit(X[:4000], y[:4000])
    model = _register(ws, fitted, f"adult-pipeline-{type(estimator).__name__}", X[:4000])
    runner = runner_for(model)
    assert isinstance(runner, PipelineRunner)
    _same_answers(runner, model, X[4000:])
    assert runner.run(_columns(model, X[4000:4001]), 1)[0] == fitted.predict(X[4000:4001]).tolist()
    if isinstance(estimator, HistGradientBoostingClassifier):
        assert runner._forest is not None  # compiled to its trees, not its own predict_proba


def test_a_sklearn_pipeline_ending_in_hgb_with_categories_runs_compiled(ws, shared_dataset):
    """HistGradientBoosting's own categorical handling after an ordinal encoder (unknown and
    missing categories: NaN), missing numbers passed through, and Poisson's ``exp`` link."""
    frame = pd.read_csv(shared_dataset("california-housing.csv"), nrows=5000)
    y = frame.pop("median_house_value")
    assert frame["total_bedrooms"].isna().any()
    numeric = [c for c in frame.columns if c != "ocean_proximity"]
    prepare = ColumnTransformer(
        [
            ("numbers", "passthrough", numeric),
            (
                "codes",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                ["ocean_proximity"],
            ),
        ]
    )
    model = HistGradientBoostingRegressor(
        loss="poisson", max_iter=40, categorical_features=[len(numeric)], random_state=0
    )
    fitted = Pipeline([("prepare", prepare), ("model", model)]).fit(frame[:4000], y[:4000])
    registered = _register(ws, fitted, "housing-hgb-pipeline", frame[:4000])
    runner = runner_for(registered)
    assert isinstance(runner, PipelineRunner)
    assert runner._forest is not None
    _same_answers(runner, registered, frame[4000:])


def test_a_sklearn_regression_pipeline_runs_compiled(ws, shared_dataset):
    frame = pd.read_csv(shared_dataset("california-housing.csv"), nrows=5000)
    target = "median_house_value"
    X, y = frame.drop(columns=[target]), frame[target]
    X = X.assign(near_ocean=X["ocean_proximity"].map(lambda v: "yes" if "OCEAN" in v else "no"))
    fitted = _sklearn_pipeline(X, Ridge()).fit(X[:4000], y[:4000])
    model = _register(ws, fitted, "housing-pipeline", X[:4000])
    runner = runner_for(model)
    assert isinstance(runner, PipelineRunner)
    _same_answers(runner, model, X[4000:])


def test_a_pipeline_step_that_is_not_compiled_keeps_a_checked_path(ws, adult_rows):
    from sklearn.preprocessing import FunctionTransformer

    X, y = adult_rows.drop(columns=[TARGET]), adult_rows[TARGET]
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    fitted = Pipeline(
        [("log", FunctionTransformer(np.log1p)), ("model", LogisticRegression(max_iter=300))]
    ).fit(X[numeric][:4000].clip(lower=0), y[:4000])
    model = _register(ws, fitted, "adult-function", X[numeric][:4000].clip(lower=0))
    assert not isinstance(runner_for(model), PipelineRunner)


def _pipeline(kinds: dict[str, str], output: str, estimator: Any, X, y) -> Pipeline:
    encoder = TabularEncoder(kinds=kinds, output=output, max_categories=8)
    return Pipeline([("encode", encoder), ("model", estimator)]).fit(X, y)


@pytest.fixture(scope="module")
def ensemble(adult_rows) -> tuple[TrainedModel, pd.DataFrame, pd.DataFrame]:
    """forgeml's model of every member kind training gives: LightGBM, XGBoost and
    HistGradientBoosting on the native encoding, a forest on the ordinal one, a linear model
    on the dense one, and a bag of fold models; with rare categories sharing one code (at
    most 8 kept per column) and their frequencies."""
    frame = adult_rows.drop(columns=[TARGET])
    X = frame.astype({c: object for c in frame.columns if frame[c].dtype == "category"})
    y = (adult_rows[TARGET] == ">50K").astype(int)
    kinds = infer_column_kinds(X)
    fit_X, fit_y = X[:4000], y[:4000]
    members = [
        _pipeline(kinds, "native", lgb.LGBMClassifier(n_estimators=30, verbose=-1), fit_X, fit_y),
        _pipeline(
            kinds,
            "native",
            xgb.XGBClassifier(n_estimators=30, enable_categorical=True, tree_method="hist"),
            fit_X,
            fit_y,
        ),
        _pipeline(
            kinds,
            "ordinal",
            RandomForestClassifier(n_estimators=20, random_state=0),
            fit_X,
            fit_y,
        ),
        _pipeline(kinds, "dense", LogisticRegression(max_iter=300), fit_X, fit_y),
        _pipeline(
            kinds,
            "native",
            HistGradientBoostingClassifier(
                max_iter=20, categorical_features="from_dtype", random_state=0
            ),
            fit_X,
            fit_y,
        ),
        FoldBag(
            pipelines=[
                _pipeline(
                    kinds,
                    "native",
                    lgb.LGBMClassifier(n_estimators=20, random_state=s, verbose=-1),
                    fit_X[s * 1000 :],
                    fit_y[s * 1000 :],
                )
                for s in range(2)
            ],
            task="binary",
        ),
    ]
    model = TrainedModel(
        members=members,
        weights=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1],
        task="binary",
        feature_columns=list(X.columns),
        classes=["<=50K", ">50K"],
        threshold=0.4,
        families=["lgbm", "xgb", "rf", "linear", "hgb", "lgbm"],
    )
    return model, fit_X, X[4000:]


def test_trained_ensembles_run_compiled(ws, ensemble):
    trained, fit_X, held_out = ensemble
    model = _register(ws, trained, "adult-ensemble", fit_X)
    runner = runner_for(model)
    assert isinstance(runner, CompiledRunner)
    _same_answers(runner, model, held_out)
    # and the answers are the trained model's own
    columns = _columns(model, held_out)
    labels, proba = runner.run(columns, len(held_out))
    np.testing.assert_allclose(proba, trained.predict_proba(held_out), rtol=0, atol=1e-12)
    assert labels == trained.predict(held_out).tolist()


def test_compiled_members_avoid_dataframes(ensemble):
    trained = ensemble[0]
    compiled = trained.compile_for_serving()
    assert compiled.direct  # HistGradientBoosting too: compiled to its trees
    assert trained.families[4] == "hgb"


def test_compiled_regression_matches(ws, shared_dataset):
    frame = pd.read_csv(shared_dataset("bike-sharing-hour.csv"), nrows=5000)
    y = frame.pop("cnt")
    X = frame.drop(columns=["casual", "registered", "instant"])
    kinds = infer_column_kinds(X)
    assert "datetime" in kinds.values()
    members = [
        _pipeline(
            kinds, "native", lgb.LGBMRegressor(n_estimators=30, verbose=-1), X[:4000], y[:4000]
        ),
        _pipeline(kinds, "dense", Ridge(), X[:4000], y[:4000]),
    ]
    trained = TrainedModel(
        members=members, weights=[0.7, 0.3], task="regression", feature_columns=list(X.columns)
    )
    model = _register(ws, trained, "bike-compiled", X[:4000])
    runner = runner_for(model)
    assert isinstance(runner, CompiledRunner)
    _same_answers(runner, model, X[4000:])


def test_a_fast_runner_that_disagrees_is_not_used(ws, ensemble, monkeypatch, caplog):
    trained, fit_X, _ = ensemble
    model = _register(ws, trained, "adult-ensemble-off", fit_X)
    original = CompiledRunner.run

    def off_by_a_little(self, columns, n):
        labels, proba = original(self, columns, n)
        return labels, proba + 1e-9

    monkeypatch.setattr(CompiledRunner, "run", off_by_a_little)
    with caplog.at_level("WARNING", logger="forgeml.serve"):
        runner = runner_for(model)
    assert type(runner) is TypedFrameRunner
    assert "CompiledRunner disagrees with the checked path" in caplog.text


def test_a_model_without_reference_rows_takes_the_checked_path(ws, ensemble):
    trained = ensemble[0]
    version = fm.register(trained, name="adult-no-sample", workspace=ws).version
    model = fm.load(f"adult-no-sample@{version}", workspace=ws)
    assert model.reference() is None
    assert type(runner_for(model)) is FrameRunner


def test_small_frames_are_predicted_compiled_with_the_same_numbers(ensemble):
    trained, _, held_out = ensemble
    direct = TrainedModel(
        members=[trained.members[i] for i in (0, 1, 2, 3, 5)],
        weights=[0.3, 0.3, 0.2, 0.1, 0.1],
        task="binary",
        feature_columns=trained.feature_columns,
        classes=trained.classes,
        threshold=0.45,
    )
    batch = direct.predict_proba(held_out)  # 2,000 rows: each member through its pipeline
    assert direct._compiled() is not None
    for i in range(0, len(held_out), 50):
        one = direct.predict_proba(held_out.iloc[i : i + 1])
        np.testing.assert_allclose(one, batch[i : i + 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(direct.predict_proba(held_out[:100]), batch[:100], atol=1e-12)
    assert direct.predict(held_out[:100]).tolist() == direct.predict(held_out).tolist()[:100]
    assert "_compiled_model" not in direct.__getstate__()  # a cache, never saved
    # with the HistGradientBoosting member: compiled too, the same numbers
    batch = trained.predict_proba(held_out)
    assert trained._compiled() is not None
    for i in range(0, len(held_out), 50):
        one = trained.predict_proba(held_out.iloc[i : i + 1])
        np.testing.assert_allclose(one, batch[i : i + 1], rtol=0, atol=1e-12)


def test_the_compiled_encoder_encodes_one_row_as_the_same_row_of_a_batch(adult_rows):
    from forgeml.train._compiled import compile_encoder

    X = adult_rows.drop(columns=[TARGET]).head(3000).copy()
    X["note"] = X["occupation"].astype(str) + " at " + X["workclass"].astype(str)
    kinds = {**infer_column_kinds(X.drop(columns=["note"])), "note": "text"}
    # few categories kept per column: the rarer ones share a code and carry their frequency
    encoder = TabularEncoder(kinds=kinds, output="native", max_categories=5).fit(X)
    assert encoder.frequencies_
    names, encode = compile_encoder(encoder)
    rows = X.head(30).astype(object).where(X.head(30).notna(), None)
    columns = {c: rows[c].tolist() for c in rows.columns}
    # the odd values a request may hold: missing, never seen, numbers as text, booleans
    odd = {"age": [None, "41", True, 1e308], "workclass": [None, "Astronaut", 3, float("nan")]}
    for name, values in odd.items():
        columns[name][: len(values)] = values
    columns["note"][:2] = [None, 7]
    del columns["race"]  # a column the request lacks reads as missing
    batch = encode(columns, 30)
    np.testing.assert_array_equal(batch, encoder.codes(pd.DataFrame(columns, dtype=object)))
    for i in range(30):
        one = encode({c: v[i : i + 1] for c, v in columns.items()}, 1)
        np.testing.assert_array_equal(one, batch[i : i + 1])
    assert len(names) == batch.shape[1]
