"""Runners: a loaded model version called on a batch of validated columns.

``FrameRunner`` works for every flavor: it builds a DataFrame and calls the registry's model
(``LoadedModel.predict_both``). The fast runners skip the DataFrame round trip that dominates
small batches, with the encoding compiled to plain lookups once, at load:

- ``BoosterRunner`` (LightGBM flavor) encodes the columns into the float matrix LightGBM builds
  from a pandas frame (category codes in the training order, NaN for missing) and calls the
  booster (LightGBM's single-row C API for a few rows);
- ``XGBoostRunner`` (XGBoost flavor) does the same for XGBoost's booster and calls
  ``inplace_predict`` (its C function directly for a few rows);
- ``CompiledRunner`` (forgeml's own ``TrainedModel``) calls the model compiled by
  ``TrainedModel.compile_for_serving``: each member's encoder as array lookups, each member's
  native predictor on arrays;
- ``PipelineRunner`` (a scikit-learn ``Pipeline``): its ``ColumnTransformer`` of imputers,
  scalers and encoders compiled to array functions once, the final estimator called on the
  matrix (a forest tree by tree, HistGradientBoosting compiled to its trees);
- ``TypedFrameRunner`` (any flavor) still builds a DataFrame, straight in the signature's types,
  and skips the second check of rows the validator checked already.

A fast runner is only used after it gave exactly the frame runner's predictions (and
probabilities within 1e-12) on the model's reference rows, in one batch and one row at a time
(``runner_for``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd

from forgeml.registry import LoadedModel
from forgeml.train._native import ROWS, lightgbm_rows, xgboost_rows

__all__ = [
    "BoosterRunner",
    "CompiledRunner",
    "FrameRunner",
    "PipelineRunner",
    "Runner",
    "TypedFrameRunner",
    "XGBoostRunner",
    "runner_for",
]

_log = logging.getLogger("forgeml.serve")
_SMALL_BATCH = 2_000  # rows: below this, one thread predicts faster than a pool
_SINGLE_ROWS = 8  # rows: up to this many, LightGBM's single-row API is the faster call


class Runner(ABC):
    """Predicts a batch of rows given as validated columns (signature order)."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.classes: list[Any] | None = (
            None if model.classes is None else [_plain(c) for c in model.classes]
        )

    @abstractmethod
    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        """Predictions (one per row, JSON-ready) and class probabilities (or ``None``)."""


class FrameRunner(Runner):
    """Any flavor, through a DataFrame and the registry's model."""

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        frame = pd.DataFrame(columns)
        labels, proba = self.model.predict_both(frame, probabilities=self.classes is not None)
        return _json_list(labels), proba


class TypedFrameRunner(Runner):
    """Any flavor, through a DataFrame built straight in the signature's types.

    The rows were validated already, so the signature's (vectorised, but costly on a few
    rows) check is skipped: categorical columns become ``pandas.Categorical`` over the
    training categories, numbers float64 (int64 when the training column was and no value is
    missing), booleans bool.
    """

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        self._builders = [(c.name, _column_builder(c)) for c in model.signature.inputs]

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        frame = pd.DataFrame({name: build(columns[name]) for name, build in self._builders})
        labels, proba = self.model.predict_both(
            frame, probabilities=self.classes is not None, check=False
        )
        return _json_list(labels), proba


def _column_builder(column: Any) -> Any:
    kind, dtype = column.kind, column.dtype
    if kind == "categorical" and dtype == "category" and column.categories is not None:
        categories = pd.CategoricalDtype(list(column.categories))
        codes = {v: i for i, v in enumerate(column.categories)}

        def categorical(values: list[Any]) -> Any:
            get = codes.get
            return pd.Categorical.from_codes(
                [-1 if v is None else get(v, -1) for v in values], dtype=categories
            )

        return categorical
    if kind in ("numeric", "integer"):
        integer = dtype.startswith("int")

        def number(values: list[Any]) -> Any:
            out = np.array(values, dtype=np.float64)
            if integer and not np.isnan(out).any():
                return out.astype(dtype)
            return out

        return number
    if kind == "boolean":

        def boolean(values: list[Any]) -> Any:
            if None in values:
                return pd.array(values, dtype="boolean")
            return np.array(values, dtype=bool)

        return boolean
    if kind == "datetime":
        return lambda values: pd.to_datetime(pd.Series(values, dtype=object))
    return lambda values: np.array(values, dtype=object)


class _MatrixRunner(Runner):
    """A runner that encodes validated columns into one float matrix (signature order)."""

    def __init__(self, model: LoadedModel, categories: dict[str, list[Any]]) -> None:
        """``categories``: for each categorical column, its categories in code order."""
        super().__init__(model)
        signature = model.signature
        self._encoders: list[dict[Any, float] | None] = []
        for column in signature.inputs:
            if column.name in categories:
                known = [_plain(v) for v in categories[column.name]]
                if column.categories is not None and set(column.categories) - set(known):
                    raise ValueError(f"categories of {column.name!r} differ")
                self._encoders.append({v: float(i) for i, v in enumerate(known)})
            elif column.kind in ("numeric", "integer", "boolean"):
                self._encoders.append(None)
            else:
                raise ValueError(f"column {column.name!r} is {column.kind}")
        self._names = signature.names
        self._columns = list(zip(self._names, self._encoders, strict=True))
        self._classifier = bool(model.metadata["model"].get("classifier"))
        self._threshold = model.threshold

    def encode(self, columns: dict[str, list[Any]], n: int) -> np.ndarray:
        """The float matrix the booster would build from the same rows as a DataFrame."""
        nan = np.nan
        if n == 1:
            # One row: one conversion of a flat list costs a fraction of one NumPy
            # assignment per column (None becomes nan either way).
            row: list[Any] = []
            for name, encoder in self._columns:
                value = columns[name][0]
                if encoder is not None:
                    value = nan if value is None else encoder.get(value, nan)
                row.append(value)
            return np.array(row, dtype=np.float64).reshape(1, -1)
        X = np.empty((n, len(self._names)), dtype=np.float64)
        for j, (name, encoder) in enumerate(self._columns):
            column = columns[name]
            if encoder is None:
                X[:, j] = np.array(column, dtype=np.float64)  # None -> nan
            else:
                get = encoder.get
                X[:, j] = [nan if v is None else get(v, nan) for v in column]
        return X

    def answer(self, raw: np.ndarray) -> tuple[list[Any], np.ndarray | None]:
        """Predictions (and probabilities) from the booster's raw output."""
        if not self._classifier:
            return raw.tolist(), None
        if raw.ndim == 1:
            if 0 < len(raw) <= _SINGLE_ROWS and raw.dtype == np.float64:
                # the same float64 arithmetic, fewer NumPy calls (XGBoost's float32 keeps its own)
                proba = np.array([[1.0 - p, p] for p in raw.tolist()], dtype=np.float64)
            else:
                proba = np.column_stack((1.0 - raw, raw))
        else:
            proba = raw
        return _labels(proba, self.classes, self._threshold), proba


def _labels(proba: np.ndarray, classes: list[Any] | None, threshold: float | None) -> list[Any]:
    """Labels as ``LoadedModel`` gives them: the bundle's decision threshold, else argmax."""
    assert classes is not None
    if threshold is not None:
        negative, positive = classes[0], classes[1]
        return [positive if hit else negative for hit in (proba[:, 1] >= threshold).tolist()]
    if len(proba) <= _SINGLE_ROWS:
        rows = proba.tolist()
        # argmax's answer (the first largest) where no value is NaN
        if all(v == v for row in rows for v in row):
            return [classes[row.index(max(row))] for row in rows]
    return [classes[i] for i in np.argmax(proba, axis=1).tolist()]


class BoosterRunner(_MatrixRunner):
    """A LightGBM booster called on a float matrix."""

    def __init__(self, model: LoadedModel) -> None:
        booster = model.model
        signature = model.signature
        if list(booster.feature_name()) != list(signature.names):
            raise ValueError("the booster's feature names differ from the signature's")
        categorical = [c.name for c in signature.inputs if c.dtype == "category"]
        pandas_categorical = list(getattr(booster, "pandas_categorical", None) or [])
        if len(categorical) != len(pandas_categorical):
            raise ValueError("the booster's categorical columns differ from the signature's")
        super().__init__(
            model, {c: list(v) for c, v in zip(categorical, pandas_categorical, strict=True)}
        )
        self._booster = booster
        self._single = single_row_predictor(booster)

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        X = self.encode(columns, n)
        if n <= _SINGLE_ROWS and self._single is not None:
            raw = self._single(X)
        else:
            params = {"num_threads": 1} if n < _SMALL_BATCH else {}
            raw = np.asarray(self._booster.predict(X, **params))
        return self.answer(raw)


class XGBoostRunner(_MatrixRunner):
    """An XGBoost model's booster called on a float matrix (``inplace_predict``, or for a few
    rows the C function it calls, called directly), one thread for small batches."""

    def __init__(self, model: LoadedModel) -> None:
        estimator = model.model
        booster = estimator.get_booster()
        signature = model.signature
        names = booster.feature_names
        if names is not None and list(names) != list(signature.names):
            raise ValueError("the booster's feature names differ from the signature's")
        types = list(booster.feature_types or ["float"] * len(signature.names))
        stored = _xgboost_categories(booster)
        categories: dict[str, list[Any]] = {}
        for column, kind in zip(signature.inputs, types, strict=True):
            if kind == "c":
                found = stored.get(column.name)
                if found is None:
                    if column.categories is None:
                        raise ValueError(f"no categories known for {column.name!r}")
                    found = list(column.categories)
                categories[column.name] = found
            elif column.dtype == "category":
                raise ValueError(f"{column.name!r} is categorical but the booster's is not")
        super().__init__(model, categories)
        try:
            best = int(estimator.best_iteration)
            self._iterations: tuple[int, int] = (0, best + 1)
        except AttributeError:  # trained without early stopping: every tree
            self._iterations = (0, 0)
        self._booster = booster
        self._one_thread = booster.copy()
        self._one_thread.set_param({"nthread": 1})
        self._few = xgboost_rows(self._one_thread, self._iterations)

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        X = self.encode(columns, n)
        if n <= ROWS and self._few is not None:
            return self.answer(self._few(X))
        booster = self._one_thread if n < _SMALL_BATCH else self._booster
        raw = np.asarray(booster.inplace_predict(X, iteration_range=self._iterations))
        return self.answer(raw)


def _xgboost_categories(booster: Any) -> dict[str, list[Any]]:
    """The categories XGBoost stored with the model (3.1 and later), by column."""
    get = getattr(booster, "get_categories", None)
    if get is None:
        return {}
    try:
        stored = get(export_to_arrow=True).to_arrow()
    except (TypeError, ValueError):
        return {}
    return {name: array.to_pylist() for name, array in stored if array is not None}


class CompiledRunner(Runner):
    """forgeml's ``TrainedModel`` compiled to array lookups and native predictors."""

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        compile_for_serving = getattr(model.model, "compile_for_serving", None)
        if compile_for_serving is None:
            raise ValueError("the model cannot be compiled for serving")
        self._compiled = compile_for_serving(booster_predictor=single_row_predictor)
        self._threshold = model.threshold

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        labels, proba = self._compiled.predict_both(columns, n)
        if proba is not None and self._threshold is not None:
            return _labels(proba, self.classes, self._threshold), proba
        return _json_list(labels), proba


class PipelineRunner(Runner):
    """A scikit-learn ``Pipeline`` (sklearn flavor) with its preprocessing compiled to array
    functions (``ColumnTransformer`` of imputers, scalers and one-hot, ordinal or target
    encoders; ``train._sklearn_compiled``) and its final estimator called on the matrix:
    a forest tree by tree, HistGradientBoosting compiled to its trees, anything else through
    its own ``predict_proba`` / ``predict`` on the array (no DataFrame, no column
    transformer)."""

    def __init__(self, model: LoadedModel) -> None:
        from forgeml.train._sklearn_compiled import (
            NotCompilable,
            compile_forest,
            compile_hist_gradient_boosting,
            compile_transformer,
            needs_text,
        )

        super().__init__(model)
        pipeline = model.model
        steps = getattr(pipeline, "steps", None)
        if type(pipeline).__name__ != "Pipeline" or not steps or len(steps) < 2:
            raise ValueError("not a scikit-learn Pipeline of preprocessing and a model")
        names_in = getattr(pipeline, "feature_names_in_", None)
        if names_in is None:
            raise ValueError("the pipeline was not fitted on named columns")
        self._names = [str(c) for c in names_in]
        missing = [c for c in self._names if c not in model.signature.names]
        if missing:
            raise ValueError(f"the pipeline reads columns the signature lacks: {missing[:3]}")
        self._steps = [compile_transformer(step) for _, step in steps[:-1]]
        first = steps[0][1]
        text_columns: set[int] = set()
        if type(first).__name__ == "ColumnTransformer":
            for name, fitted, _ in first.transformers_:
                at = first._transformer_to_input_indices.get(name, [])
                if fitted != "drop" and len(at) and needs_text(fitted):
                    text_columns.update(int(i) for i in at)
        elif needs_text(first):
            text_columns = set(range(len(self._names)))
        self._text = bool(text_columns)
        estimator = steps[-1][1]
        self._classifier = self.classes is not None
        if self._classifier and not hasattr(estimator, "predict_proba"):
            raise ValueError("the classifier gives no probabilities")
        task = "classification" if self._classifier else "regression"
        self._forest: Any = None
        if type(estimator).__module__.startswith("sklearn.ensemble") and hasattr(
            estimator, "estimators_"
        ):
            self._forest = compile_forest(estimator, task)
        elif type(estimator).__name__.startswith("HistGradientBoosting"):
            try:
                self._forest = compile_hist_gradient_boosting(estimator)
            except NotCompilable:  # its own predict on the matrix
                self._forest = None
        self._estimator = estimator
        self._threshold = model.threshold

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        if self._text:
            X: np.ndarray = np.empty((n, len(self._names)), dtype=object)
            for j, name in enumerate(self._names):
                X[:, j] = columns[name]
        else:
            X = np.array([columns[name] for name in self._names], dtype=np.float64).T
        for step in self._steps:
            X = step(X)
        if self._forest is not None:
            out = self._forest(X)
        elif self._classifier:
            out = np.asarray(self._estimator.predict_proba(X), dtype=float)
        else:
            out = np.asarray(self._estimator.predict(X), dtype=float)
        if not self._classifier:
            return out.tolist(), None
        return _labels(out, self.classes, self._threshold), out


def single_row_predictor(booster: Any) -> Any:
    """LightGBM's single-row predictor of ``booster`` (a function of a float matrix), or
    ``None`` when this LightGBM has no single-row C API."""
    return lightgbm_rows(booster)


def runner_for(model: LoadedModel, *, sample: pd.DataFrame | None = None) -> Runner:
    """The fastest runner that gives the registry model's own answers.

    Each fast path is used only after it gave exactly the checked path's predictions (and
    probabilities within 1e-12) on the model's reference rows.

    Args:
        model: the loaded version.
        sample: rows to compare the fast paths against (default: the bundle's reference rows).
    """
    general = FrameRunner(model)
    rows = sample if sample is not None else model.reference()
    if rows is None or len(rows) == 0:
        return general
    rows = rows.loc[:, list(model.signature.names)].head(200)
    columns = {c: [_plain(v) for v in rows[c].astype(object)] for c in rows.columns}
    columns = {c: [None if v != v else v for v in vs] for c, vs in columns.items()}
    n = len(rows)
    # one more row: the first, with every column that may be missing missing
    nullable = {c.name for c in model.signature.inputs if c.nullable}
    if nullable:
        for name, values in columns.items():
            values.append(None if name in nullable else values[0])
        n += 1
    try:
        expected, expected_proba = general.run(columns, n)
    except Exception as e:  # the reference rows do not fit: keep the general path
        _log.info("%s@%s: fast paths not checked (%s)", model.name, model.version, e)
        return general
    candidates: list[type[Runner]] = [TypedFrameRunner]
    flavor = model.metadata.get("flavor")
    if flavor == "lightgbm":
        candidates.insert(0, BoosterRunner)
    elif flavor == "xgboost":
        candidates.insert(0, XGBoostRunner)
    elif hasattr(model.model, "compile_for_serving"):
        candidates.insert(0, CompiledRunner)
    elif type(model.model).__name__ == "Pipeline":
        candidates.insert(0, PipelineRunner)
    for candidate in candidates:
        try:
            fast = candidate(model)  # type: ignore[call-arg]
            got, got_proba = fast.run(columns, n)
            for i in [*range(min(10, n)), n - 1]:  # small requests may take another path
                one, one_proba = fast.run({c: v[i : i + 1] for c, v in columns.items()}, 1)
                if not _same(one, one_proba, got[i : i + 1], _rows(got_proba, i)):
                    raise ValueError("one-row answers differ from batch answers")
        except Exception as e:
            _log.info("%s@%s: no %s (%s)", model.name, model.version, candidate.__name__, e)
            continue
        if _same(got, got_proba, expected, expected_proba):
            return fast
        _log.warning(
            "%s@%s: %s disagrees with the checked path",
            model.name,
            model.version,
            candidate.__name__,
        )
    return general


def _rows(proba: np.ndarray | None, i: int) -> np.ndarray | None:
    return None if proba is None else proba[i : i + 1]


def _same(
    labels: list[Any], proba: np.ndarray | None, other: list[Any], other_proba: np.ndarray | None
) -> bool:
    """The same answers: labels equal (regression values within 1e-12, relative), class
    probabilities within 1e-12."""
    if labels != other:
        numbers = (float, int)
        if len(labels) != len(other) or not all(
            type(v) in numbers and type(w) in numbers for v, w in zip(labels, other, strict=True)
        ):
            return False
        if not np.allclose(labels, other, rtol=1e-12, atol=1e-12):
            return False
    if (proba is None) != (other_proba is None):
        return False
    return proba is None or np.allclose(proba, other_proba, rtol=0, atol=1e-12)  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json_list(values: np.ndarray) -> list[Any]:
    out = np.asarray(values)
    if out.dtype == object:
        return [_plain(v) for v in out.tolist()]
    return out.tolist()  # type: ignore[no-any-return]
