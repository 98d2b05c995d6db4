"""Kinds, task detection, metrics, preprocessing, folds, ensemble selection, anytime fits."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from forgeml.errors import InputError
from forgeml.train import METRICS, TabularEncoder, detect_task, infer_column_kinds, infer_kind
from forgeml.train._ensemble import ensemble_selection
from forgeml.train._metrics import get_metric, tune_threshold
from forgeml.train._validation import holdout_split, make_folds
from forgeml.train._zoo import FAMILIES, fit_estimator


def test_infer_kind_rules():
    n = 50
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "customer_id": np.random.default_rng(0).permutation(n) * 7,
            "age": np.tile([20, 30, 40, 50, 60], 10),
            "income": np.linspace(0, 1, n),
            "flag": [True, False] * 25,
            "city": ["paris", "rome"] * 25,
            "when": pd.date_range("2020-01-01", periods=n).astype(str),
            "code": [f"c{i:04d}" for i in range(n)],
            "note": [f"this is a rather long free text comment number {i} here" for i in range(n)],
            "amount": [str(i * 1.5) for i in range(n)],
        }
    )
    kinds = infer_column_kinds(frame)
    assert kinds == {
        "row": "identifier",
        "customer_id": "identifier",
        "age": "integer",
        "income": "numeric",
        "flag": "boolean",
        "city": "categorical",
        "when": "datetime",
        "code": "identifier",
        "note": "text",
        "amount": "numeric",
    }
    assert infer_column_kinds(frame, {"age": "categorical"})["age"] == "categorical"
    assert infer_kind(pd.Series([None, None], dtype=object)) == "categorical"
    with pytest.raises(InputError, match="kind of column"):
        infer_column_kinds(frame, {"age": "weird"})
    with pytest.raises(InputError, match="lacks"):
        infer_column_kinds(frame, {"nope": "numeric"})


def test_detect_task():
    assert detect_task(pd.Series(["a", "b", "a"]), "categorical") == "binary"
    assert detect_task(pd.Series(["a", "b", "c"]), "categorical") == "multiclass"
    assert detect_task(pd.Series([1, 2, 3, 1, 2]), "integer") == "multiclass"
    assert detect_task(pd.Series(np.arange(100)), "integer") == "regression"
    assert detect_task(pd.Series(np.linspace(0, 1, 30)), "numeric") == "regression"
    assert detect_task(pd.Series([1, 2, 3]), "integer", "regression") == "regression"
    with pytest.raises(InputError, match="numeric target"):
        detect_task(pd.Series(["a", "b", "c"]), "categorical", "regression")
    with pytest.raises(InputError, match="exactly 2"):
        detect_task(pd.Series(["a", "b", "c"]), "categorical", "binary")
    with pytest.raises(InputError, match="task must be"):
        detect_task(pd.Series([0, 1]), "integer", "ranking")


def test_metric_registry_directions_and_names():
    for name, metric in METRICS.items():
        # names follow the house rule: *_error / *_loss lower is better, *_score higher
        fname = metric.func.__name__
        assert fname.endswith(("_score", "_error", "_loss")), name
        assert metric.greater_is_better == fname.endswith("_score"), name
    with pytest.raises(InputError, match="Unknown metric"):
        get_metric("auc2", "binary")
    with pytest.raises(InputError, match="does not apply"):
        get_metric("rmse", "binary")
    assert get_metric(None, "multiclass").name == "log_loss"


def test_metric_loss_orders_better_predictions_first():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good = np.column_stack([1 - (0.8 * y + 0.1), 0.8 * y + 0.1])
    noise = rng.uniform(0, 1, 500)
    bad = np.column_stack([1 - noise, noise])
    for name in ("roc_auc", "log_loss", "accuracy", "f1", "average_precision"):
        metric = METRICS[name]
        assert metric.loss(y, good) < metric.loss(y, bad), name


def test_tuned_threshold_helps_f1_on_imbalanced_scores():
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=2000) < 0.1).astype(int)
    p1 = np.clip(0.05 + 0.3 * y + rng.normal(0, 0.1, 2000), 0, 1)
    proba = np.column_stack([1 - p1, p1])
    f1 = METRICS["f1"]
    t = tune_threshold(f1, y, proba)
    assert t < 0.5
    assert f1.score(y, proba, threshold=t) > f1.score(y, proba) + 0.2


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "num": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], n),
            "many": [f"v{int(i)}" for i in rng.integers(0, 400, n)],
            "day": pd.date_range("2021-01-01", periods=n, freq="h").astype(str),
            "id": np.arange(n),
        }
    )


@pytest.mark.parametrize("output", ["native", "ordinal", "dense"])
def test_encoder_unseen_categories_reordered_columns_and_identifiers(output):
    kinds = {
        "num": "numeric",
        "cat": "categorical",
        "many": "categorical",
        "day": "datetime",
        "id": "identifier",
    }
    train = _frame(600, 0)
    y = (train["num"] > 0).astype(int).to_numpy()
    encoder = TabularEncoder(kinds=kinds, output=output, max_categories=50).fit(train, y)
    assert "id" not in encoder.feature_names_out_
    assert {"day__year", "day__month", "day__hour", "day__ordinal"} <= set(
        encoder.feature_names_out_
    )
    assert "many__freq" in encoder.feature_names_out_  # more categories than kept
    new = _frame(20, 1)
    new["many"] = train["many"].iloc[:20].to_numpy()
    new.loc[:4, "cat"] = "never-seen"
    new.loc[5, "cat"] = None
    new.loc[6:8, "many"] = "never-seen-either"
    shuffled = new[list(reversed(new.columns))]
    a = np.asarray(encoder.transform(new), dtype=float)
    b = np.asarray(encoder.transform(shuffled), dtype=float)
    np.testing.assert_array_equal(a, b)  # columns are matched by name
    assert encoder.unseen_categories(new) == {"cat": 5, "many": 3}
    assert encoder.unseen_categories(shuffled) == {"cat": 5, "many": 3}
    assert not hasattr(encoder, "unseen_counts_")  # transforming did not change the encoder


def test_encoder_learns_categories_from_training_rows_only():
    kinds = {
        "num": "numeric",
        "cat": "categorical",
        "many": "categorical",
        "day": "datetime",
        "id": "identifier",
    }
    train = _frame(300, 0)
    train.loc[:, "cat"] = "a"
    encoder = TabularEncoder(kinds=kinds, output="native").fit(train)
    assert encoder.categories_["cat"] == ["a"]
    out = encoder.transform(_frame(50, 3))
    assert out["cat"].isna().sum() == (_frame(50, 3)["cat"] != "a").sum()


def test_splits_are_seeded_stratified_and_time_ordered():
    y = np.array([0] * 80 + [1] * 20)
    train, test = holdout_split(100, y, test_size=0.2, seed=0, time_ordered=False)
    assert len(test) == 20 and y[test].sum() == 4
    again = holdout_split(100, y, test_size=0.2, seed=0, time_ordered=False)
    np.testing.assert_array_equal(test, again[1])
    train, test = holdout_split(100, None, test_size=0.2, seed=0, time_ordered=True)
    assert test.min() == 80 and train.max() == 79
    folds = make_folds(80, None, n_folds=4, seed=0, time_ordered=True)
    for fit, val in folds.splits:
        assert fit.max() < val.min()  # never trains on the future
    folds = make_folds(100, y, n_folds=5, seed=0, time_ordered=False)
    assert all(y[val].sum() == 4 for _, val in folds.splits)
    assert len(folds.covered) == 100


def test_ensemble_selection_combines_complementary_models():
    rng = np.random.default_rng(0)
    y = rng.normal(size=1000)
    a = y + rng.normal(0, 1, 1000)
    b = y + rng.normal(0, 1, 1000)
    bad = y + 5 + rng.normal(0, 3, 1000)  # biased and noisy: never worth a share

    def loss(p: np.ndarray) -> float:
        return float(np.sqrt(np.mean((p - y) ** 2)))

    weights, value = ensemble_selection([a, b, bad], loss)
    assert weights[2] == 0
    assert abs(weights[0] - 0.5) < 0.2
    assert value < min(loss(a), loss(b)) * 0.85


@pytest.mark.parametrize("family", ["lgbm", "xgb", "hgb", "rf", "et", "mlp"])
def test_fits_stop_at_the_deadline(family):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 10))
    y = (X[:, 0] + rng.normal(size=3000) > 0).astype(int)
    fam = FAMILIES[family]
    params = fam.start("binary", False, 3000)
    if family in ("rf", "et"):
        params[f"{family}.n_estimators"] = 400
    started = time.monotonic()  # a deadline already past (benchmarks/budgets.py times the stop)
    outcome = fit_estimator(
        fam,
        params,
        task="binary",
        X=X,
        y=y,
        seed=0,
        n_jobs=1,
        deadline=started - 1.0,
        rounds=2000 if fam.iterative else None,
    )
    assert outcome.truncated
    assert outcome.estimator.predict_proba(X[:5]).shape == (5, 2)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_lightgbm_starts_with_each_tree_on_a_share_of_the_columns(task):
    # measured better than all the columns on 16 of the portfolio meta-benchmark's 19 tables
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 10))
    y = X[:, 0] + rng.normal(size=600)
    if task != "regression":
        y = np.digitize(y, [0.0] if task == "binary" else [-0.5, 0.5])
    fam = FAMILIES["lgbm"]
    est = fit_estimator(
        fam, fam.start(task, False, 600), task=task, X=X, y=y, seed=0, n_jobs=1,
        deadline=time.monotonic() + 60, rounds=5,
    ).estimator  # fmt: skip
    assert est.get_params()["colsample_bytree"] == 0.8


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_linear_fit_handed_a_deadline_stops_after_fewer_iterations(task):
    # badly scaled columns (classification) and near-copies of five columns (regression) keep
    # L-BFGS and coordinate descent iterating past their first chunk
    rng = np.random.default_rng(0)
    if task == "multiclass":
        X = rng.normal(size=(2000, 40)) * rng.uniform(0.1, 10, size=40)
        y = (X @ rng.normal(size=(40, 4)) + rng.normal(size=(2000, 4))).argmax(axis=1)
        params = {"linear.C": 100.0, "linear.class_weight": "none"}
    else:
        base = rng.normal(size=(2000, 5))
        X = np.hstack([base + 0.01 * rng.normal(size=(2000, 5)) for _ in range(8)])
        y = base @ rng.normal(size=5) + rng.normal(size=2000)
        params = {"linear.alpha": 1e-5, "linear.l1_ratio": 0.5}
    fam = FAMILIES["linear"]

    def fit(deadline: float):
        return fit_estimator(fam, params, task=task, X=X, y=y, seed=0, n_jobs=1, deadline=deadline)

    free = fit(time.monotonic() + 3600.0)
    cut = fit(time.monotonic() - 1.0)  # a deadline already past: one chunk, then it stops
    assert not free.truncated and cut.truncated
    assert cut.best_iteration is not None and free.best_iteration is not None
    assert cut.best_iteration < free.best_iteration
    assert cut.estimator.max_iter == free.estimator.max_iter  # the parameters as built
    assert len(cut.estimator.predict(X[:5])) == 5


def test_f1_threshold_equals_the_metric_search():
    from forgeml.train._api import _f1_threshold
    from forgeml.train._metrics import METRICS, tune_threshold

    rng = np.random.default_rng(0)
    for n, share in ((60, 0.5), (2000, 0.1)):
        y = (rng.random(n) < share).astype(int)
        score = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
        proba = np.column_stack([1 - score, score])
        expected = tune_threshold(METRICS["f1"], y, proba)
        assert _f1_threshold(y, proba) == expected
        assert expected != 0.5


def test_ensemble_candidates_add_each_familys_best_outside_the_leaders():
    from forgeml.train._api import _ENSEMBLE_CANDIDATES, _ensemble_candidates, _ranked
    from forgeml.train._search import TrialRecord

    # a small table's search: the cheap linear family fills the leading places
    families = ["linear"] * 12 + ["catboost", "et", "linear", "et", "lgbm"]
    records = [
        TrialRecord(number=i, family=f, params={}, state="complete", loss=1000.0 + i)
        for i, f in enumerate(families)
    ]
    records.append(TrialRecord(number=99, family="xgb", params={}, state="pruned", loss=1.0))
    candidates = _ensemble_candidates(_ranked(records))
    leaders = [r.number for r in candidates[:_ENSEMBLE_CANDIDATES]]
    assert leaders == list(range(_ENSEMBLE_CANDIDATES))
    # then each other family's best, in rank order; unfinished trials never
    assert [(r.family, r.number) for r in candidates[_ENSEMBLE_CANDIDATES:]] == [
        ("catboost", 12),
        ("et", 13),
        ("lgbm", 16),
    ]
    # when the leaders already hold every family, nothing is added
    assert len(_ensemble_candidates(_ranked(records[:10]))) == _ENSEMBLE_CANDIDATES
