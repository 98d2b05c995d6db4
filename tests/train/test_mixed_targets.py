"""A regression model whose members were fitted on different target transforms (the target
itself and ``log1p`` of it) turns each member's prediction back to the target's units before
combining them: in the DataFrame path, in the compiled path (the same numbers) and inside a
second stacking level, whose level-1 columns hold the inputs' predictions in the target's
units. Models saved before members had their own transform still load and predict as before.

Real data: Adult's first rows, ``age`` as the target (never negative, right-skewed).
"""

from __future__ import annotations

import pickle
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.pipeline import Pipeline

from forgeml.train import TabularEncoder, TrainedModel, infer_column_kinds
from forgeml.train._model import FoldBag, StackedBag

FIT_ROWS = 3000


def _pipeline(kinds: dict[str, str], estimator: Any, X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    encoder = TabularEncoder(kinds=kinds, output="native", max_categories=12)
    return Pipeline([("encode", encoder), ("model", estimator)]).fit(X, y)


@pytest.fixture(scope="module")
def parts(adult_head: pd.DataFrame) -> dict[str, Any]:
    X = adult_head.drop(columns=["age"])
    y = adult_head["age"].to_numpy(dtype=float)
    kinds = infer_column_kinds(X)
    fit_X, fit_y = X[:FIT_ROWS], y[:FIT_ROWS]
    folds = [np.arange(FIT_ROWS) % 3 != k for k in range(3)]

    def bag(make: Any, target: np.ndarray) -> FoldBag:
        pipelines = [
            _pipeline(kinds, make(k), fit_X[rows], target[rows]) for k, rows in enumerate(folds)
        ]
        return FoldBag(pipelines=pipelines, task="regression")

    raw_bag = bag(
        lambda k: lightgbm.LGBMRegressor(n_estimators=40, random_state=k, verbose=-1), fit_y
    )
    log_bag = bag(
        lambda k: xgboost.XGBRegressor(
            n_estimators=40, max_depth=4, enable_categorical=True, random_state=k
        ),
        np.log1p(fit_y),
    )
    log_refit = _pipeline(
        kinds, lightgbm.LGBMRegressor(n_estimators=30, verbose=-1), fit_X, np.log1p(fit_y)
    )
    return {
        "X": X,
        "y": y,
        "kinds": kinds,
        "raw_bag": raw_bag,
        "log_bag": log_bag,
        "log_refit": log_refit,
    }


def _served(model: TrainedModel, rows: pd.DataFrame) -> np.ndarray:
    compiled = model.compile_for_serving()
    values, _ = compiled.predict_both({c: rows[c].tolist() for c in rows.columns}, len(rows))
    return values


def test_members_on_the_target_and_on_its_log_are_combined_in_the_targets_units(parts):
    X, held = parts["X"], parts["X"][FIT_ROWS:]
    members = [parts["raw_bag"], parts["log_bag"], parts["log_refit"]]
    targets = [("none", 0.0), ("log1p", 0.1), ("log1p", 0.05)]
    model = TrainedModel(
        members=members,
        weights=[0.5, 0.3, 0.2],
        task="regression",
        feature_columns=list(X.columns),
        families=["lgbm", "xgb", "lgbm"],
        member_targets=targets,
    )
    expected = (
        0.5 * parts["raw_bag"].predict(held)
        + 0.3 * np.expm1(parts["log_bag"].predict(held) + 0.1)
        + 0.2 * np.expm1(parts["log_refit"].predict(held) + 0.05)
    )
    pred = model.predict(held)  # 1,000 rows: the DataFrame path
    np.testing.assert_allclose(pred, expected, rtol=1e-12)
    # years of age, not logs of them
    assert 30 < pred.mean() < 50
    # the compiled path gives the same numbers, for a few rows and for one
    np.testing.assert_allclose(_served(model, held[:50]), pred[:50], rtol=1e-12, atol=1e-9)
    for i in range(3):
        np.testing.assert_allclose(model.predict(held[i : i + 1]), pred[i : i + 1], rtol=1e-12)
    # a member's transform is part of the model's state: it survives saving
    again = pickle.loads(pickle.dumps(model))
    assert again.member_targets == targets
    np.testing.assert_allclose(again.predict(held), pred, rtol=1e-12)


def test_a_stack_reads_its_inputs_and_weighs_its_members_in_the_targets_units(parts):
    X, y, kinds = parts["X"], parts["y"], parts["kinds"]
    inputs = [parts["raw_bag"], parts["log_bag"]]
    input_targets = [("none", 0.0), ("log1p", 0.1)]
    fit_X = X[:FIT_ROWS]
    # the level-2 model's extra columns: the inputs' predictions in years
    columns = ["stack_lgbm0_0", "stack_xgb1_0"]
    extra = np.column_stack(
        [parts["raw_bag"].predict(fit_X), np.expm1(parts["log_bag"].predict(fit_X) + 0.1)]
    )
    augmented = pd.concat([fit_X, pd.DataFrame(extra, columns=columns, index=fit_X.index)], axis=1)
    level2_kinds = {**kinds, **dict.fromkeys(columns, "numeric")}
    top = FoldBag(
        pipelines=[
            _pipeline(
                level2_kinds,
                lightgbm.LGBMRegressor(n_estimators=20, verbose=-1),
                augmented,
                np.log1p(y[:FIT_ROWS]),
            )
        ],
        task="regression",
    )
    stack = StackedBag(
        inputs=inputs,
        columns=columns,
        members=[top],
        weights=[1.0],
        task="regression",
        input_targets=input_targets,
        member_targets=[("log1p", 0.02)],
    )
    model = TrainedModel(
        members=[stack],
        weights=[1.0],
        task="regression",
        feature_columns=list(X.columns),
        families=["stack(lgbm)"],
    )
    held = X[FIT_ROWS:]
    seen = stack.augmented(held)[columns].to_numpy()
    np.testing.assert_allclose(seen[:, 0], parts["raw_bag"].predict(held), rtol=1e-12)
    np.testing.assert_allclose(
        seen[:, 1], np.expm1(parts["log_bag"].predict(held) + 0.1), rtol=1e-12
    )
    pred = model.predict(held)
    np.testing.assert_allclose(
        pred, np.expm1(top.predict(stack.augmented(held)) + 0.02), rtol=1e-12
    )
    assert 30 < pred.mean() < 50
    np.testing.assert_allclose(_served(model, held[:50]), pred[:50], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(model.predict(held[:1]), pred[:1], rtol=1e-12)
    # saved before its inputs and members had transforms: every one on the target itself
    state = stack.__getstate__()
    for key in ("input_targets", "member_targets"):
        state.pop(key)
    old = StackedBag.__new__(StackedBag)
    old.__setstate__(state)
    assert old.input_targets is None and old.member_targets is None
    np.testing.assert_allclose(
        old.predict(held[:20]), top.predict(old.augmented(held[:20])), rtol=1e-12
    )


def test_a_model_of_the_earlier_form_still_predicts_as_it_did(parts):
    """Before members had their own transform, a log1p model held ``target_transform`` and one
    ``target_shift`` applied to the combined prediction (and no ``member_targets`` attribute
    at all, once saved)."""
    X, held = parts["X"], parts["X"][FIT_ROWS:]
    model = TrainedModel(
        members=[parts["log_bag"], parts["log_refit"]],
        weights=[0.6, 0.4],
        task="regression",
        feature_columns=list(X.columns),
        families=["xgb", "lgbm"],
        target_transform="log1p",
        target_shift=0.07,
    )
    state = model.__getstate__()
    state.pop("member_targets")
    saved = pickle.dumps(state)
    old = TrainedModel.__new__(TrainedModel)
    old.__setstate__(pickle.loads(saved))
    assert old.member_targets is None
    expected = np.expm1(
        0.6 * parts["log_bag"].predict(held) + 0.4 * parts["log_refit"].predict(held) + 0.07
    )
    np.testing.assert_allclose(old.predict(held), expected, rtol=1e-12)
    np.testing.assert_allclose(_served(old, held[:50]), expected[:50], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(old.predict(held[:1]), expected[:1], rtol=1e-12)


def test_member_targets_are_stored_by_skops_without_pickle(parts):
    import skops.io as sio

    X = parts["X"]
    model = TrainedModel(
        members=[parts["raw_bag"], parts["log_refit"]],
        weights=[0.5, 0.5],
        task="regression",
        feature_columns=list(X.columns),
        families=["lgbm", "lgbm"],
        member_targets=[("none", 0.0), ("log1p", 0.05)],
    )
    data = sio.dumps(model)
    loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert [tuple(t) for t in loaded.member_targets] == [("none", 0.0), ("log1p", 0.05)]
    held = X[FIT_ROWS : FIT_ROWS + 200]
    np.testing.assert_allclose(loaded.predict(held), model.predict(held), rtol=1e-12)


def test_a_level2_probe_of_a_log1p_trial_predicts_in_the_targets_units(adult_head):
    """The search judges a second level by its probe's predictions of the first fold against
    the level-1 blend's out-of-fold predictions: both in the target's units."""
    import time

    from forgeml.train._metrics import get_metric
    from forgeml.train._search import Problem, TrialRecord, evaluate_config
    from forgeml.train._stacking import probe_level2
    from forgeml.train._validation import make_folds
    from forgeml.train._zoo import FAMILIES

    frame = adult_head[:1500]
    X, y = frame.drop(columns=["age"]), frame["age"].to_numpy(dtype=float)
    problem = Problem(
        X=X,
        y=y,
        kinds=infer_column_kinds(X),
        task="regression",
        n_classes=0,
        metric=get_metric("rmse", "regression"),
        folds=make_folds(len(y), None, n_folds=3, seed=0, time_ordered=False),
        seed=0,
        n_jobs=1,
        time_ordered=False,
        imbalanced=False,
        target_transforms=("none", "log1p"),
    )
    start = FAMILIES["lgbm"].start("regression", False, len(y))
    records = [
        evaluate_config(
            problem,
            TrialRecord(number=i, family="lgbm", params=dict(start), transform=t),
            deadline=time.monotonic() + 300,
            cost_aware=False,
        )
        for i, t in enumerate(("none", "log1p"))
    ]
    assert all(r.state == "complete" for r in records)
    # both trials' out-of-fold predictions are in years
    for r in records:
        assert abs(np.nanmean(r.oof) - y.mean()) < 0.1 * y.mean()
    probe = probe_level2(problem, records, records[1], deadline=time.monotonic() + 300)
    assert probe is not None and probe.prediction is not None
    held = problem.folds.splits[0][1]
    assert abs(probe.prediction.mean() - y[held].mean()) < 0.1 * y.mean()
