"""Every flavor evaluated through its loaded, signature-checked model; no pickle by default;
trusted pickles only when asked."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

import forgeml as fm
from forgeml import registry
from forgeml.config import Settings
from forgeml.store import Workspace

TARGET = "class"


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns, text as pandas categories (what LightGBM and XGBoost take)."""
    X = frame.drop(columns=[TARGET]).copy()
    for column in X.columns:
        if X[column].dtype == object or pd.api.types.is_string_dtype(X[column]):
            X[column] = X[column].astype("category")
    return X


def _cli(home, *args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FORGEML_USER": "ana"},
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _with_data(tmp_path, frame: pd.DataFrame) -> tuple[Workspace, str]:
    ws = Workspace(Settings(home=tmp_path / "ws"))
    path = tmp_path / "german.csv"
    frame.to_csv(path, index=False)
    fm.data.add(path, name="german", target=TARGET, workspace=ws)
    return ws, "german@1"


def test_lightgbm_with_category_columns_evaluates_from_the_cli(german, tmp_path):
    import lightgbm as lgb

    X = _categorical(german)
    model = lgb.LGBMClassifier(n_estimators=40, random_state=0, verbose=-1).fit(X, german[TARGET])
    ws, dataset = _with_data(tmp_path, german)
    with ws:
        registry.register(model, name="credit-lgbm", sample=X, workspace=ws)
        loaded = registry.load("credit-lgbm@1", workspace=ws)
        # the loaded model has the estimator surface and gives the estimator's answers
        assert list(loaded.classes_) == list(model.classes_)
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-12)
        assert list(loaded.predict(X)) == list(model.predict(X))
    result = _cli(tmp_path / "ws", "evaluate", "credit-lgbm@1", "--data", dataset, "--json")
    body = json.loads(result.stdout)
    expected = fm.evaluate(model, X, german[TARGET], explain=False, n_bootstrap=0)
    assert body["metrics"]["metrics"]["roc_auc"]["value"] == pytest.approx(
        expected.metrics["roc_auc"].value, abs=1e-9
    )
    assert body["explanation_method"] == "lightgbm.pred_contrib"


def test_xgboost_evaluates_through_the_loaded_model(german, tmp_path):
    import xgboost as xgb

    X = _categorical(german)
    y = (german[TARGET] == "bad").astype(int)
    model = xgb.XGBClassifier(
        n_estimators=30, max_depth=3, enable_categorical=True, tree_method="hist", random_state=0
    ).fit(X, y)
    with Workspace(Settings(home=tmp_path / "ws")) as ws:
        registry.register(model, name="credit-xgb", sample=X, workspace=ws)
        loaded = registry.load("credit-xgb@1", workspace=ws)
        assert loaded.metadata["model"]["format"] == "xgboost-ubj"
        raw = german.drop(columns=[TARGET])  # text columns: the signature makes them categories
        report = fm.evaluate(loaded, raw, y, n_bootstrap=0, max_explain_rows=100)
    assert report.task == "binary"
    assert report.explanation_method == "xgboost.pred_contribs"
    from sklearn.metrics import roc_auc_score

    assert report.metrics["roc_auc"].value == pytest.approx(
        roc_auc_score(y, model.predict_proba(X)[:, 1]), abs=1e-12
    )


def test_sklearn_pipeline_works_with_scikit_learn_tools(german, tmp_path):
    from sklearn.compose import make_column_transformer
    from sklearn.metrics import RocCurveDisplay, get_scorer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = german.drop(columns=[TARGET])
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    pre = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), text), remainder=StandardScaler()
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(X, german[TARGET])
    with Workspace(Settings(home=tmp_path / "ws")) as ws:
        registry.register(model, name="credit-sk", sample=X, workspace=ws)
        loaded = registry.load("credit-sk@1", workspace=ws)
        # scikit-learn sees a fitted classifier
        scorer = get_scorer("roc_auc")
        assert scorer(loaded, X, german[TARGET]) == pytest.approx(
            scorer(model, X, german[TARGET]), abs=1e-12
        )
        import matplotlib

        matplotlib.use("Agg")
        display = RocCurveDisplay.from_estimator(loaded, X, german[TARGET])
        assert display.roc_auc == pytest.approx(scorer(model, X, german[TARGET]), abs=1e-12)
        report = fm.evaluate(loaded, X, german[TARGET], n_bootstrap=0, explain=False)
    assert report.metrics["accuracy"].value == pytest.approx(
        float(np.mean(model.predict(X) == german[TARGET].to_numpy())), abs=1e-12
    )


def test_mlflow_imported_model_evaluates(german, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    import lightgbm as lgb

    X = german.drop(columns=[TARGET]).select_dtypes("number")
    y = (german[TARGET] == "bad").astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "seed": 0}, lgb.Dataset(X, y), num_boost_round=20
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.lightgbm.save_model(booster, str(tmp_path / "lgb"), input_example=X.head(3))
    with Workspace(Settings(home=tmp_path / "ws")) as ws:
        registry.import_mlflow(tmp_path / "lgb", name="credit-mlflow", workspace=ws)
        loaded = registry.load("credit-mlflow@1", workspace=ws)
        report = fm.evaluate(loaded, X, y, n_bootstrap=0, max_explain_rows=100)
    from sklearn.metrics import roc_auc_score

    assert report.metrics["roc_auc"].value == pytest.approx(
        roc_auc_score(y, booster.predict(X)), abs=1e-12
    )
    assert report.importance  # explained through the booster


def test_a_regressor_has_no_classes_or_probabilities(german, tmp_path):
    from sklearn.linear_model import Ridge

    X = german[["duration", "age"]]
    model = Ridge().fit(X, german["credit_amount"])
    with Workspace(Settings(home=tmp_path / "ws")) as ws:
        registry.register(model, name="amount", sample=X, workspace=ws)
        loaded = registry.load("amount@1", workspace=ws)
        assert not hasattr(loaded, "classes_") and not hasattr(loaded, "predict_proba")
        from sklearn.base import is_regressor

        assert is_regressor(loaded)
        report = fm.evaluate(loaded, X, german["credit_amount"], n_bootstrap=0, explain=False)
    assert report.task == "regression"


# -- no pickle by default ---------------------------------------------------------------------


class _DtypeHolder(ClassifierMixin, BaseEstimator):
    """A classifier holding a pandas dtype: pickle can store it, skops cannot."""

    def fit(self, X, y):
        self.inner_ = LogisticRegression().fit(X, y)
        self.classes_ = self.inner_.classes_
        self.dtype_ = pd.CategoricalDtype(["a", "b"])
        return self

    def predict(self, X):
        return self.inner_.predict(X)

    def predict_proba(self, X):
        return self.inner_.predict_proba(X)


def test_a_joblib_bundle_loads_only_when_trusted(tiny, tmp_path, caplog):
    X, y = tiny
    with Workspace(Settings(home=tmp_path / "ws")) as ws:
        with pytest.warns(UserWarning, match="joblib"):
            registry.register(_DtypeHolder().fit(X, y), name="pickled", sample=X, workspace=ws)
        with pytest.raises(registry.UnsafeModelError, match="trust_pickle=True"):
            registry.load("pickled@1", workspace=ws)
        with caplog.at_level(logging.WARNING, logger="forgeml.registry"):
            loaded = registry.load("pickled@1", workspace=ws, trust_pickle=True)
        assert "pickle" in caplog.text
        assert list(loaded.predict(X)) == list(loaded.model.predict(X))
        native, _ = _served_labels(ws, "pickled@1", X, trust_pickle=True)  # --trust-pickle
        assert native == loaded.predict(X).tolist()
    refused = _cli(tmp_path / "ws", "evaluate", "pickled@1", "--data", "x", check=False)
    assert refused.returncode == 2
    assert "--trust-pickle" in refused.stderr and "Traceback" not in refused.stderr


# -- what the trainer produces is stored without pickle ---------------------------------------

# (file, target, columns dropped, families): every family the trainer has, on every dataset
# named by the project's promise, on 2,000 rows each to keep the suite short.
TRAINED = {
    "adult": ("adult.csv", "income", ["split"], ["lgbm", "linear"]),
    "bank": ("bank-additional-full.csv", "y", ["duration"], ["xgb", "hgb"]),
    "bike": ("bike-sharing-hour.csv", "cnt", ["casual", "registered"], ["rf", "et"]),
    "california": ("california-housing.csv", "median_house_value", [], ["xgb", "mlp"]),
    "german": ("german-credit.csv", "class", [], ["lgbm", "hgb", "linear"]),
}


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_trained_models_are_stored_without_pickle(name, shared_dataset, tmp_path):
    file, target, dropped, families = TRAINED[name]
    frame = pd.read_csv(shared_dataset(file)).drop(columns=dropped)
    # every k-th row: bike's row number `instant` stays evenly spaced (an identifier)
    frame = frame.iloc[:: max(1, len(frame) // 2000)].head(2000).reset_index(drop=True)
    with Workspace(Settings(home=tmp_path / "ws")) as ws:
        result = fm.train(
            frame, target=target, time_budget=6, models=families, workspace=ws, max_trials=4
        )
        model = result.model
        if name == "german" and not model.is_ensemble:  # make sure an ensemble is covered
            from forgeml.train._model import TrainedModel

            other = fm.train(
                frame, target=target, time_budget=3, models=["rf"], workspace=ws, max_trials=1
            ).model
            model = TrainedModel(
                members=[*model.members, *other.members],
                weights=[0.5, 0.5],
                task=model.task,
                feature_columns=model.feature_columns,
                classes=model.classes,
                threshold=model.threshold,
                families=[*model.families, *other.families],
            )
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # the joblib fallback warns
            version = registry.register(
                model, name=f"{name}-model", sample=frame.drop(columns=[target]), workspace=ws
            )
        loaded = registry.load(version.ref, workspace=ws)  # no trust_pickle needed
        spec = loaded.metadata["model"]
        assert spec["format"] == "skops" and not spec.get("unsafe_format")
        rows = frame.drop(columns=[target]).head(200)
        inputs = rows.loc[:, list(loaded.signature.names)]
        if model.task == "regression":
            np.testing.assert_allclose(loaded.predict(inputs), model.predict(rows))
        else:
            np.testing.assert_allclose(loaded.predict_proba(inputs), model.predict_proba(rows))
            assert list(loaded.predict(inputs)) == list(model.predict(rows))
        if name == "bike":  # an identifier column is not asked for at serving time
            assert result.column_kinds["instant"] == "identifier"
            assert "instant" in result.feature_columns
            assert "instant" not in loaded.signature.names
            np.testing.assert_allclose(
                model.predict(rows.drop(columns=["instant"])), model.predict(rows)
            )


# -- the decision threshold -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bank(shared_dataset) -> pd.DataFrame:
    """3,000 rows of bank marketing (real data, 11% ``yes``), without ``duration``."""
    frame = pd.read_csv(shared_dataset("bank-additional-full.csv")).drop(columns=["duration"])
    return frame.sample(n=3000, random_state=0).reset_index(drop=True)


def _served_labels(ws: Workspace, ref: str, rows: pd.DataFrame, **options) -> tuple[list, list]:
    """Labels from the native and the MLflow protocol of a real server on 127.0.0.1."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from forgeml.serve import ServeOptions, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    served = ServeOptions(
        models=(ref,), port=port, log_predictions=False, access_log=False, **options
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(served, workspace=ws), host="127.0.0.1", port=port,
                       log_level="warning", lifespan="on")
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        name = ref.split("@")[0]
        native = httpx.post(f"{url}/v1/models/{name}/predict", json={"records": records})
        assert native.status_code == 200, native.text
        mlflow = httpx.post(f"{url}/invocations", json={"dataframe_records": records})
        assert mlflow.status_code == 200, mlflow.text
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    return native.json()["predictions"], mlflow.json()["predictions"]


def _batch_labels(home, ref: str, rows: pd.DataFrame, tmp_path) -> list:
    rows.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.parquet"
    _cli(home, "predict", ref, "--input", str(tmp_path / "in.csv"), "--output", str(out))
    return pd.read_parquet(out)["prediction"].tolist()


def test_a_tuned_threshold_gives_the_same_labels_everywhere(bank, tmp_path):
    home = tmp_path / "ws"
    rows = bank.drop(columns=["y"]).head(300)
    with Workspace(Settings(home=home)) as ws:
        result = fm.train(
            bank, target="y", time_budget=10, models=["lgbm"], max_trials=3, workspace=ws
        )
        # tuned on out-of-fold predictions (F1: the roc_auc default leaves labels open)
        assert result.model.threshold is not None and result.model.threshold != 0.5
        version = registry.register(result, name="bank-y", workspace=ws)
        loaded = registry.load(version.ref, workspace=ws)
        decision = loaded.metadata["decision"]
        assert decision["threshold"] == pytest.approx(result.model.threshold)
        assert decision["metric"] == "f1"
        proba = loaded.predict_proba(rows)[:, 1]
        expected = np.where(proba >= loaded.threshold, "yes", "no").tolist()
        assert loaded.predict(rows).tolist() == expected
        assert expected != np.where(proba >= 0.5, "yes", "no").tolist()  # it matters here
        native, mlflow = _served_labels(ws, version.ref, rows)
    assert native == expected and mlflow == expected
    assert _batch_labels(home, version.ref, rows, tmp_path) == expected


def test_models_threshold_registers_a_new_version_used_by_every_path(bank, tmp_path):
    import lightgbm as lgb

    home = tmp_path / "ws"
    X = _categorical(bank.rename(columns={"y": TARGET}))
    rows = bank.drop(columns=["y"]).head(300)
    model = lgb.LGBMClassifier(n_estimators=30, random_state=0, verbose=-1).fit(X, bank["y"])
    with Workspace(Settings(home=home)) as ws:
        registry.register(model, name="bank-lgbm", sample=X, workspace=ws)
        path = tmp_path / "bank.csv"
        bank.to_csv(path, index=False)
        fm.data.add(path, name="bank", target="y", workspace=ws)
    bad = _cli(home, "models", "threshold", "bank-lgbm@1", "1.5", check=False)
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr
    assert "Traceback" not in bad.stderr
    made = _cli(home, "models", "threshold", "bank-lgbm@1", "0.2", "--reason", "recall")
    assert "bank-lgbm@2" in made.stdout
    with Workspace(Settings(home=home)) as ws:
        first = registry.load("bank-lgbm@1", workspace=ws)
        second = registry.load("bank-lgbm@2", workspace=ws)
        assert first.threshold is None and second.threshold == 0.2
        assert second.metadata["decision"]["derived_from"] == "bank-lgbm@1"
        assert "decision threshold | 0.2" in second.card()
        # the same model file, stored once
        assert first.metadata["files"]["model.txt"] == second.metadata["files"]["model.txt"]
        proba = second.predict_proba(rows)[:, 1]
        np.testing.assert_array_equal(proba, first.predict_proba(rows)[:, 1])
        expected = np.where(proba >= 0.2, "yes", "no").tolist()
        assert second.predict(rows).tolist() == expected
        assert first.predict(rows).tolist() == np.where(proba >= 0.5, "yes", "no").tolist()
        native, mlflow = _served_labels(ws, "bank-lgbm@2", rows)  # the LightGBM fast path
    assert native == expected and mlflow == expected
    assert _batch_labels(home, "bank-lgbm@2", rows, tmp_path) == expected
    # evaluation uses the threshold and also reports the labels at 0.5
    report = json.loads(_cli(home, "evaluate", "bank-lgbm@2", "--data", "bank@1", "--json").stdout)
    assert report["threshold"] == 0.2
    assert report["metrics"]["threshold"] == 0.2
    assert report["metrics_at_default_threshold"]["threshold"] == 0.5
    assert any("at 0.5 on the same 3,000 rows" in note for note in report["notes"])


@pytest.mark.parametrize(("family", "output", "method"), [
    ("lgbm", "native", "lightgbm.pred_contrib"),
    ("linear", "dense", "shap.LinearExplainer"),
])  # fmt: skip
def test_a_trained_pipeline_is_explained_exactly_on_its_raw_columns(
    german, family, output, method, tmp_path
):
    import lightgbm as lgb
    from sklearn.pipeline import Pipeline

    from forgeml.evaluate import explain, raw_output
    from forgeml.train._model import TrainedModel
    from forgeml.train._preprocess import TabularEncoder
    from forgeml.train._task import infer_column_kinds

    X = german.drop(columns=[TARGET])
    y = (german[TARGET] == "bad").astype(int).to_numpy()
    kinds = infer_column_kinds(X)
    final = (
        lgb.LGBMClassifier(n_estimators=30, random_state=0, verbose=-1)
        if family == "lgbm"
        else LogisticRegression(max_iter=1000)
    )
    pipeline = Pipeline([("encode", TabularEncoder(kinds=kinds, output=output)), ("model", final)])
    pipeline.fit(X, y)
    model = TrainedModel(
        members=[pipeline], weights=[1.0], task="binary", feature_columns=list(X.columns),
        classes=[0, 1], families=[family],
    )  # fmt: skip
    assert model.explainable_model is pipeline
    shuffled = X[list(reversed(X.columns))].head(50)  # columns are matched by name
    explanation = explain(model.explainable_model, shuffled, background=X.head(100))
    assert explanation.columns == tuple(shuffled.columns)
    np.testing.assert_allclose(
        explanation.contributions.sum(axis=1) + explanation.base_values,
        raw_output(pipeline, shuffled),
        atol=1e-6,
    )
    report = fm.evaluate(model, X, y, n_bootstrap=0, max_explain_rows=100)
    assert report.explanation_method == method
    assert {c for c, _ in report.importance} <= set(X.columns)
