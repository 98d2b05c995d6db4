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
