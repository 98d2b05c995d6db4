"""The model training returns: one refit pipeline, or a weighted ensemble of them, that takes
the raw feature columns by name.

``TrainedModel`` follows scikit-learn (``predict``, ``predict_proba``, ``classes_``,
``feature_names_in_``). Columns are matched by name, so their order does not matter and extra
columns are ignored; a missing feature column is a ``SchemaMismatchError`` naming it.
Categories never seen in training are mapped to "missing", never an error;
``unseen_categories(X)`` says how many there are without changing the model. A model trained
under a PII policy that hashes or masks some of its input columns (``pii_inputs``) refuses,
naming them, rows whose values in those columns are not in the policy's form (raw values would
all read as unseen categories: a wrong answer given silently). Small frames (up to
100 rows) are predicted through the model compiled to array lookups and native predictor calls
(``compile_for_serving``, built on first use) when every member allows it: one row answers in
well under a millisecond instead of several, with the same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from forgeml.errors import InputError, SchemaMismatchError
from forgeml.security import not_applied
from forgeml.train._calibration import apply_calibration
from forgeml.train._compiled import (
    KEPT_CALL,
    CompiledModel,
    NotCompilable,
    level1_features,
    member_value,
)

__all__ = ["FoldBag", "StackedBag", "TrainedModel", "raw_predict"]

# Up to this many rows, predictions go through the compiled model (no DataFrame per member).
_SMALL_FRAME = 100
# From this many rows, a member's predictor may use every core.
_THREADED_ROWS = 2_000
# Families whose refit pipeline the explainer handles exactly (the others: model-agnostic).
_EXACTLY_EXPLAINED = ("lgbm", "xgb", "rf", "et", "linear")


def raw_predict(pipeline: Any, X: pd.DataFrame, task: str) -> np.ndarray:
    """Class probabilities (columns = encoded classes) or regression values of one pipeline."""
    booster = _native_booster(pipeline)
    if booster is not None:
        # The encoder's native frame and its code matrix hold the same numbers: LightGBM
        # answers the same on the matrix, without converting a DataFrame on every call.
        matrix = pipeline.steps[0][1].codes(X)
        params = {"num_threads": 1} if len(matrix) < _THREADED_ROWS else {}
        out = np.asarray(booster.predict(matrix, **params), dtype=float)
        if task == "regression":
            return out
        return np.column_stack((1.0 - out, out)) if out.ndim == 1 else out
    with warnings.catch_warnings(), _openmp_threads(pipeline, len(X)):
        warnings.simplefilter("ignore")
        if task == "regression":
            return np.asarray(pipeline.predict(X), dtype=float)
        return np.asarray(pipeline.predict_proba(X), dtype=float)


_OPENMP: list[Any] = []  # the process's ThreadpoolController, made on first use


@contextmanager
def _openmp_threads(pipeline: Any, rows: int) -> Iterator[None]:
    """One OpenMP thread for a HistGradientBoosting pipeline predicting fewer than
    ``_THREADED_ROWS`` rows (as a LightGBM member does): its predictor starts a thread team
    per tree, which costs more than it saves on small batches, and far more on a busy
    machine (1,000 rows of a 100-tree model on german-credit: 1.5 s, 0.27 s on one thread,
    measured loaded). Each row is predicted on its own, so the numbers do not change. The
    limit is the calling thread's own (OpenMP's thread count is per thread)."""
    steps = getattr(pipeline, "steps", None)
    if (
        rows >= _THREADED_ROWS
        or not steps
        or not type(steps[-1][1]).__name__.startswith("HistGradientBoosting")
    ):
        yield
        return
    if not _OPENMP:
        from threadpoolctl import ThreadpoolController

        _OPENMP.append(ThreadpoolController())
    with _OPENMP[0].limit(limits=1, user_api="openmp"):
        yield


def weighted_prediction(
    members: Sequence[Any],
    weights: Sequence[float],
    X: pd.DataFrame,
    task: str,
    targets: Sequence[Sequence[Any]] | None = None,
) -> np.ndarray:
    """The weighted sum of the members' predictions on ``X``; with ``targets`` (each
    member's ``(transform, shift)``), each in the target's units first."""
    total: np.ndarray | None = None
    for j, (weight, member) in enumerate(zip(weights, members, strict=True)):
        values = raw_predict(member, X, task)
        if targets is not None:
            values = member_value(values, targets[j])
        part = weight * values
        total = part if total is None else total + part
    assert total is not None
    return total


def _native_booster(pipeline: Any) -> Any:
    """The booster of an (encoder, LightGBM) pipeline on the native output, else ``None``."""
    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2:
        return None
    encoder, model = steps[0][1], steps[1][1]
    if getattr(encoder, "output", None) != "native" or not hasattr(encoder, "codes"):
        return None
    if not type(model).__module__.startswith("lightgbm") or not hasattr(model, "booster_"):
        return None
    if list(getattr(model, "feature_names_in_", [])) != encoder.model_feature_names():
        return None
    return model.booster_


class FoldBag(BaseEstimator):
    """The cross-validation fold models of one trial, averaged (a bagged member): each fold
    model saw the rows outside its fold, so the trial's out-of-fold score is the bag's
    honest score. Used in place of a refit on all rows (see ``train._api``'s bagging rule).

    Args:
        pipelines: the fitted fold pipelines.
        task: binary, multiclass or regression.
    """

    def __init__(self, *, pipelines: Sequence[Any], task: str) -> None:
        self.pipelines = pipelines
        self.task = task

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop(KEPT_CALL, None)  # its compiled call, a cache of closures, rebuilt when needed
        return state

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Mean prediction (regression)."""
        return np.mean([raw_predict(p, X, "regression") for p in self.pipelines], axis=0)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Mean class probabilities."""
        return np.mean([raw_predict(p, X, self.task) for p in self.pipelines], axis=0)


class StackedBag(BaseEstimator):
    """A second stacking level: bagged models fitted on the raw columns plus the level-1
    models' predictions, weighted.

    Level-1 inputs are bags of fold models; the level-2 models were fitted, fold by fold,
    on the level-1 out-of-fold predictions (the same folds, so no row's level-2 prediction
    read a level-1 output that saw its label) and predict here on the bags' averages, as
    AutoGluon's stack does.

    Args:
        inputs: the level-1 ``FoldBag``s, in column order.
        columns: the names of the columns their predictions fill (``level1_features`` of
            each input, in order).
        members: the level-2 ``FoldBag``s (their encoders know ``columns`` as numeric).
        weights: the level-2 members' weights (summing to 1).
        task: binary, multiclass or regression.
        input_targets: regression: each input's ``(transform, shift)``; its predictions
            fill the columns in the target's units (as its out-of-fold predictions did when
            level 2 was fitted). ``None``: every input fitted on the target itself.
        member_targets: regression: each level-2 member's ``(transform, shift)``; the
            weighted prediction is in the target's units. ``None``: as ``input_targets``.
    """

    def __init__(
        self,
        *,
        inputs: Sequence[Any],
        columns: Sequence[str],
        members: Sequence[Any],
        weights: Sequence[float],
        task: str,
        input_targets: Sequence[Sequence[Any]] | None = None,
        member_targets: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        self.inputs = inputs
        self.columns = columns
        self.members = members
        self.weights = weights
        self.task = task
        self.input_targets = input_targets
        self.member_targets = member_targets

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a bag saved before members had target transforms: every one on the target
        super().__setstate__({"input_targets": None, "member_targets": None, **state})

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def augmented(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the level-1 predictions as extra columns."""
        targets = self.input_targets
        parts = [
            level1_features(
                member_value(raw_predict(b, X, self.task), None if targets is None else targets[j]),
                self.task,
            )
            for j, b in enumerate(self.inputs)
        ]
        values = np.hstack(parts)
        extra = pd.DataFrame(values, columns=list(self.columns), index=X.index)
        return pd.concat([X, extra], axis=1)

    def _combined(self, X: pd.DataFrame) -> np.ndarray:
        return weighted_prediction(
            self.members, self.weights, self.augmented(X), self.task, self.member_targets
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The level-2 members' weighted prediction (regression)."""
        return self._combined(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The level-2 members' weighted class probabilities."""
        return self._combined(X)


def _inverse(values: np.ndarray, transform: str | None, shift: float = 0.0) -> np.ndarray:
    """A regression prediction in the target's units (``expm1(values + shift)`` after
    ``log1p``)."""
    if transform is None:
        return values
    if transform == "log1p":
        return np.expm1(values + shift)
    raise ValueError(f"Unknown target transform {transform!r}")


def _encoder(member: Any) -> Any:
    if isinstance(member, StackedBag):
        member = member.inputs[0]
    pipeline = member.pipelines[0] if isinstance(member, FoldBag) else member
    return pipeline.steps[0][1]


class TrainedModel(BaseEstimator):
    """A fitted pipeline or a weighted ensemble of fitted pipelines.

    Args:
        members: the fitted pipelines (encoder then estimator), ``FoldBag``s (bagged
            members), or one ``StackedBag`` (a second stacking level).
        weights: their weights (summing to 1).
        task: binary, multiclass or regression.
        feature_columns: the raw feature columns of the training table; identifier columns
            among them are dropped by the encoder and not required (``feature_names_in_``
            lists the columns the model reads).
        classes: the original class labels (classification), in the order of
            ``predict_proba``'s columns.
        threshold: the decision threshold on the positive class (binary), tuned on
            out-of-fold predictions; ``None`` predicts the most probable class.
        threshold_metric: the metric the threshold was tuned for.
        target_transform: ``log1p`` when every member was fitted on ``log1p`` of a regression
            target and their combined prediction is turned back with ``expm1``, else
            ``None`` (the form models took before ``member_targets``; still read).
        target_shift: with ``log1p``, the constant added to the combined prediction before
            ``expm1`` (fitted on out-of-fold predictions: ``expm1`` alone estimates a median,
            low for the mean of a skewed target).
        member_targets: regression: each member's ``(transform, shift)``, applied to its
            prediction before the weighted sum, so members fitted on the target and on
            ``log1p`` of it are combined in the target's units (``None``: every member
            answers in the target's units, or ``target_transform`` applies).
        calibration: a multiclass model's per-class calibration of its combined
            probabilities (``{"scale": [...], "bias": [...]}``, vector scaling), else ``None``.
        families: each member's model family (for display).
    """

    def __init__(
        self,
        *,
        members: Sequence[Any],
        weights: Sequence[float],
        task: str,
        feature_columns: Sequence[str],
        classes: Sequence[Any] | None = None,
        threshold: float | None = None,
        families: Sequence[str] = (),
        threshold_metric: str | None = None,
        target_transform: str | None = None,
        calibration: dict[str, list[float]] | None = None,
        target_shift: float = 0.0,
        member_targets: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        self.members = members
        self.weights = weights
        self.task = task
        self.feature_columns = feature_columns
        self.classes = classes
        self.threshold = threshold
        self.families = families
        self.threshold_metric = threshold_metric
        self.target_transform = target_transform
        self.target_shift = float(target_shift)
        self.member_targets = (
            None if member_targets is None else [(str(t), float(s)) for t, s in member_targets]
        )
        self.calibration = calibration
        # identifier columns (row numbers, keys) are dropped by the encoder: not required
        kinds = getattr(_encoder(members[0]), "kinds", {}) if members else {}
        self.feature_names_in_ = np.asarray(
            [c for c in feature_columns if kinds.get(c) != "identifier"], dtype=object
        )
        self.n_features_in_ = len(self.feature_names_in_)
        if classes is not None:
            self.classes_ = np.asarray(list(classes))

    def __sklearn_is_fitted__(self) -> bool:
        return True

    @property
    def is_ensemble(self) -> bool:
        """Whether more than one pipeline votes."""
        return len(self.members) > 1

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise InputError(f"Predict takes a pandas DataFrame; got {type(X).__name__}")
        required = list(self.feature_names_in_)
        missing = [c for c in required if c not in X.columns]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise SchemaMismatchError(f"The input lacks feature columns the model reads: {shown}")
        return X.loc[:, required]

    def expect_pii(self, actions: Mapping[str, str]) -> None:
        """Declare the input columns the training's PII policy replaced (column -> ``hash``
        or ``mask``): predictions then refuse rows holding raw values in them. The policy's
        key is not kept; the check is on the values' form (see ``security.not_applied``)."""
        read = set(self.feature_names_in_.tolist())
        found = {str(c): str(a) for c, a in actions.items() if c in read and a != "keep"}
        if found:
            self.pii_inputs = found
        else:
            self.__dict__.pop("pii_inputs", None)

    def _refuse_raw(self, columns: Mapping[str, Any] | pd.DataFrame) -> None:
        actions: dict[str, str] | None = self.__dict__.get("pii_inputs")
        if not actions:
            return
        raw = not_applied(columns, actions)
        if raw:
            words = {"hash": "hashed (pii_ + 16 hex digits)", "mask": "masked ('***')"}
            shown = ", ".join(f"{c} ({words.get(actions[c], actions[c])})" for c in raw)
            raise InputError(
                f"The model was trained on PII columns as the policy leaves them and got raw "
                f"values in: {shown}. Apply the policy first: "
                "forgeml.security.apply_pii(rows, settings, policy=result.pii)[0], or predict "
                "with forgeml.load(...), which applies it to raw rows"
            )

    def _combined(self, X: pd.DataFrame) -> np.ndarray:
        if isinstance(X, pd.DataFrame) and len(X) <= _SMALL_FRAME:
            compiled = self._compiled()
            if compiled is not None:
                required = self.feature_names_in_.tolist()
                at: Sequence[int] | None = None
                if X.columns.tolist() == required:  # the usual case: no lookup by name
                    at = range(len(required))
                elif X.columns.is_unique and all(c in X.columns for c in required):
                    at = X.columns.get_indexer(required)
                if at is not None:
                    # one plain list per column: no frame is built
                    array = X.to_numpy(dtype=object)
                    columns = {c: array[:, j].tolist() for c, j in zip(required, at, strict=True)}
                    self._refuse_raw(columns)
                    return compiled.combined(columns, len(X))
        frame = self._frame(X)
        self._refuse_raw(frame)
        targets = getattr(self, "member_targets", None)  # None in a model saved before them
        return weighted_prediction(self.members, self.weights, frame, self.task, targets)

    def _compiled(self) -> CompiledModel | None:
        """The compiled model when every member runs on arrays (built on first use, never
        saved: see ``__getstate__``), else ``None``."""
        if "_compiled_model" not in self.__dict__:
            compiled: CompiledModel | None
            try:
                compiled = CompiledModel(self, raw_predict=raw_predict)
            except NotCompilable:
                compiled = None
            self.__dict__["_compiled_model"] = compiled if compiled and compiled.direct else None
        found: CompiledModel | None = self.__dict__["_compiled_model"]
        return found

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_compiled_model", None)  # a cache of closures, rebuilt when needed
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a model saved before members had their own target transforms
        super().__setstate__({"member_targets": None, **state})

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class in ``classes_`` order.

        Raises:
            InputError: the model is a regressor, ``X`` is not a DataFrame, or it holds raw
                values in a column the PII policy replaced (``pii_inputs``).
            SchemaMismatchError: a feature column is missing.
        """
        if self.task == "regression":
            raise InputError("predict_proba needs a classifier; this model is a regressor")
        proba = self._combined(X)
        proba = proba / proba.sum(axis=1, keepdims=True)
        return apply_calibration(proba, getattr(self, "calibration", None))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted values (regression) or class labels (classification).

        Raises:
            InputError: ``X`` is not a DataFrame, or holds raw values in a column the PII
                policy replaced (``pii_inputs``).
            SchemaMismatchError: a feature column is missing.
        """
        return self.predict_with_proba(X)[0]

    def predict_with_proba(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and, for classifiers, the class probabilities they come from (one
        pass over the members instead of two).

        Raises:
            InputError: ``X`` is not a DataFrame, or holds raw values in a column the PII
                policy replaced (``pii_inputs``).
            SchemaMismatchError: a feature column is missing.
        """
        if self.task == "regression":
            values = self._combined(X)
            transform = getattr(self, "target_transform", None)
            return _inverse(values, transform, getattr(self, "target_shift", 0.0)), None
        proba = self.predict_proba(X)
        return self._labels(proba), proba

    def _labels(self, proba: np.ndarray) -> np.ndarray:
        if self.threshold is not None and proba.shape[1] == 2:
            codes = (proba[:, 1] >= self.threshold).astype(int)
        else:
            codes = np.argmax(proba, axis=1)
        return self.classes_[codes]

    @property
    def explainable_model(self) -> Any:
        """What explanations are computed on: the one refit pipeline of a single tree or
        linear model (exact TreeSHAP or linear SHAP through its encoder, summed back to the
        raw columns), else the model itself (a model-agnostic explainer)."""
        if len(self.members) != 1 or isinstance(self.members[0], FoldBag | StackedBag):
            return self
        if getattr(self, "target_transform", None) is not None or any(
            t != "none" for t, _ in getattr(self, "member_targets", None) or []
        ):
            return self  # its members answer on the transformed scale
        if not self.families or self.families[0] not in _EXACTLY_EXPLAINED:
            return self
        return self.members[0]

    def compile_for_serving(self, *, booster_predictor: Any = None) -> CompiledModel:
        """This model as functions of plain column lists (a ``CompiledModel``): the encoding
        compiled to array lookups once, each member's native predictor called on arrays
        without DataFrames. Same numbers as ``predict_with_proba``; a caller that serves it
        still checks that on known rows first.

        Args:
            booster_predictor: given a LightGBM booster, its predictor of a few rows (a
                function returning ``None``: ``Booster.predict``); LightGBM's single-row
                API by default.

        Raises:
            NotCompilable: a member is not an (encoder, estimator) pipeline.
        """
        return CompiledModel(self, raw_predict=raw_predict, booster_predictor=booster_predictor)

    def unseen_categories(self, X: pd.DataFrame) -> dict[str, int]:
        """How many values of each categorical column of ``X`` were never seen in training
        (they are read as missing). Nothing is counted inside the model: a fitted model does
        not change when it predicts.

        Raises:
            InputError: ``X`` is not a DataFrame.
        """
        if not self.members:
            return {}
        return dict(_encoder(self.members[0]).unseen_categories(self._frame(X)))

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        parts = ", ".join(f"{f}:{w:.2f}" for f, w in zip(self.families, self.weights, strict=False))
        return f"TrainedModel(task={self.task!r}, members=[{parts}])"
