"""Import from directories written by the real ``mlflow`` package."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from forgeml import registry
from forgeml.errors import InputError

mlflow = pytest.importorskip("mlflow")


def _save(kind, model, path, X):
    with warnings.catch_warnings():  # MLflow's own deprecation and packaging warnings
        warnings.simplefilter("ignore")
        module = getattr(mlflow, kind)
        module.save_model(model, str(path), input_example=X.head(3))


def test_import_a_sklearn_pipeline_saved_by_mlflow(sqlite_workspace, adult, tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = adult[["age", "hours_per_week", "sex", "race"]]
    y = adult["income"]
    model = Pipeline(
        [
            ("pre", ColumnTransformer(
                [("n", StandardScaler(), ["age", "hours_per_week"]),
                 ("c", OneHotEncoder(handle_unknown="ignore"), ["sex", "race"])]
            )),
            ("m", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, y)  # fmt: skip
    _save("sklearn", model, tmp_path / "sk", X)
    v = registry.import_mlflow(tmp_path / "sk", name="from-mlflow", workspace=sqlite_workspace)
    loaded = registry.load(v.ref, workspace=sqlite_workspace)
    assert loaded.metadata["model"]["format"] == "skops"
    assert loaded.signature.names == ("age", "hours_per_week", "sex", "race")
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_import_a_lightgbm_booster_saved_by_mlflow(sqlite_workspace, adult, tmp_path):
    import lightgbm as lgb

    X = adult[["age", "education_num", "hours_per_week", "capital_gain"]]
    y = (adult["income"] == ">50K").astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), num_boost_round=20
    )
    _save("lightgbm", booster, tmp_path / "lgb", X)
    v = registry.import_mlflow(tmp_path / "lgb", name="lgb", workspace=sqlite_workspace)
    loaded = registry.load(v.ref, workspace=sqlite_workspace)
    assert (v.flavor, loaded.task, loaded.classes) == ("lightgbm", "binary", (0, 1))
    assert np.array_equal(loaded.predict_proba(X)[:, 1], booster.predict(X))


def test_a_pickle_needs_trust(sqlite_workspace, tiny, tiny_model, tmp_path):
    X, _ = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            tiny_model, str(tmp_path / "pk"), serialization_format="cloudpickle"
        )
    with pytest.raises(InputError, match="trust"):
        registry.import_mlflow(tmp_path / "pk", name="pk", workspace=sqlite_workspace)
    v = registry.import_mlflow(tmp_path / "pk", name="pk", trust=True, workspace=sqlite_workspace)
    loaded = registry.load(v.ref, workspace=sqlite_workspace)
    assert loaded.metadata["model"]["format"] == "skops"  # stored safely from now on
    assert np.array_equal(loaded.predict(X), tiny_model.predict(X))


def test_an_unsupported_flavor_is_one_line_and_exit_2(tmp_path):
    folder = tmp_path / "torch-model"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pytorch\n"
        "  pytorch:\n    model_data: data\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(tmp_path / "ws"), "models",
         "import-mlflow", str(folder), "--name", "t"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "flavor pytorch" in result.stderr and "sklearn, lightgbm, xgboost" in result.stderr
