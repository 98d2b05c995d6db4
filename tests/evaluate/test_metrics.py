"""Metrics equal scikit-learn's; bootstrap replicates equal scikit-learn's weighted metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from forgeml.errors import InputError
from forgeml.evaluate import classification_metrics, regression_metrics, threshold_curve
from forgeml.evaluate._metrics import bootstrap_counts


def binary_data(seed: int, n: int = 600):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    # rounded scores give ties, which the rank-based AUC must treat as scikit-learn does
    score = np.round(np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1), 2)
    return y, score


def multiclass_data(seed: int, n: int = 500, k: int = 4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def test_binary_values_equal_scikit_learn(seed):
    y, score = binary_data(seed)
    m = classification_metrics(y, y_score=score, threshold=0.4, n_bootstrap=50, seed=seed)
    pred = (score >= 0.4).astype(int)
    proba = np.c_[1 - score, score]
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "precision_macro": skm.precision_score(y, pred, average="macro"),
        "recall_weighted": skm.recall_score(y, pred, average="weighted"),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "roc_auc": skm.roc_auc_score(y, score),
        "pr_auc": skm.average_precision_score(y, score),
        "log_loss": skm.log_loss(y, proba),
        "brier_score": skm.brier_score_loss(y, score),
    }
    for name, value in expected.items():
        assert m[name].value == pytest.approx(value, rel=1e-12, abs=1e-12), name
        assert m[name].lower <= m[name].value <= m[name].upper, name
    per_class = skm.precision_recall_fscore_support(y, pred)
    for j, c in enumerate(m.per_class):
        assert c["precision"].value == pytest.approx(per_class[0][j])
        assert c["recall"].value == pytest.approx(per_class[1][j])
        assert c["f1"].value == pytest.approx(per_class[2][j])
        assert c.support == per_class[3][j]
    assert np.array_equal(np.array(m.confusion_matrix), skm.confusion_matrix(y, pred))


def test_multiclass_values_equal_scikit_learn(seed):
    y, proba = multiclass_data(seed)
    labels = np.array(["ant", "bee", "cat", "dog"])
    m = classification_metrics(labels[y], y_score=proba, classes=labels, n_bootstrap=20, seed=seed)
    pred = labels[proba.argmax(axis=1)]
    assert m.task == "multiclass"
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(labels[y], pred))
    assert m["balanced_accuracy"].value == pytest.approx(
        skm.balanced_accuracy_score(labels[y], pred)
    )
    for avg in ("macro", "weighted"):
        assert m[f"precision_{avg}"].value == pytest.approx(
            skm.precision_score(labels[y], pred, average=avg)
        )
        assert m[f"f1_{avg}"].value == pytest.approx(skm.f1_score(labels[y], pred, average=avg))
    assert m["roc_auc"].value == pytest.approx(
        skm.roc_auc_score(labels[y], proba, multi_class="ovr", labels=labels)
    )
    onehot = (labels[y][:, None] == labels[None, :]).astype(int)
    assert m["pr_auc"].value == pytest.approx(skm.average_precision_score(onehot, proba))
    assert m["log_loss"].value == pytest.approx(skm.log_loss(labels[y], proba, labels=labels))
    assert m["brier_score"].value == pytest.approx(
        skm.brier_score_loss(labels[y], proba, labels=labels)
    )


def test_each_bootstrap_replicate_equals_scikit_learn_with_its_counts():
    y, score = binary_data(7, n=300)
    counts = next(bootstrap_counts(len(y), 5, seed=11))
    assert counts.shape == (5, 300) and (counts.sum(axis=1) == 300).all()
    from forgeml.evaluate._metrics import _average_precision, _roc_auc

    auc = _roc_auc(counts, score, y == 1)
    ap = _average_precision(counts, score, y == 1)
    for b in range(5):
        w = counts[b]
        assert auc[b] == pytest.approx(skm.roc_auc_score(y, score, sample_weight=w))
        assert ap[b] == pytest.approx(skm.average_precision_score(y, score, sample_weight=w))


def test_intervals_are_seeded_and_cover_the_value():
    y, score = binary_data(3)
    a = classification_metrics(y, y_score=score, n_bootstrap=200, seed=5)
    b = classification_metrics(y, y_score=score, n_bootstrap=200, seed=5)
    c = classification_metrics(y, y_score=score, n_bootstrap=200, seed=6)
    assert a["roc_auc"] == b["roc_auc"]
    assert a["roc_auc"].lower != c["roc_auc"].lower
    assert a["roc_auc"].lower < a["roc_auc"].value < a["roc_auc"].upper
    # the interval of a mean shrinks like 1/sqrt(n): four times the rows, about half the width
    big_y, big_score = np.tile(y, 4), np.tile(score, 4)
    d = classification_metrics(big_y, y_score=big_score, n_bootstrap=200, seed=5)
    width = lambda m: m["accuracy"].upper - m["accuracy"].lower  # noqa: E731
    assert 0.35 < width(d) / width(a) < 0.7


def test_regression_values_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 800)
    pred = y + rng.normal(0, 1.5, 800)
    m = regression_metrics(y, pred, n_bootstrap=100, seed=seed)
    assert m["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert m["mae"].value == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"].value == pytest.approx(skm.r2_score(y, pred))
    assert m["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert m["abs_error_p50"].value == pytest.approx(skm.median_absolute_error(y, pred))
    for q in (90, 95, 99):
        assert m[f"abs_error_p{q}"].value == pytest.approx(np.quantile(np.abs(y - pred), q / 100))
    for v in m.values:
        assert v.lower <= v.value <= v.upper, v


def test_quantile_replicates_equal_numpy_on_the_resample():
    from forgeml.evaluate._metrics import _weighted_quantile

    rng = np.random.default_rng(0)
    values = rng.exponential(size=101)
    counts = next(bootstrap_counts(101, 4, seed=2))
    order = np.argsort(values)
    cum = np.cumsum(counts[:, order], axis=1)
    got = _weighted_quantile(cum, values[order], 0.9)
    for b in range(4):
        resample = np.repeat(values, counts[b].astype(int))
        assert got[b] == pytest.approx(np.quantile(resample, 0.9))


def test_threshold_curve_matches_direct_counts():
    y, score = binary_data(1)
    curve = threshold_curve(y == 1, score, thresholds=[0.2, 0.5, 0.8])
    for i, t in enumerate([0.2, 0.5, 0.8]):
        pred = score >= t
        assert curve["precision"][i] == pytest.approx(skm.precision_score(y, pred))
        assert curve["recall"][i] == pytest.approx(skm.recall_score(y, pred))
        assert curve["f1"][i] == pytest.approx(skm.f1_score(y, pred))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"y_true": [0, 1, 1], "y_pred": [0, 1]}, ["same number of rows", "3", "2"]),
        ({"y_true": [0, 1, 2], "y_pred": [0, 1, 1], "classes": [0, 1]}, ["not trained on", "2"]),
        ({"y_true": [0, 1, 1], "y_score": ["a", "b", "c"]}, ["numeric"]),
        ({"y_true": [0, 1, 1], "y_score": [0.1, np.nan, 0.3]}, ["missing"]),
        ({"y_true": [0, 1, 1]}, ["y_pred"]),
    ],
)
def test_bad_classification_input_is_an_input_error(kwargs, words):
    with pytest.raises(InputError) as info:
        classification_metrics(**kwargs, n_bootstrap=0)
    for word in words:
        assert word in str(info.value)


def test_bad_regression_input_is_an_input_error():
    with pytest.raises(InputError, match="same number of rows"):
        regression_metrics([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="numeric"):
        regression_metrics(["a", "b"], [1.0, 2.0])
