"""The paired bootstrap: vectorised metrics equal the registered functions on every replicate."""

from __future__ import annotations

import numpy as np
import pytest

from forgeml.loop import paired_lead
from forgeml.loop._scoring import Outputs, _vectorised
from forgeml.metrics import get_metric


@pytest.fixture
def scored(elec2):
    """Two score vectors on 400 real rows: the scaled NSW price and demand, against the class."""
    rows = elec2.iloc[5000:5400]
    truth = (rows["class"] == "UP").to_numpy().astype(int)
    return truth, rows["nswprice"].to_numpy(), rows["nswdemand"].round(2).to_numpy()


@pytest.mark.parametrize("name", ["accuracy", "roc_auc"])
def test_vectorised_metrics_equal_the_registered_ones(scored, name):
    truth, _, b = scored
    spec = get_metric(name)
    rng = np.random.default_rng(0)
    w = np.stack(
        [
            np.bincount(rng.integers(0, len(truth), len(truth)), minlength=len(truth))
            for _ in range(20)
        ]
    ).astype(float)
    scores = b if name == "roc_auc" else (b > 0.4).astype(int)
    fast = _vectorised(name)(w, truth, scores)
    slow = [spec(truth, scores, sample_weight=row) for row in w]
    assert np.allclose(fast, slow)


def test_the_lead_interval_is_paired_and_seeded(scored):
    truth, a, b = scored
    classes = (0, 1)

    def out(score):
        return Outputs((score > 0.5).astype(int), np.c_[1 - score, score], classes)

    spec = get_metric("roc_auc")
    lead = paired_lead(spec, truth, out(a), out(b), n_bootstrap=500, seed=1)
    assert lead.lead == pytest.approx(lead.challenger - lead.champion)
    assert lead.lower <= lead.lead <= lead.upper
    assert paired_lead(spec, truth, out(a), out(b), n_bootstrap=500, seed=1) == lead
    same = paired_lead(spec, truth, out(a), out(a), n_bootstrap=200, seed=1)
    assert same.lead == 0 and same.lower == 0 and same.upper == 0
    loss = paired_lead(get_metric("log_loss"), truth, out(a), out(b), n_bootstrap=100)
    assert loss.lead == pytest.approx(loss.champion - loss.challenger)  # lower is better
    assert lead.rows == len(truth) == 400


def test_the_live_lead_of_two_halves_resamples_each_on_its_own(scored):
    from forgeml.loop._scoring import independent_lead

    truth, _, b = scored
    classes = (0, 1)

    def out(score):
        return Outputs((score > 0.5).astype(int), np.c_[1 - score, score], classes)

    spec = get_metric("roc_auc")
    flipped = 1 - b
    worse = independent_lead(spec, truth[:200], out(b[:200]), truth[200:], out(flipped[200:]))
    assert worse.lead < 0 and worse.upper < 0  # clearly worse: the interval says so
    # the same scores on interleaved halves: no lead beyond doubt
    same = independent_lead(spec, truth[::2], out(b[::2]), truth[1::2], out(b[1::2]))
    assert same.lower < 0 < same.upper


def test_a_decayed_champion_gives_way_to_a_challenger_that_is_not_worse(scored):
    from forgeml.loop._scoring import challenger_passes

    truth, a, _ = scored
    classes = (0, 1)
    spec = get_metric("roc_auc")

    def out(score):
        return Outputs((score > 0.5).astype(int), np.c_[1 - score, score], classes)

    # the champion: the price with a little seeded noise; the challenger: the price itself,
    # a little better on these rows but not beyond the interval's doubt
    noisy = np.clip(a + np.random.default_rng(3).normal(0, 0.004, len(a)), 0, 1)
    lead = paired_lead(spec, truth, out(noisy), out(a), n_bootstrap=500, seed=0)
    assert lead.lead > 0 and -0.01 < lead.lower < 0
    # not shown better: the superiority rule keeps the champion
    kept = challenger_passes(lead, margin=0.0, tolerance=0.01, decayed=False)
    assert kept == (False, "superiority")
    # after a measured decay, not worse and worse by less than the tolerance is enough
    assert challenger_passes(lead, margin=0.0, tolerance=0.01, decayed=True) == (
        True,
        "non-inferiority",
    )
    # a tolerance narrower than the interval's doubt, or 0, keeps the champion
    narrow = challenger_passes(lead, margin=0.0, tolerance=-lead.lower / 2, decayed=True)
    assert narrow == (False, "non-inferiority")
    assert challenger_passes(lead, margin=0.0, tolerance=0.0, decayed=True)[0] is False
    # a challenger worse on the window never passes by non-inferiority
    worse = paired_lead(spec, truth, out(a), out(noisy), n_bootstrap=500, seed=0)
    assert worse.lead < 0 and worse.lower > -0.05
    assert challenger_passes(worse, margin=0.0, tolerance=0.05, decayed=True)[0] is False
    # a margin raises both bars
    assert challenger_passes(lead, margin=lead.lead + 0.001, tolerance=0.05, decayed=True) == (
        False,
        "non-inferiority",
    )
