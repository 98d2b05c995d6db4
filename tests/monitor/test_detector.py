"""DriftDetector and fm.monitor.drift on real tables: shape of the result, decisions, reuse."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import forgeml as fm
from forgeml.errors import InputError, SchemaMismatchError
from forgeml.monitor import ColumnDrift, DriftDetector, DriftReport, drift


def test_report_has_one_column_result_per_compared_column(bike_months):
    ref, cur = bike_months[(2011, 1)], bike_months[(2011, 7)]
    report = fm.monitor.drift(ref, cur, multivariate=False)
    assert isinstance(report, DriftReport)
    names = [c.column for c in report.columns]
    assert "instant" not in names  # an identifier: skipped, with its reason
    assert dict(report.skipped)["instant"].startswith("identifier")
    assert names == [c for c in ref.columns if c != "instant"]
    temp = report["temp"]
    assert isinstance(temp, ColumnDrift)
    assert (temp.kind, temp.test) == ("numeric", "ks")
    assert temp.threshold == max(temp.null_threshold, temp.min_effect)
    assert temp.drifted == (temp.effect_size > temp.threshold)
    assert temp.n_reference == len(ref) and temp.n_current == len(cur)
    assert report.n_reference == len(ref) and report.n_current == len(cur)
    assert report.drifted and "temp" in report.drifted_columns
    assert report.share_drifted == pytest.approx(
        sum(c.drifted for c in report.columns) / len(report.columns)
    )
    assert "Bonferroni" in report.rule and f"{len(cur):,}" in report.rule


def test_ks_distance_matches_scipy(bike_months):
    from scipy.stats import ks_2samp

    ref, cur = bike_months[(2011, 1)], bike_months[(2011, 5)]
    report = drift(ref, cur, multivariate=False)
    # exact where every current value is a reference value (bins are the distinct values)
    for column in ("hr", "weathersit", "weekday"):
        expected = ks_2samp(ref[column], cur[column]).statistic
        assert report[column].effect_size == pytest.approx(expected, abs=1e-12)
    # otherwise the gap is read at the reference's values only: never larger, barely smaller
    for column in ("cnt", "temp", "hum"):
        expected = ks_2samp(ref[column], cur[column]).statistic
        assert expected - 0.01 <= report[column].effect_size <= expected + 1e-12


def test_json_round_trips(bike_months):
    report = drift(bike_months[(2011, 1)], bike_months[(2011, 2)], multivariate=False)
    data = json.loads(report.to_json())
    assert data["drifted"] == report.drifted
    assert {c["column"] for c in data["columns"]} == {c.column for c in report.columns}
    assert data["columns"][0]["histogram"]["reference"]


def test_fitted_detector_gives_the_same_answer_whatever_the_order(bike_months):
    detector = DriftDetector(categorical=["weathersit"], multivariate=False).fit(
        bike_months[(2011, 1)]
    )
    windows = [bike_months[(2011, m)] for m in (2, 3, 4)]
    first = [detector.score(w).to_dict() for w in windows]
    again = [detector.score(w).to_dict() for w in reversed(windows)][::-1]
    for a, b in zip(first, again, strict=True):
        a.pop("seconds"), b.pop("seconds")
        assert a == b
    assert detector.score(windows[0])["weathersit"].test == "jensen_shannon"


def test_categorical_column_reports_unseen_categories(hotel):
    ref = hotel[hotel["hotel"] == "City Hotel"].iloc[:5000]
    cur = ref.copy()
    cur.loc[cur.index[:500], "meal"] = "Brunch"
    report = drift(ref, cur, columns=["meal", "adr"], multivariate=False)
    meal = report["meal"]
    assert meal.kind == "categorical" and meal.test == "jensen_shannon"
    assert meal.unseen_categories == (("Brunch", 500),)
    assert meal.unseen_share == pytest.approx(500 / 5000)
    assert not report["adr"].drifted and report["adr"].effect_size == 0


def test_out_of_range_and_missing_rates(bike_months):
    ref = bike_months[(2011, 6)]
    cur = ref.copy()
    cur.loc[cur.index[:72], "temp"] = 1.5  # the data lies in 0..1
    cur.loc[cur.index[72:144], "hum"] = np.nan
    report = drift(ref, cur, columns=["temp", "hum"], multivariate=False)
    assert report["temp"].out_of_range_share == pytest.approx(72 / len(cur))
    # the picture covers the values outside the reference's range too
    picture = report["temp"].histogram
    assert picture.edges[-1] == 1.5 and sum(picture.current) == pytest.approx(1.0)
    assert picture.current[-1] == pytest.approx(72 / len(cur))
    assert report["hum"].missing_rate_ref == 0
    assert report["hum"].missing_rate_cur == pytest.approx(72 / len(cur))


def test_bad_input_is_named():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=200), "b": ["x", "y"] * 100})
    with pytest.raises(InputError, match="at least 100"):
        DriftDetector().fit(ref.iloc[:20])
    with pytest.raises(InputError, match="`alpha` parameter of DriftDetector"):
        DriftDetector(alpha=2).fit(ref)
    detector = DriftDetector(multivariate=False).fit(ref)
    with pytest.raises(InputError, match="empty"):
        detector.score(ref.iloc[:0])
    with pytest.raises(SchemaMismatchError, match="lacks reference columns: 'b'"):
        detector.score(ref[["a"]])
    with pytest.raises(SchemaMismatchError, match=r"'a' is numeric.*'oops'"):
        detector.score(ref.assign(a=["oops"] * 200))
    with pytest.raises(SchemaMismatchError, match="only in the current: 'c'"):
        drift(ref, ref.assign(c=1))
    with pytest.raises(InputError, match="not fitted"):
        DriftDetector().score(ref)
    # a column without any value in the reference is left out, with the reason
    report = drift(ref.assign(c=np.nan), ref.assign(c=1.0), multivariate=False)
    assert dict(report.skipped) == {"c": "no value in the reference"}
    assert [c.column for c in report.columns] == ["a", "b"]


def test_psi_on_request(hotel):
    ref = hotel.iloc[:20_000]
    cur = hotel.iloc[40_000:45_000]
    report = drift(
        ref, cur, columns=["meal", "lead_time"], numeric_test="psi",
        categorical_test="psi", multivariate=False,
    )  # fmt: skip
    meal, lead = report["meal"], report["lead_time"]
    assert meal.test == lead.test == "psi"
    # PSI over the reference's categories (none unseen, none missing here)
    p = ref["meal"].value_counts(normalize=True)
    q = cur["meal"].value_counts(normalize=True).reindex(p.index, fill_value=0)
    p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert meal.effect_size == pytest.approx(float(((q - p) * np.log(q / p)).sum()), rel=1e-9)
    # numbers: ten bins at the reference's deciles
    cuts = np.quantile(ref["lead_time"], np.linspace(0, 1, 11)[1:-1])
    p = np.bincount(np.searchsorted(cuts, ref["lead_time"], side="right"), minlength=10)
    q = np.bincount(np.searchsorted(cuts, cur["lead_time"], side="right"), minlength=10)
    p, q = np.maximum(p / p.sum(), 1e-4), np.maximum(q / q.sum(), 1e-4)
    assert lead.effect_size == pytest.approx(float(((q - p) * np.log(q / p)).sum()), abs=0.02)
    assert lead.drifted and lead.p_value < 1e-6 and lead.threshold >= 0.1
    with pytest.raises(InputError, match="`numeric_test` parameter"):
        drift(ref, cur, numeric_test="t-test")


def test_small_window_is_scored_without_the_classifier(bike_months):
    detector = DriftDetector().fit(bike_months[(2011, 1)])
    report = detector.score(bike_months[(2011, 7)].iloc[:30])
    assert report.multivariate is not None and report.multivariate.auc is None
    assert "fewer than 50 rows" in (report.multivariate.skipped or "")
    assert "domain classifier" not in report.rule
    # thresholds widen on 30 rows; a July against January is still obvious
    assert report["temp"].null_threshold > 0.25 and report["temp"].drifted
    assert not report["hr"].drifted
