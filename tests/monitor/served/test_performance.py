"""Confidence-based performance estimation: the expected accuracy and ROC AUC are what labels
drawn from calibrated probabilities give on average; calibration maps scores to frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from forgeml.errors import InputError
from forgeml.monitor import Calibration, estimated_metrics, expected_roc_auc, parse_window


def test_expected_metrics_match_labels_drawn_from_the_probabilities():
    rng = np.random.default_rng(7)
    n = 4000
    p = rng.beta(2, 3, size=n)
    proba = np.column_stack([1 - p, p])
    predicted = np.where(p >= 0.5, "yes", "no")
    identity = Calibration.identity(("no", "yes"), "test")
    estimate = estimated_metrics(proba, predicted, identity)
    accuracies, aucs = [], []
    for _ in range(300):
        truth = np.where(rng.random(n) < p, "yes", "no")
        accuracies.append(accuracy_score(truth, predicted))
        aucs.append(roc_auc_score(truth == "yes", p))
    # the estimate is the mean over label draws (standard error of the mean ~ 0.0004)
    assert estimate["accuracy"] == pytest.approx(np.mean(accuracies), abs=0.002)
    assert estimate["roc_auc"] == pytest.approx(np.mean(aucs), abs=0.002)


def test_ties_move_together_in_the_expected_roc_curve():
    score = np.array([0.9, 0.9, 0.1, 0.1])
    p = np.array([1.0, 0.0, 1.0, 0.0])
    # labels certain: the expected AUC is the AUC of those labels, ties counted as half
    assert expected_roc_auc(score, p) == pytest.approx(roc_auc_score(p, score))
    assert np.isnan(expected_roc_auc(score, np.ones(4)))


def test_isotonic_calibration_corrects_overconfident_scores():
    rng = np.random.default_rng(3)
    n = 20_000
    true_p = rng.uniform(0.2, 0.8, size=n)
    # an overconfident model: scores pushed towards 0 and 1
    score = 1 / (1 + np.exp(-3 * np.log(true_p / (1 - true_p))))
    labels = np.where(rng.random(n) < true_p, 1, 0)
    proba = np.column_stack([1 - score, score])
    calibration = Calibration.fit(proba, labels, (0, 1), "test rows")
    calibrated = calibration.apply(proba)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert np.abs(calibrated[:, 1] - true_p).mean() < np.abs(score - true_p).mean() / 2
    with pytest.raises(InputError, match="not classes"):
        Calibration.fit(proba[:5], [0, 1, 2, 0, 1], (0, 1), "x")


def test_multiclass_estimate_uses_the_predicted_class():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    out = estimated_metrics(proba, ["a", "c"], Calibration.identity(("a", "b", "c"), "test"))
    assert out["accuracy"] == pytest.approx(0.65)
    with pytest.raises(InputError, match="classes"):
        estimated_metrics(proba, ["a", "z"], Calibration.identity(("a", "b", "c"), "test"))


@pytest.mark.parametrize(
    ("text", "kind", "size"),
    [
        ("1d", "time", 86_400_000),
        ("6h", "time", 21_600_000),
        ("30m", "time", 1_800_000),
        ("10000", "count", 10_000),
        ("10_000", "count", 10_000),
        (500, "count", 500),
    ],
)
def test_window_specs(text, kind, size):
    spec = parse_window(text)
    assert (spec.kind, spec.size) == (kind, size)


@pytest.mark.parametrize("bad", ["", "1x", "-5", "0", "0h", "1.5d", None, True])
def test_bad_window_specs_name_what_was_expected(bad):
    with pytest.raises(InputError, match="window: expected a duration such as 1d"):
        parse_window(bad)
