"""Triggers on real Electricity rows: performance decay, drift, schedule and new labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from forgeml.loop._policy import DriftTrigger, PerformanceTrigger
from forgeml.loop._triggers import (
    check_drift,
    check_new_labels,
    check_performance,
    check_schedule,
)

from .conftest import DAY, TARGET, WEEKS8

FEATURES = ["nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "period"]


def _logged(elec2: pd.DataFrame, start: int, n: int) -> pd.DataFrame:
    """Rows ``start..start+n`` as the log shows them: inputs, the answer of a model fitted on
    the first eight weeks, probabilities, the label, one request every 30 minutes."""
    first = elec2.iloc[:WEEKS8]
    model = LogisticRegression(max_iter=1000).fit(first[FEATURES], first[TARGET])
    rows = elec2.iloc[start : start + n]
    proba = model.predict_proba(rows[FEATURES])
    out = rows[FEATURES].copy()
    out["time_ms"] = np.arange(n) * 1_800_000
    out["prediction"] = model.classes_[proba.argmax(axis=1)]
    for i, c in enumerate(model.classes_):
        out[f"proba_{c}"] = proba[:, i]
    out["label"] = rows[TARGET].to_numpy()
    return out.reset_index(drop=True)


def test_performance_fires_once_the_latest_window_falls_below_the_first(elec2):
    rule = PerformanceTrigger(drop=0.05, window_rows=300)
    classes = ("DOWN", "UP")
    # a model fitted on the first eight weeks, served over the following months
    rows = _logged(elec2, WEEKS8, 120 * DAY)
    waiting, none = check_performance(
        rule, rows.iloc[:400], metric="accuracy", task="binary", classes=classes, baseline=None
    )
    assert not waiting.fired and none is None and "needs 600" in waiting.summary
    result, baseline = check_performance(
        rule, rows, metric="accuracy", task="binary", classes=classes, baseline=None
    )
    first = float(np.mean(rows["prediction"].iloc[:300] == rows["label"].iloc[:300]))
    last = float(np.mean(rows["prediction"].iloc[-300:] == rows["label"].iloc[-300:]))
    assert baseline["value"] == pytest.approx(first)
    assert result.detail["value"] == pytest.approx(last)
    assert result.fired == (first - last >= 0.05)
    assert "on the latest 300 rows" in result.summary
    # the same baseline is kept and reused
    again, kept = check_performance(
        rule, rows, metric="accuracy", task="binary", classes=classes, baseline=baseline
    )
    assert kept == baseline and again.fired == result.fired
    # after a retraining that kept the champion, only rows answered since count
    rearmed, _ = check_performance(
        rule,
        rows,
        metric="accuracy",
        task="binary",
        classes=classes,
        baseline=baseline,
        rearm_ms=int(rows["time_ms"].iloc[-100]),
    )
    assert not rearmed.fired and "99 rows after the last retraining attempt" in rearmed.summary
    # unlabelled rows: only the estimate works
    unlabelled = rows.assign(label=None)
    blind, _ = check_performance(
        rule, unlabelled, metric="accuracy", task="binary", classes=classes, baseline=None
    )
    assert not blind.fired and "waiting: 0 rows" in blind.summary
    estimated = PerformanceTrigger(drop=0.05, window_rows=300, estimated=True)
    guess, base = check_performance(
        estimated, unlabelled, metric="accuracy", task="binary", classes=classes, baseline=None
    )
    assert base is not None and "estimated accuracy" in guess.summary


def test_drift_fires_on_a_later_season_and_names_the_columns(elec2):
    reference = elec2.iloc[:WEEKS8][FEATURES]
    rule = DriftTrigger(share=0.3, window_rows=1000)
    later = elec2.iloc[30_000:31_000][FEATURES]
    fired = check_drift(rule, reference, later)
    assert fired.fired, fired.summary
    assert fired.detail["drifted"] and "columns drifted" in fired.summary
    waiting = check_drift(rule, reference, later.iloc[:10])
    assert not waiting.fired and "needs 1,000" in waiting.summary
    assert not check_drift(rule, None, later).fired


def test_schedule_and_new_labels():
    day = 86_400_000
    monday = 1_700_438_400_000  # 2023-11-20 00:00 UTC, a Monday
    due = check_schedule("0 3 * * *", monday, monday + 4 * 3_600_000)
    assert due.fired and "due since" in due.summary
    later = check_schedule("0 3 * * 0", monday, monday + day)
    assert not later.fired and "next at 2023-11-26 03:00 UTC" in later.summary
    assert check_new_labels(100, 150).fired
    assert not check_new_labels(100, 99).fired
