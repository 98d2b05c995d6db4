"""Splits: reproducible with a seed, disjoint, and faithful to their strategy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml import data
from forgeml.data._split import assign_parts
from forgeml.errors import ConflictError, InputError

FRACTIONS = (0.6, 0.2, 0.2)


def _parts(frame, **kwargs):
    return assign_parts(frame, fractions=FRACTIONS, **kwargs)


def test_stratified_split_is_reproducible_disjoint_and_stratified(adult_frame):
    a, used, _ = _parts(
        adult_frame, strategy="auto", seed=3, target="income", task="classification"
    )
    b, _, _ = _parts(adult_frame, strategy="stratified", seed=3, target="income")
    c, _, _ = _parts(adult_frame, strategy="stratified", seed=4, target="income")
    assert used == "stratified"
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert set(np.unique(a)) == {0, 1, 2}  # one part per row: the parts are disjoint
    overall = (adult_frame["income"] == ">50K").mean()
    for part in range(3):
        share = (adult_frame["income"][a == part] == ">50K").mean()
        assert share == pytest.approx(overall, abs=0.002)
        assert (a == part).mean() == pytest.approx(FRACTIONS[part], abs=0.001)


def test_time_split_is_reproducible_and_ordered(bike):
    a, used, params = _parts(bike, strategy="auto", seed=1, time_column="dteday")
    b, _, _ = _parts(bike, strategy="time", seed=99, time_column="dteday")
    assert used == "time" and params["column"] == "dteday"
    np.testing.assert_array_equal(a, b)  # a time split does not depend on the seed
    days = pd.to_datetime(bike["dteday"])
    assert days[a == 0].max() < days[a == 1].min()
    assert days[a == 1].max() < days[a == 2].min()
    assert (a == 0).mean() == pytest.approx(0.6, abs=0.01)


def test_group_split_keeps_each_group_in_one_part(compas):
    frame = compas.assign(person=compas["id"] % 900)
    a, used, _ = _parts(frame, strategy="auto", seed=5, id_column="person")
    b, _, _ = _parts(frame, strategy="group", seed=5, id_column="person")
    np.testing.assert_array_equal(a, b)
    assert used == "group"
    parts_per_group = pd.Series(a).groupby(frame["person"]).nunique()
    assert parts_per_group.max() == 1
    assert (a == 0).mean() == pytest.approx(0.6, abs=0.05)


def test_split_is_recorded_with_the_version_and_loads_by_part(ws, adult_frame):
    data.add(adult_frame, name="adult", target="income", workspace=ws)
    info = data.split("adult", fractions=FRACTIONS, seed=11, workspace=ws)
    again = data.split("adult@1", fractions=FRACTIONS, seed=11, workspace=ws)
    assert info == again and info.strategy == "stratified"
    version = data.get("adult", workspace=ws)
    assert version.split("default") == info
    parts = {p: data.load("adult", part=p, workspace=ws) for p in ("train", "validation", "test")}
    assert sum(len(f) for f in parts.values()) == len(adult_frame)
    assert {p: len(f) for p, f in parts.items()} == info.counts
    with pytest.raises(ConflictError, match="already has a split named 'default'"):
        data.split("adult", fractions=FRACTIONS, seed=12, workspace=ws)
    with pytest.raises(InputError, match="needs a time column"):
        data.split("adult", strategy="time", name="t", workspace=ws)
    with pytest.raises(InputError, match="sum to 1"):
        data.split("adult", fractions=(0.5, 0.2, 0.2), name="f", workspace=ws)
