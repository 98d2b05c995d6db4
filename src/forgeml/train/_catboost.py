"""CatBoost as a model family: an estimator over the encoder's ``native`` output that hands
the categorical columns to CatBoost as categorical features (its ordered target statistics,
no one-hot), stops at a deadline through a training callback, and is stored as CatBoost's own
binary format (``.cbm`` bytes inside the model file), never pickled.

CatBoost is optional (``pip install forgeml[catboost]``): the family is offered only when the
``catboost`` package imports.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

__all__ = ["CatBoostModel", "catboost_available"]

# CatBoost records its learn metric every this many rounds (``metric_period``). Its training
# callback, which stops the fit at the deadline and runs every round whatever the period,
# receives the whole metric history as Python lists each time: with the learn metric of every
# round that cost grew with the rounds (measured on california-housing, 2,643 rounds of depth
# 6 on one thread: 12.3 ms a round against 9.0 without the callback; 8.7 at this period). The
# validation metric that early stopping reads is still computed every round: the same rounds
# and the same model.
_METRIC_PERIOD = 10


class _Discard:
    """A stream CatBoost's log lines go nowhere through (``log_cout`` / ``log_cerr``)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


_DISCARD = _Discard()


def catboost_available() -> bool:
    """Whether the ``catboost`` package can be imported."""
    return importlib.util.find_spec("catboost") is not None


def _loss_function(task: str, objective: str | None) -> str:
    if task == "binary":
        return "Logloss"
    if task == "multiclass":
        return "MultiClass"
    return {"l1": "MAE", "l2": "RMSE"}.get(objective or "l2", "RMSE")


class CatBoostModel(BaseEstimator):
    """A CatBoost classifier or regressor taking the ``TabularEncoder``'s native frame.

    Args:
        task: binary, multiclass or regression.
        params: CatBoost's own parameters (``depth``, ``learning_rate``, ``l2_leaf_reg``...)
            plus ``class_weight`` (``none`` or ``balanced``) and ``objective`` (``l2`` or
            ``l1``, regression).
        iterations: most boosting rounds.
        random_state: CatBoost's ``random_seed``.
        n_jobs: CatBoost's ``thread_count``.
    """

    def __init__(
        self,
        *,
        task: str = "binary",
        params: Mapping[str, Any] | None = None,
        iterations: int = 1000,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.task = task
        self.params = params
        self.iterations = iterations
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- fitting -------------------------------------------------------------------------------

    def _catboost(self) -> Any:
        import catboost

        p = dict(self.params or {})
        weights = p.pop("class_weight", "none")
        objective = p.pop("objective", None)
        if "eval_metric" in p and self.task == "multiclass":
            p.pop("eval_metric")
        options: dict[str, Any] = {
            "iterations": int(self.iterations),
            "loss_function": _loss_function(self.task, objective),
            "random_seed": int(self.random_state),
            "thread_count": max(1, int(self.n_jobs)),
            "allow_writing_files": False,
            "verbose": False,
            "metric_period": _METRIC_PERIOD,
            **p,
        }
        if self.task == "regression":
            return catboost.CatBoostRegressor(**options)
        if weights == "balanced":
            options["auto_class_weights"] = "Balanced"
        return catboost.CatBoostClassifier(**options)

    def _frame(self, X: Any) -> pd.DataFrame:
        """Categorical columns as integer codes (missing is its own code, -1); the others as
        floats, missing kept as NaN."""
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X, dtype=float))
            X.columns = [str(c) for c in X.columns]
        columns: dict[str, Any] = {}
        for name in X.columns:
            values = X[name]
            if isinstance(values.dtype, pd.CategoricalDtype):
                columns[str(name)] = values.cat.codes.to_numpy(dtype=np.int64)
            else:
                columns[str(name)] = values.to_numpy(dtype=float)
        return pd.DataFrame(columns, index=X.index)

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        deadline: float | None = None,
        patience: int = 50,
    ) -> CatBoostModel:
        """Fit on ``X``/``y``; with ``eval_set``, stop when its loss has not improved for
        ``patience`` rounds and keep the best round; stop at ``deadline`` (monotonic) in any
        case. ``truncated_`` says whether the deadline ended it."""
        from catboost import Pool

        frame = self._frame(X)
        self.feature_names_in_ = np.asarray(list(frame.columns), dtype=object)
        self.cat_columns_ = (
            [str(c) for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
            if isinstance(X, pd.DataFrame)
            else []
        )
        model = self._catboost()
        cut = {"hit": False}

        class StopAtDeadline:
            def after_iteration(self, info: Any) -> bool:
                if deadline is not None and time.monotonic() > deadline:
                    cut["hit"] = True
                    return False
                return True

        train = Pool(frame, np.asarray(y), cat_features=self.cat_columns_)
        kwargs: dict[str, Any] = {"callbacks": [StopAtDeadline()]}
        if eval_set is not None:
            kwargs["eval_set"] = Pool(
                self._frame(eval_set[0]), np.asarray(eval_set[1]), cat_features=self.cat_columns_
            )
            kwargs["early_stopping_rounds"] = patience
            kwargs["use_best_model"] = True
        _fit_quietly(model, train, kwargs)
        self.model_ = model
        self.truncated_ = cut["hit"]
        best = model.get_best_iteration() if eval_set is not None else None
        self.best_iteration_ = int(best) + 1 if best is not None else int(model.tree_count_)
        if self.task != "regression":
            self.classes_ = np.asarray(model.classes_)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return "model_" in self.__dict__

    # -- predicting ----------------------------------------------------------------------------

    def _pool(self, X: Any) -> Any:
        from catboost import Pool

        frame = self._frame(X)
        return Pool(frame[list(self.feature_names_in_)], cat_features=self.cat_columns_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class."""
        return np.asarray(self.model_.predict_proba(self._pool(X), thread_count=1), dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        """Regression values, or the most probable class."""
        if self.task == "regression":
            return np.asarray(self.model_.predict(self._pool(X), thread_count=1), dtype=float)
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)]

    # -- storage: CatBoost's own format, not pickle ----------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["model_cbm_"] = _to_cbm(model)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        blob = state.pop("model_cbm_", None)
        super().__setstate__(state)
        if blob is not None:
            self.model_ = _from_cbm(bytes(blob), self.task)


def _fit_quietly(model: Any, train: Any, kwargs: dict[str, Any]) -> None:
    """``model.fit(train, **kwargs)`` with CatBoost's log lines discarded: with early
    stopping and a ``metric_period`` above one, CatBoost writes a warning that the period does
    not apply to the validation metric, at every fit, whatever its logging level.

    CatBoost's loggers are the process's, held by one thread at a time: when another thread's
    fit holds them, this one cannot discard its lines, and fits at a period of one instead,
    which writes no warning (slower per round, the same model)."""
    from catboost import CatBoostError

    try:
        model.fit(train, log_cout=_DISCARD, log_cerr=_DISCARD, **kwargs)
    except CatBoostError as error:
        if "custom loggers" not in str(error):
            raise
        model.set_params(metric_period=1)
        model.fit(train, **kwargs)


def _to_cbm(model: Any) -> bytes:
    fd, path = tempfile.mkstemp(suffix=".cbm")
    os.close(fd)
    try:
        model.save_model(path, format="cbm")
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def _from_cbm(blob: bytes, task: str) -> Any:
    import catboost

    model = catboost.CatBoostRegressor() if task == "regression" else catboost.CatBoostClassifier()
    model.load_model(blob=blob)
    return model
