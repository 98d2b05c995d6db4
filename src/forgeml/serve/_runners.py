"""Runners: a loaded model version called on a batch of validated columns.

``FrameRunner`` works for every flavor: it builds a DataFrame and calls the registry's model
(``LoadedModel.predict_both``). ``BoosterRunner`` is the fast path for a LightGBM booster: it
encodes the columns into a float matrix exactly as LightGBM encodes a pandas frame (category
codes in the training order, NaN for missing) and calls the booster directly, which removes the
DataFrame round trip that dominates small batches. A booster runner is only used after it gave
the same answers as the frame runner on the model's reference rows.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd

from forgeml.registry import LoadedModel

__all__ = ["BoosterRunner", "FrameRunner", "Runner", "TypedFrameRunner", "runner_for"]

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


class BoosterRunner(Runner):
    """A LightGBM booster called on a float matrix."""

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        booster = model.model
        signature = model.signature
        if list(booster.feature_name()) != list(signature.names):
            raise ValueError("the booster's feature names differ from the signature's")
        categorical = [c for c in signature.inputs if c.dtype == "category"]
        pandas_categorical = list(getattr(booster, "pandas_categorical", None) or [])
        if len(categorical) != len(pandas_categorical):
            raise ValueError("the booster's categorical columns differ from the signature's")
        self._encoders: list[dict[Any, float] | None] = []
        by_name = {
            c.name: list(cats) for c, cats in zip(categorical, pandas_categorical, strict=False)
        }
        for column in signature.inputs:
            if column.name in by_name:
                if column.categories is not None and list(column.categories) != [
                    _plain(v) for v in by_name[column.name]
                ]:
                    raise ValueError(f"categories of {column.name!r} differ")
                self._encoders.append(
                    {_plain(v): float(i) for i, v in enumerate(by_name[column.name])}
                )
            elif column.kind in ("numeric", "integer", "boolean"):
                self._encoders.append(None)
            else:
                raise ValueError(f"column {column.name!r} is {column.kind}")
        self._booster = booster
        self._names = signature.names
        self._classifier = bool(model.metadata["model"].get("classifier"))
        self._threshold = model.threshold
        try:
            self._single: _SingleRow | None = _SingleRow(booster, len(self._names))
        except (AttributeError, OSError):  # a LightGBM without the single-row C API
            self._single = None

    def encode(self, columns: dict[str, list[Any]], n: int) -> np.ndarray:
        """The float matrix LightGBM would build from the same rows as a DataFrame."""
        X = np.empty((n, len(self._names)), dtype=np.float64)
        nan = np.nan
        for j, (name, encoder) in enumerate(zip(self._names, self._encoders, strict=True)):
            values = columns[name]
            if encoder is None:
                X[:, j] = np.array(values, dtype=np.float64)  # None -> nan
            else:
                get = encoder.get
                X[:, j] = [nan if v is None else get(v, nan) for v in values]
        return X

    def run(self, columns: dict[str, list[Any]], n: int) -> tuple[list[Any], np.ndarray | None]:
        X = self.encode(columns, n)
        if n <= _SINGLE_ROWS and self._single is not None:
            raw = self._single.predict(X)
        else:
            params = {"num_threads": 1} if n < _SMALL_BATCH else {}
            raw = np.asarray(self._booster.predict(X, **params))
        if not self._classifier:
            return raw.tolist(), None
        proba = np.column_stack((1.0 - raw, raw)) if raw.ndim == 1 else raw
        assert self.classes is not None
        classes = self.classes
        if self._threshold is not None:  # the bundle's decision threshold, as LoadedModel
            codes = (proba[:, 1] >= self._threshold).astype(np.int64)
        else:
            codes = np.argmax(proba, axis=1)
        return [classes[i] for i in codes.tolist()], proba


class _SingleRow:
    """LightGBM's single-row prediction C API (``LGBM_BoosterPredictForMatSingleRowFast``):
    the prediction set-up is done once, which makes a one-row call several times cheaper
    than ``Booster.predict``. Calls are serialised (one configuration, one buffer)."""

    def __init__(self, booster: Any, n_columns: int) -> None:
        import ctypes
        import threading

        from lightgbm.basic import _LIB, _safe_call

        self._ctypes = ctypes
        self._lib = _LIB
        self._safe_call = _safe_call
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL: probabilities / values
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(-1),  # to the best (or last) one
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                ctypes.c_int32(n_columns),
                b"num_threads=1",
                ctypes.byref(self._config),
            )
        )
        self._outputs = int(booster.num_model_per_iteration())
        self._out = np.empty(self._outputs, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._length = ctypes.c_int64()
        self._length_ref = ctypes.byref(self._length)
        self._lock = threading.Lock()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """What ``Booster.predict(X)`` gives, one row at a time."""
        rows = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty((len(rows), self._outputs), dtype=np.float64)
        c_void_p = self._ctypes.c_void_p
        call = self._lib.LGBM_BoosterPredictForMatSingleRowFast
        with self._lock:
            for i in range(len(rows)):
                self._safe_call(
                    call(
                        self._config, c_void_p(rows[i].ctypes.data), self._length_ref, self._out_ptr
                    )
                )
                out[i] = self._out
        return out[:, 0] if self._outputs == 1 else out

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._lib.LGBM_FastConfigFree(config)


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
    try:
        expected, expected_proba = general.run(columns, len(rows))
    except Exception as e:  # the reference rows do not fit: keep the general path
        _log.info("%s@%s: fast paths not checked (%s)", model.name, model.version, e)
        return general
    candidates: list[type[Runner]] = [TypedFrameRunner]
    if model.metadata.get("flavor") == "lightgbm":
        candidates.insert(0, BoosterRunner)
    for candidate in candidates:
        try:
            fast = candidate(model)  # type: ignore[call-arg]
            got, got_proba = fast.run(columns, len(rows))
            for i in range(min(10, len(rows))):  # small requests may take another path
                one, one_proba = fast.run({c: v[i : i + 1] for c, v in columns.items()}, 1)
                if one != got[i : i + 1] or (
                    one_proba is not None
                    and got_proba is not None
                    and not np.allclose(one_proba, got_proba[i : i + 1], rtol=0, atol=1e-12)
                ):
                    raise ValueError("one-row answers differ from batch answers")
        except Exception as e:
            _log.info("%s@%s: no %s (%s)", model.name, model.version, candidate.__name__, e)
            continue
        same = expected == got and (
            expected_proba is None
            or (
                got_proba is not None and np.allclose(expected_proba, got_proba, rtol=0, atol=1e-12)
            )
        )
        if same:
            return fast
        _log.warning(
            "%s@%s: %s disagrees with the checked path",
            model.name,
            model.version,
            candidate.__name__,
        )
    return general


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json_list(values: np.ndarray) -> list[Any]:
    out = np.asarray(values)
    if out.dtype == object:
        return [_plain(v) for v in out.tolist()]
    return out.tolist()  # type: ignore[no-any-return]
