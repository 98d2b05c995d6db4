"""What every member of a compiled model reads the same way is computed once per call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from forgeml.train import TabularEncoder, TrainedModel, _preprocess, infer_column_kinds

FIT_ROWS = 3000


@pytest.fixture(scope="module")
def bike(shared_dataset: Any) -> pd.DataFrame:
    frame = pd.read_csv(shared_dataset("bike-sharing-hour.csv"), nrows=4000)
    return frame.drop(columns=["casual", "registered", "instant"])


def _member(X: pd.DataFrame, y: pd.Series, seed: int, max_categories: int) -> Pipeline:
    encoder = TabularEncoder(
        kinds=infer_column_kinds(X), output="native", max_categories=max_categories
    )
    model = HistGradientBoostingRegressor(
        max_iter=20 + 5 * seed, categorical_features="from_dtype", random_state=seed
    )
    return Pipeline([("encode", encoder), ("model", model)]).fit(X[:FIT_ROWS], y[:FIT_ROWS])


def test_a_date_column_is_parsed_once_per_call_for_every_member(bike, monkeypatch):
    X, y = bike.drop(columns=["cnt"]), bike["cnt"]
    assert infer_column_kinds(X)["dteday"] == "datetime"
    members = [_member(X, y, seed, 8 + seed) for seed in range(4)]
    trained = TrainedModel(
        members=members,
        weights=[0.4, 0.3, 0.2, 0.1],
        task="regression",
        feature_columns=list(X.columns),
        families=["hgb"] * 4,
    )
    held_out = X[FIT_ROWS:]
    expected = trained.predict(held_out)  # 1,000 rows: through the fitted pipelines
    assert trained.__dict__.get("_compiled_model") is None

    parses = []
    parse = _preprocess._to_datetime

    def counted(values: pd.Series) -> pd.Series:
        parses.append(len(values))
        return parse(values)

    monkeypatch.setattr(_preprocess, "_to_datetime", counted)
    for i in range(0, len(held_out), 101):
        before = len(parses)
        one = trained.predict(held_out.iloc[i : i + 1])
        assert len(parses) - before == 1  # four members, one parse
        np.testing.assert_allclose(one, expected[i : i + 1], rtol=1e-12, atol=1e-9)
    compiled = trained._compiled()
    assert compiled is not None and compiled.direct
    before = len(parses)
    few = trained.predict(held_out.iloc[:50])
    assert parses[before:] == [50]
    np.testing.assert_allclose(few, expected[:50], rtol=1e-12, atol=1e-9)
