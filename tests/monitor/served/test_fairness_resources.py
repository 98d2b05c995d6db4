"""Fairness per window and sensitive group once labels arrive (equal to a direct computation,
with intervals); the estimate calibrated on a labelled reference; cost per 1,000 predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from forgeml.monitor import served_report

from .conftest import DAY, MODEL, POSITIVE, REF, T0, TARGET, log_day, register_adult


def _label_everything(ws, adult: pd.DataFrame, rows: slice) -> pd.DataFrame:
    """Send the true labels of every logged request; returns the logged rows with labels."""
    logged = ws.predlog.predictions(MODEL)
    truth = adult[TARGET].iloc[rows].to_numpy()
    assert len(logged) == len(truth)
    labels: dict[str, list] = {}
    for request_id, label in zip(logged["request_id"], truth, strict=True):
        labels.setdefault(request_id, []).append(label)
    ws.predlog.add_feedback(labels)
    return ws.predlog.predictions(MODEL)


def test_fairness_per_window_and_group_equals_a_direct_computation(workspace, adult):
    register_adult(workspace, adult)
    log_day(workspace, adult.iloc[3000:3600], 0)
    log_day(workspace, adult.iloc[3600:4200], 1)
    rows = _label_everything(workspace, adult, slice(3000, 4200))
    report = served_report(
        REF,
        window="1d",
        sensitive=["sex"],
        workspace=workspace,
        n_bootstrap=200,
        now_ms=T0 + 5 * DAY,
    )
    assert len(report.windows) == 2
    for k, w in enumerate(report.windows):
        part = rows[(rows["time_ms"] >= T0 + k * DAY) & (rows["time_ms"] < T0 + (k + 1) * DAY)]
        assert w.labelled_rows == len(part) == 600
        assert w.true["accuracy"]["value"] == pytest.approx(
            accuracy_score(part["label"], part["prediction"]), abs=1e-12
        )
        selected = (part["prediction"] == POSITIVE).groupby(part["sex"], observed=True).mean()
        audit = w.fairness["sex"]["disparities"]
        dpd = audit["demographic_parity_difference"]
        assert dpd["value"] == pytest.approx(selected.max() - selected.min(), abs=1e-12)
        assert dpd["lower"] <= dpd["value"] <= dpd["upper"]
        assert w.values()["fairness.sex.demographic_parity_difference"] == dpd["value"]
        assert {g["group"] for g in w.fairness["sex"]["groups"]} == {"Male", "Female"}


def test_the_estimate_is_calibrated_on_the_held_out_rows_and_tracks_the_truth(
    sqlite_workspace, adult
):
    ws = sqlite_workspace
    register_adult(ws, adult, with_holdout=True)
    # new rows, neither trained on nor calibrated on, with categories the model knows (the
    # server refuses the others)
    new = adult.iloc[4000:6000]
    seen = adult.iloc[:3000]
    for column in new.columns:
        if isinstance(new[column].dtype, pd.CategoricalDtype):
            new = new[new[column].isna() | new[column].isin(seen[column].dropna().unique())]
    log_day(ws, new, 0)
    report = served_report(REF, window="1d", workspace=ws, n_bootstrap=200, now_ms=T0 + DAY)
    assert report.calibration.startswith("isotonic, on 1,000 held-out rows of adult-train@1")
    [before] = report.windows
    assert before.true == {}
    _label_everything(ws, new, slice(0, len(new)))
    report = served_report(REF, window="1d", workspace=ws, n_bootstrap=200, now_ms=T0 + DAY)
    [w] = report.windows
    assert w.estimated == before.estimated
    # same distribution as the held-out rows: the estimate lies in the true metric's interval
    for metric in ("accuracy", "roc_auc"):
        true = w.true[metric]
        assert true["lower"] <= w.estimated[metric] <= true["upper"], (metric, w.estimated, true)


def test_cost_per_thousand_predictions_from_the_price_per_core_hour(sqlite_workspace, adult):
    ws = sqlite_workspace
    register_adult(ws, adult)
    log_day(ws, adult.iloc[3000:3500], 0, per=25)
    report = served_report(
        REF, window="1d", workspace=ws, n_bootstrap=0, price_per_core_hour=0.5, now_ms=T0 + DAY
    )
    [w] = report.windows
    latencies = [2.0 + k % 3 for k in range(20)]  # as log_day records them
    busy = sum(latencies) / 1000
    assert w.resources["busy_seconds"] == pytest.approx(busy)
    assert w.resources["cost_per_1000"] == pytest.approx(busy / 3600 * 0.5 / 500 * 1000)
    assert any("CPU time and memory per model are not recorded" in n for n in report.notes)
    assert np.isfinite(w.values()["resources.cost_per_1000"])
