"""Quality checks on real data: injected problems are found, the clean original has no errors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forgeml import data
from forgeml.data import Severity


def _checks(report, check):
    return {f.column for f in report.by_check(check)}


def test_clean_adult_has_no_errors(ws, adult_path):
    version = data.add(adult_path, name="adult", target="income", workspace=ws)
    assert version.quality.errors == ()
    assert data.validate("adult", workspace=ws).failed() is False


def test_injected_problems_are_each_found(ws, adult_frame):
    rng = np.random.default_rng(7)
    frame = adult_frame.copy()
    frame["batch"] = "2024-q1"  # constant
    frame["income_copy"] = (frame["income"] == ">50K").astype(int)  # leaked target
    mixed = rng.integers(0, 100, len(frame)).astype(str).astype(object)
    mixed[rng.random(len(frame)) < 0.05] = "unknown"
    frame["score"] = mixed  # numbers mixed with words
    frame = pd.concat([frame, frame.sample(400, random_state=1)], ignore_index=True)
    report = data.add(frame, name="dirty", target="income", workspace=ws).quality
    duplicates = report.by_check("duplicates")
    assert duplicates and duplicates[0].value >= 400
    assert "batch" in _checks(report, "constant")
    assert _checks(report, "leakage") == {"income_copy"}
    assert report.by_check("leakage")[0].severity is Severity.ERROR
    assert "score" in _checks(report, "mixed_types")
    assert data.validate("dirty", workspace=ws).failed()


def test_target_checks(ws):
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "label": np.where(rng.random(n) < 0.02, "fraud", "ok"),
            "customer_id": np.arange(n) + 10_000,
        }
    )
    frame.loc[:9, "label"] = None
    report = data.add(frame, name="fraud", target="label", workspace=ws).quality
    assert report.by_check("target_missing")[0].severity is Severity.ERROR
    assert _checks(report, "class_imbalance") == {"label"}
    assert _checks(report, "identifier") == {"customer_id"}
    assert not report.by_check("leakage")


def test_dates_that_do_not_parse_and_high_cardinality(ws):
    n = 3000
    rng = np.random.default_rng(1)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    when = days.strftime("%Y-%m-%d").to_numpy(dtype=object)
    when[:25] = "not a date"
    frame = pd.DataFrame(
        {"when": when, "shop": [f"shop-{i}" for i in rng.integers(0, 400, n)], "y": rng.random(n)}
    )
    report = data.add(frame, name="shops", workspace=ws).quality
    unparseable = report.by_check("unparseable_dates")
    assert unparseable and unparseable[0].value == 25
    assert _checks(report, "high_cardinality") == {"shop"}
