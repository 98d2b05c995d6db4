"""The building blocks: binning equals a binary search, null distributions hold their level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.monitor import _stats
from forgeml.monitor._columns import CategoricalColumn, NumericColumn


@pytest.mark.parametrize(
    "reference",
    [
        np.arange(0, 40, dtype=float),  # integers: table lookup with step 1
        np.round(np.linspace(0.02, 0.98, 49), 2),  # two decimals (bike's temp): step 0.02
        np.array([0.0, 2.0, 5.0, 11.0]),  # integers without a common step: binary search
        np.random.default_rng(1).normal(size=5000),  # continuous: quantile cuts
    ],
)
def test_bins_equal_a_binary_search_over_the_cuts(reference):
    column = NumericColumn(
        "x", pd.Series(reference), bins=1000, rng=np.random.default_rng(0), datetime=False
    )
    rng = np.random.default_rng(2)
    low, high = reference.min(), reference.max()
    values = np.concatenate(
        [
            reference,
            rng.uniform(low - 3, high + 3, 3000),
            rng.choice(reference, 3000),
            [np.nan, low - 100, high + 100, low, high],
        ]
    )
    index = np.searchsorted(column.cuts, values, side="right")
    if column._lookup is not None:
        assert np.array_equal(column._grid_index(values), index)
    size = column.cuts.size
    index[values > high] = size + 1
    index[np.isnan(values)] = size + 2
    counts, total = column.bin_counts(values)
    assert counts.tolist() == np.bincount(index, minlength=size + 3).tolist()
    assert counts[-1] == 1  # the NaN
    assert counts[0] == np.count_nonzero(values < low)
    assert counts[-2] == np.count_nonzero(values > high)
    assert total == pytest.approx(np.nansum(values))


def test_ks_null_keeps_its_level_on_continuous_samples():
    rng = np.random.default_rng(3)
    n, m, level, trials = 400, 250, 0.05, 4000
    null = _stats.ks_null(n, m)
    threshold = null.quantile(level)
    bins = np.quantile(rng.normal(size=100_000), np.linspace(0, 1, 501)[1:-1])
    ref = np.stack(
        [
            np.bincount(np.searchsorted(bins, rng.normal(size=n)), minlength=500)
            for _ in range(trials)
        ]
    )
    cur = np.stack(
        [
            np.bincount(np.searchsorted(bins, rng.normal(size=m)), minlength=500)
            for _ in range(trials)
        ]
    )
    rate = float((_stats.ks_distance(ref, cur) > threshold).mean())
    assert rate <= level + 0.01
    assert rate >= level / 3  # calibrated, not merely conservative


@pytest.mark.parametrize("statistic", ["jensen_shannon", "psi"])
def test_bootstrap_null_keeps_its_level_with_rare_categories(hotel, statistic):
    # the shares of hotel bookings' countries: 177 categories, most of them rare
    shares = hotel["country"].value_counts(normalize=True).to_numpy()
    function = _stats.jensen_shannon if statistic == "jensen_shannon" else _stats.psi
    rng = np.random.default_rng(4)
    for n, m in ((2000, 500), (20_000, 20_000)):
        null = _stats.quadratic_null(function, shares, n, m, n_bootstrap=500, rng=rng)
        ref = rng.multinomial(n, shares, size=20_000)
        cur = rng.multinomial(m, shares, size=20_000)
        draws = function(ref, cur)
        for level in (0.05, 0.005):
            rate = float((draws > null.quantile(level)).mean())
            assert level / 3 <= rate <= level * 1.6, (n, m, level, rate)


def test_categorical_column_bins_and_unseen_values():
    reference = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5 + [None] * 10)
    column = CategoricalColumn("x", reference, max_categories=2)
    assert column.labels == ("a", "b")
    assert column.counts.tolist() == [50, 30, 20, 0, 10]  # a, b, other, unseen, missing
    counts, unseen = column.current_counts(pd.Series(["a", "c", "e", "e", "f", None]))
    assert counts.tolist() == [1, 0, 1, 3, 1]
    assert unseen == [("e", 2), ("f", 1)]
    # numbers compared with categories written as text, and the reverse
    numbers = CategoricalColumn("n", pd.Series([1, 2, 2, 3, 3, 3] * 20), max_categories=10)
    assert numbers.labels == ("3", "2", "1")
    counts, unseen = numbers.current_counts(pd.Series(["1", "2", "9"]))
    assert counts.tolist() == [0, 1, 1, 0, 1, 0] and unseen == [("9", 1)]
