"""The metric registry: one name and direction per metric, values equal scikit-learn's and
evaluation's, properties that hold for every registered metric (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from forgeml.errors import InputError
from forgeml.evaluate import classification_metrics, regression_metrics
from forgeml.metrics import (
    MetricSpec,
    canonical_name,
    get_metric,
    greater_is_better,
    metrics_for,
    register_metric,
    registered_metrics,
)
from forgeml.train import METRICS as TRAIN_METRICS

ALL = sorted(registered_metrics())


def _case(spec: MetricSpec, seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(y_true, y_pred, task) for ``spec``: every class present, predictions in its form."""
    rng = np.random.default_rng(seed)
    task = spec.tasks[0] if k == 2 or "multiclass" not in spec.tasks else "multiclass"
    if task == "regression":
        y = rng.normal(size=n) * 10
        return y, y + rng.normal(size=n) * rng.uniform(0.1, 5), task
    k = 2 if task == "binary" else k
    y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    proba = rng.dirichlet(np.ones(k), size=n)
    if spec.needs_proba:
        return y, proba, task
    return y, proba.argmax(axis=1), task


def _perfect(spec: MetricSpec, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    if spec.reads == "value":
        return y.astype(float)
    if spec.reads == "label":
        return y.copy()
    return np.eye(pred.shape[1])[y]


cases = st.tuples(st.sampled_from(ALL), st.integers(0, 2**32 - 1), st.integers(8, 60))


@settings(max_examples=50, deadline=None)
@given(cases, st.integers(3, 5))
def test_order_of_rows_does_not_change_any_metric(case, k):
    name, seed, n = case
    spec = registered_metrics()[name]
    y, pred, _ = _case(spec, seed, n, k)
    weights = np.random.default_rng(seed + 1).integers(1, 4, n).astype(float)
    order = np.random.default_rng(seed + 2).permutation(n)
    assert spec(y[order], pred[order]) == pytest.approx(spec(y, pred), rel=1e-9, abs=1e-12)
    assert spec(y[order], pred[order], sample_weight=weights[order]) == pytest.approx(
        spec(y, pred, sample_weight=weights), rel=1e-9, abs=1e-12
    )


@settings(max_examples=50, deadline=None)
@given(cases, st.integers(3, 5))
def test_whole_weights_count_rows_that_many_times(case, k):
    name, seed, n = case
    spec = registered_metrics()[name]
    y, pred, _ = _case(spec, seed, n, k)
    counts = np.random.default_rng(seed + 3).integers(1, 4, n)
    repeated = spec(np.repeat(y, counts), np.repeat(pred, counts, axis=0))
    assert spec(y, pred, sample_weight=counts.astype(float)) == pytest.approx(
        repeated, rel=1e-9, abs=1e-12
    )
    assert spec(y, pred, sample_weight=np.ones(n)) == pytest.approx(spec(y, pred), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(cases, st.integers(3, 5))
def test_direction_a_perfect_prediction_is_never_worse(case, k):
    name, seed, n = case
    spec = registered_metrics()[name]
    y, pred, _ = _case(spec, seed, n, k)
    perfect, other = spec(y, _perfect(spec, y, pred)), spec(y, pred)
    if spec.greater_is_better:
        assert perfect >= other - 1e-12
    else:
        assert perfect <= other + 1e-12


def test_registration_checks_names_directions_and_tasks():
    for spec in registered_metrics().values():
        assert spec.func.__name__.endswith("_score") == spec.greater_is_better, spec.name
        assert spec.tasks and set(spec.tasks) <= {"binary", "multiclass", "regression"}
        assert get_metric(spec.name) is spec
    with pytest.raises(ValueError, match="says lower is better"):
        register_metric("wrong_way", greater_is_better=True, tasks=("regression",))(_made_up_error)
    with pytest.raises(ValueError, match="already registered"):
        register_metric("roc_auc", greater_is_better=False, tasks=("binary",))(_made_up_error)
    with pytest.raises(ValueError, match="tasks must be"):
        register_metric("made_up", greater_is_better=False, tasks=("ranking",))(_made_up_error)
    assert "made_up" not in registered_metrics() and "wrong_way" not in registered_metrics()


def _made_up_error(y_true, y_pred, *, sample_weight=None) -> float:
    return 0.0


def test_aliases_and_unknown_names():
    assert canonical_name("pr_auc") == "average_precision"
    assert get_metric("pr_auc", "binary") is get_metric("average_precision")
    assert greater_is_better("rmse") is False and greater_is_better("pr_auc") is True
    with pytest.raises(InputError, match="Unknown metric 'auc2'; known metrics: abs_error_p50"):
        get_metric("auc2")
    with pytest.raises(InputError, match="does not apply to a binary task; use one of"):
        get_metric("rmse", "binary")
    assert [m.name for m in metrics_for("regression")][:2] == ["abs_error_p50", "abs_error_p90"]


def test_training_offers_every_registered_metric_with_the_same_direction():
    assert sorted(TRAIN_METRICS) == ALL
    for name, metric in TRAIN_METRICS.items():
        spec = registered_metrics()[name]
        assert (metric.func, metric.greater_is_better, metric.tasks) == (
            spec.func,
            spec.greater_is_better,
            spec.tasks,
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 4])
def test_evaluation_reports_registered_metrics_with_the_registry_values(k, seed):
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    report = classification_metrics(y, y_score=proba, classes=np.arange(k), n_bootstrap=0)
    labels = proba.argmax(axis=1) if k > 2 else (proba[:, 1] >= 0.5).astype(int)
    task = "binary" if k == 2 else "multiclass"
    for value in report.values:
        spec = get_metric(value.name, task)
        expected = spec(y, proba if spec.needs_proba else labels)
        assert value.value == pytest.approx(expected, rel=1e-9, abs=1e-9), value.name
    assert report["pr_auc"] is report["average_precision"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluation_regression_metrics_equal_the_registry(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=300) * 5 + 20
    pred = y + rng.normal(size=300)
    report = regression_metrics(y, pred, n_bootstrap=0)
    assert {v.name for v in report.values} == {m.name for m in metrics_for("regression")}
    for value in report.values:
        assert value.value == pytest.approx(get_metric(value.name)(y, pred), rel=1e-9), value.name
    assert report["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, pred))
