"""A served regressor (California housing): true RMSE and MAE per window from delayed labels
equal scikit-learn's; no confidence estimate; prediction drift on the predicted value."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

import forgeml as fm
from forgeml.monitor import served_report
from forgeml.store import PredictionRecord

from .conftest import DAY, T0

TARGET = "median_house_value"


def test_true_regression_metrics_per_window(
    sqlite_workspace, shared_dataset: Callable[[str], Path]
):
    ws = sqlite_workspace
    frame = pd.read_csv(shared_dataset("california-housing.csv"))
    frame["ocean_proximity"] = frame["ocean_proximity"].astype("category")
    train, later = frame.iloc[:8000], frame.iloc[8000:10000]
    X = train.drop(columns=[TARGET])
    model = lgb.LGBMRegressor(n_estimators=50, random_state=0, verbose=-1).fit(X, train[TARGET])
    fm.register(model, name="houses", sample=X, workspace=ws)
    fm.registry.promote("houses", 1, workspace=ws)
    loaded = fm.load("houses@production", workspace=ws)
    inputs = later.drop(columns=[TARGET])
    predicted = loaded.predict(inputs)
    records, labels = [], {}
    for k, start in enumerate(range(0, len(later), 50)):
        part = inputs.iloc[start : start + 50].astype(object)
        part = part.where(part.notna(), None)
        request_id = str(uuid.uuid4())
        records.append(
            PredictionRecord(
                request_id=request_id,
                model="houses",
                version=1,
                role="primary",
                time_ms=T0 + (k % 2) * DAY + k,
                latency_ms=1.5,
                n_rows=len(part),
                inputs={c: part[c].tolist() for c in part.columns},
                outputs={"predictions": predicted[start : start + 50].tolist()},
                protocol="json",
            )
        )
        labels[request_id] = later[TARGET].iloc[start : start + 50].tolist()
    ws.predlog.write_predictions(records)
    ws.predlog.add_feedback(labels)
    report = served_report(
        "houses@production", window="1d", workspace=ws, n_bootstrap=100, now_ms=T0 + 3 * DAY
    )
    assert report.task == "regression" and report.calibration == ""
    assert len(report.windows) == 2
    truth, pred = later[TARGET].to_numpy(), np.asarray(predicted)
    request = np.arange(len(later)) // 50
    for day, w in enumerate(report.windows):
        mine = request % 2 == day
        assert w.estimated == {}
        assert w.true["rmse"]["value"] == pytest.approx(
            root_mean_squared_error(truth[mine], pred[mine]), rel=1e-12
        )
        assert w.true["mae"]["value"] == pytest.approx(
            mean_absolute_error(truth[mine], pred[mine]), rel=1e-12
        )
        assert w.true["rmse"]["lower"] <= w.true["rmse"]["value"] <= w.true["rmse"]["upper"]
        assert w.prediction_drift is not None and w.prediction_drift["column"] == "prediction"
