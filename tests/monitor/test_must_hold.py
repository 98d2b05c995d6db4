"""What drift detection must hold on real data (issue 16): monthly drift of bike sharing, false
alarms at 1,000 and 1,000,000 rows, power against a stated shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.monitor import DriftDetector

WEATHER = ("temp", "atemp", "hum", "windspeed", "weathersit")
WARM = (4, 5, 6, 7, 8, 9, 10)


def test_bike_sharing_flags_season_and_weather_as_the_year_moves_on(bike_months):
    detector = DriftDetector().fit(bike_months[(2011, 1)])
    reports = {key: detector.score(frame) for key, frame in bike_months.items() if key != (2011, 1)}
    for (year, month), report in reports.items():
        assert report.drifted  # dates move on: dteday always, and the domain classifier
        season = report["season"]
        # January to February is winter in both years: same season, no drift claimed
        if month in (1, 2):
            assert not season.drifted, (year, month)
        if month in (*WARM, 11):
            assert season.drifted, (year, month)
        if month in WARM:
            assert report["temp"].drifted and report["atemp"].drifted, (year, month)
            assert sum(report[c].drifted for c in WEATHER) >= 3, (year, month)
        # the hour of the day and holidays are spread alike in every month
        assert not report["hr"].drifted and not report["holiday"].drifted, (year, month)
    # the further into the warm months, the larger the temperature's effect
    effect = {key: r["temp"].effect_size for key, r in reports.items()}
    assert effect[(2011, 2)] < effect[(2011, 4)] < effect[(2011, 7)]
    assert effect[(2011, 7)] == 1.0  # no July hour as cold as any January hour
    assert reports[(2011, 7)]["temp"].out_of_range_share > 0.5


def _halves(period: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint random halves of ``period``, each cut to ``size`` rows when it has more,
    else resampled with replacement to ``size`` rows."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(period))
    half = len(period) // 2
    a, b = order[:half], order[half : 2 * half]
    if size <= half:
        a, b = a[:size], b[:size]
    else:
        a, b = rng.choice(a, size), rng.choice(b, size)
    return period.iloc[a].reset_index(drop=True), period.iloc[b].reset_index(drop=True)


def _false_alarms(period: pd.DataFrame, size: int, pairs: int = 50, **params) -> list[int]:
    alarms = []
    for seed in range(pairs):
        reference, current = _halves(period, size, seed)
        report = DriftDetector(random_state=seed, **params).fit(reference).score(current)
        if report.drifted:
            alarms.append(seed)
    return alarms


@pytest.fixture(scope="module")
def bike_2011(bike) -> pd.DataFrame:
    return bike[pd.to_datetime(bike["dteday"]).dt.year == 2011].reset_index(drop=True)


@pytest.fixture(scope="module")
def hotel_2016(hotel) -> pd.DataFrame:
    return hotel[hotel["arrival_date_year"] == 2016].reset_index(drop=True)


def test_false_alarms_at_1000_rows(bike_2011, hotel_2016):
    # 50 pairs of disjoint random halves of one year, 1,000 rows each: at most 5% alarms
    assert len(_false_alarms(bike_2011, 1000)) <= 2
    assert len(_false_alarms(hotel_2016, 1000)) <= 2


def test_false_alarms_at_1000_rows_without_a_minimum_effect(bike_2011, hotel_2016):
    # the calibrated thresholds alone keep the level (the minimum effect is not what saves it)
    assert len(_false_alarms(bike_2011, 1000, min_effect=0.0, multivariate=False)) <= 2
    assert len(_false_alarms(hotel_2016, 1000, min_effect=0.0, multivariate=False)) <= 2


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_false_alarms_at_a_million_rows(bike_2011):
    # Each half (4,322 distinct rows) resampled to 1,000,000 rows: the halves differ by the
    # chance of splitting 8,645 rows, which any p-value test calls significant at this size.
    assert len(_false_alarms(bike_2011, 1_000_000)) <= 2


def test_a_stated_shift_is_caught(hotel):
    # Stated shift: room prices (adr) up by a quarter, and a fifth of the bookings moved to the
    # market segment "Groups"; 2,000 bookings against 2,000 others, 50 repeats.
    caught = {"adr": 0, "market_segment": 0, "table": 0}
    others = 0
    n, repeats = 2000, 50
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(hotel))
        reference = hotel.iloc[order[:n]].reset_index(drop=True)
        current = hotel.iloc[order[n : 2 * n]].reset_index(drop=True)
        current["adr"] = current["adr"] * 1.25
        current.loc[rng.random(n) < 0.2, "market_segment"] = "Groups"
        report = DriftDetector(random_state=seed, multivariate=False).fit(reference).score(current)
        caught["adr"] += report["adr"].drifted
        caught["market_segment"] += report["market_segment"].drifted
        caught["table"] += report.drifted
        others += sum(c.drifted for c in report.columns if c.column not in caught)
    assert caught["adr"] >= 0.95 * repeats
    assert caught["market_segment"] >= 0.95 * repeats
    assert caught["table"] >= 0.95 * repeats
    assert others <= 0.05 * repeats  # the untouched columns stay quiet


def test_domain_classifier_catches_a_joint_shift_no_column_shows(bike):
    # Current rows keep every column's distribution but lose the link between the hour of the
    # day and the number of rentals: each column alone looks the same.
    year = bike[pd.to_datetime(bike["dteday"]).dt.year == 2012].reset_index(drop=True)
    reference, current = _halves(year, 4000, seed=0)
    rng = np.random.default_rng(1)
    current = current.assign(hr=rng.permutation(current["hr"].to_numpy()))
    columns = ["hr", "cnt", "casual", "registered", "temp", "workingday"]
    report = DriftDetector(columns=columns).fit(reference).score(current)
    assert not any(c.drifted for c in report.columns)
    mv = report.multivariate
    assert mv is not None and mv.drifted and mv.auc > mv.threshold
    assert mv.top_columns[0][0] == "hr"
    # and the same halves without the shuffle: no drift
    same = DriftDetector(columns=columns).fit(reference).score(_halves(year, 4000, seed=0)[1])
    assert not same.drifted and not same.multivariate.drifted
