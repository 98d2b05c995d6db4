"""Inputs are checked against the signature (the documented handling in _signature.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml import registry
from forgeml.errors import SchemaMismatchError
from forgeml.registry import ExtraColumnsWarning


@pytest.fixture
def loaded(sqlite_workspace):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    X = pd.DataFrame({"age": [20, 30, 40, 50, 60, 70] * 5, "color": ["red", "blue", "green"] * 10})
    y = [0, 1] * 15
    model = Pipeline(
        [
            (
                "pre",
                ColumnTransformer([("c", OneHotEncoder(), ["color"])], remainder="passthrough"),
            ),
            ("m", LogisticRegression()),
        ]
    ).fit(X, y)
    registry.register(model, name="m", sample=X, workspace=sqlite_workspace)
    return registry.load("m@1", workspace=sqlite_workspace), model, X


def test_valid_rows_in_another_order_predict_the_same(loaded):
    model, fitted, X = loaded
    assert np.array_equal(model.predict(X[["color", "age"]]), fitted.predict(X))
    assert np.array_equal(model.predict(X.to_dict("records")), fitted.predict(X))


def test_missing_columns_are_named(loaded):
    model, _, X = loaded
    with pytest.raises(SchemaMismatchError, match="Missing input column 'age'"):
        model.predict(X[["color"]])


def test_wrong_types_and_unknown_categories_are_named(loaded):
    model, _, _ = loaded
    with pytest.raises(SchemaMismatchError, match=r"Column 'age' takes integer values; got 'old'"):
        model.predict({"age": ["old"], "color": ["red"]})
    with pytest.raises(
        SchemaMismatchError, match=r"'color' has categories .* never saw; got 'pink'"
    ):
        model.predict({"age": [30], "color": ["pink"]})
    with pytest.raises(SchemaMismatchError, match="'age' has 1 missing value"):
        model.predict({"age": [None], "color": ["red"]})


def test_numbers_as_text_are_converted(loaded):
    model, fitted, _ = loaded
    row = pd.DataFrame({"age": [30], "color": ["red"]})
    assert np.array_equal(model.predict({"age": ["30"], "color": ["red"]}), fitted.predict(row))


def test_extra_columns_are_dropped_with_a_warning(loaded):
    model, fitted, X = loaded
    with pytest.warns(ExtraColumnsWarning, match="'id'"):
        got = model.predict(X.assign(id=range(len(X))))
    assert np.array_equal(got, fitted.predict(X))


def test_unknown_categories_can_be_passed_to_the_model(sqlite_workspace, loaded):
    from forgeml.registry import UnknownCategoryWarning

    _, fitted, _ = loaded
    lenient = registry.load("m@1", workspace=sqlite_workspace, unknown_categories="pass")
    row = pd.DataFrame({"age": [30], "color": ["pink"]})
    with pytest.raises(ValueError, match="unknown categor"):  # this encoder refuses them itself
        fitted.predict(row)
    with pytest.warns(UnknownCategoryWarning, match="'pink'"), pytest.raises(ValueError):
        lenient.predict(row)


def test_explain_delegates_to_the_evaluation(loaded):
    model, _, X = loaded
    explanation = model.explain(X.head(4))
    assert explanation.columns == ("age", "color")
    assert explanation.contributions.shape == (4, 2)


def test_rows_of_the_training_dataset_are_taken_without_a_warning(german, tmp_path):
    """The target and the sensitive column (audited, not a model input) ride along silently;
    a column the training data never had is still named."""
    import warnings

    import forgeml as fm
    from forgeml.config import Settings
    from forgeml.store import Workspace

    ws = Workspace(Settings(home=tmp_path / "ws"))
    path = tmp_path / "german.csv"
    german.to_csv(path, index=False)
    fm.data.add(path, name="german", target="class", sensitive=["sex"], workspace=ws)
    result = fm.train(
        "german", time_budget=3, models=["linear"], evaluate=False, workspace=ws, seed=0
    )
    version = fm.register(result, name="credit", workspace=ws)
    model = fm.load(f"credit@{version.version}", workspace=ws)
    assert "sex" not in model.signature.names
    assert {"sex", "class"} <= set(model.signature.ignored)
    rows = german.head(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = model.predict(rows)
    assert len(labels) == 5
    with pytest.warns(ExtraColumnsWarning, match="'note'"):
        model.predict(rows.assign(note="x"))
