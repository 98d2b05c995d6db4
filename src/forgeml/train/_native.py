"""LightGBM's and XGBoost's C prediction functions called directly on a few rows.

``Booster.predict`` (LightGBM) and ``Booster.inplace_predict`` (XGBoost) validate their input,
build a configuration and an array description, and convert the output on every call: tens to
hundreds of microseconds that dominate a one-row prediction of a bagged ensemble (one call per
fold model). Here that work is done once, when the predictor is made:

- ``lightgbm_rows``: LightGBM's single-row API (``LGBM_BoosterPredictForMatSingleRowFast``),
  its prediction set-up made once;
- ``xgboost_rows``: ``XGBoosterPredictFromDense``, the function ``inplace_predict`` calls, with
  its configuration encoded once and the array description written by one format; a few rows
  are answered by walking the trees in NumPy instead (``train._xgboost_walk``), which gives
  the same float32 numbers (checked when it is made) in a fraction of the time;
- ``xgboost_forest``: the trees of several boosters (a bag's fold models) walked at once.

Both give the numbers the library's own call gives (the same C function, or the single-row
variant of the same prediction), and hold the GIL while they run (a few microseconds: letting
go of it hands it to any other thread, and the caller then waits to take it back), so they are
for small batches only; a caller uses the library's own call for more rows.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from forgeml.train._xgboost_walk import XGBoostForest

__all__ = ["ROWS", "lightgbm_rows", "xgboost_forest", "xgboost_rows"]

# Rows up to which the direct calls are used (they hold the GIL while they run).
ROWS = 8

RowsPredictor = Callable[[np.ndarray], np.ndarray]


def lightgbm_rows(booster: Any) -> RowsPredictor | None:
    """What ``booster.predict(X)`` gives, for a few rows, through LightGBM's single-row API,
    or ``None`` when this LightGBM has no such API."""
    try:
        return _LightGBMRows(booster).predict
    except (AttributeError, OSError):
        return None


class _LightGBMRows:
    """LightGBM's single-row prediction C API: the prediction set-up is done once, which makes
    a one-row call several times cheaper than ``Booster.predict``. Calls are serialised (one
    configuration, one output buffer)."""

    def __init__(self, booster: Any) -> None:
        from lightgbm.basic import _LIB, _safe_call

        self._lib = _LIB
        self._safe_call = _safe_call
        self._config = ctypes.c_void_p()
        best = int(getattr(booster, "best_iteration", 0) or 0)
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(0),  # C_API_PREDICT_NORMAL: probabilities / values
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(best if best > 0 else -1),  # to the best (as predict), or the last
                ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
                ctypes.c_int32(booster.num_feature()),
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
        self._call = ctypes.PyDLL(_LIB._name, handle=_LIB._handle)[
            "LGBM_BoosterPredictForMatSingleRowFast"
        ]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """What ``Booster.predict(X)`` gives, one row at a time."""
        rows = np.ascontiguousarray(X, dtype=np.float64)
        c_void_p = ctypes.c_void_p
        call = self._call
        if len(rows) == 1:
            with self._lock:
                self._safe_call(
                    call(self._config, c_void_p(rows.ctypes.data), self._length_ref, self._out_ptr)
                )
                one = self._out.copy()
            return one if self._outputs == 1 else one.reshape(1, self._outputs)
        out = np.empty((len(rows), self._outputs), dtype=np.float64)
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


def xgboost_rows(
    booster: Any, iteration_range: tuple[int, int] = (0, 0), *, walk: bool = True
) -> RowsPredictor | None:
    """What ``booster.inplace_predict(X, iteration_range=...)`` gives for a float64 matrix
    ``X`` of a few rows, through the C function it calls, or ``None`` when this XGBoost does
    not have it. The booster's own thread setting applies (one thread: set ``nthread``).

    With ``walk``, the booster's trees are walked in NumPy instead for up to
    ``XGBoostForest.walk_rows`` rows (``train._xgboost_walk``), when that gives the C
    function's numbers to the last bit on rows made to sit on and beside every split."""
    try:
        rows = _XGBoostRows(booster, iteration_range).predict
    except (AttributeError, OSError, ImportError):
        return None
    if not walk:
        return rows
    width = int(booster.num_features())
    forest = XGBoostForest.of([(booster, iteration_range)], [list(range(width))], [rows])
    if forest is None or forest.walk_rows == 0:
        return rows
    walked_rows = forest.walk_rows

    def predict(X: np.ndarray) -> np.ndarray:
        return forest.predict(X)[0] if len(X) <= walked_rows else rows(X)

    return predict


def xgboost_forest(
    boosters: Sequence[tuple[Any, tuple[int, int]]], slots: Sequence[Sequence[int]]
) -> XGBoostForest | None:
    """The trees of ``boosters`` (each with its iteration range) walked at once, reading
    booster ``b``'s feature ``j`` from column ``slots[b][j]`` of one matrix, when that gives
    each booster's ``inplace_predict`` numbers to the last bit on probe rows; else ``None``."""
    try:
        references = [_XGBoostRows(b, r).predict for b, r in boosters]
    except (AttributeError, OSError, ImportError):
        return None
    return XGBoostForest.of(boosters, slots, references)


class _XGBoostRows:
    """``XGBoosterPredictFromDense`` with the prediction configuration encoded once.

    XGBoost keeps each thread's prediction output in the booster until that thread's next
    prediction; it is copied out before the call returns, with the GIL held throughout."""

    def __init__(self, booster: Any, iteration_range: tuple[int, int]) -> None:
        from xgboost.core import _LIB, _check_call, _ProxyDMatrix, c_bst_ulong

        self._booster = booster  # the handle lives as long as the booster
        self._handle = booster.handle
        self._check = _check_call
        self._features = int(booster.num_features())
        # inplace_predict's configuration for a prediction (not the margin), as it writes it
        # (written out: XGBoost reads NaN for "missing", which forgeml's JSON policy writes as
        # null)
        self._config = (
            b'{"type": 0, "training": false, "iteration_begin": %d, "iteration_end": %d, '
            b'"missing": NaN, "strict_shape": false, "cache_id": 0}'
            % (int(iteration_range[0]), int(iteration_range[1]))
        )
        self._shape = ctypes.POINTER(c_bst_ulong)()
        self._dims = c_bst_ulong()
        self._preds = ctypes.POINTER(ctypes.c_float)()
        self._refs = (
            ctypes.byref(self._shape),
            ctypes.byref(self._dims),
            ctypes.byref(self._preds),
        )
        # one proxy of the input for every call: without it, XGBoost makes a new one per call,
        # whose context reads the cgroup's CPU quota from files (most of a one-row call)
        self._proxy = _ProxyDMatrix()
        self._lock = threading.Lock()
        self._call = ctypes.PyDLL(_LIB._name, handle=_LIB._handle)["XGBoosterPredictFromDense"]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """What ``inplace_predict(X)`` gives (float32, its shape)."""
        rows = np.ascontiguousarray(X, dtype=np.float64)
        n, width = rows.shape
        if width != self._features:
            raise ValueError(f"Feature shape mismatch, expected: {self._features}, got {width}")
        interface = (
            b'{"data":[%d,true],"shape":[%d,%d],"strides":null,"typestr":"<f8","version":3}'
            % (rows.ctypes.data, n, width)
        )
        shape_ref, dims_ref, preds_ref = self._refs
        with self._lock:
            self._check(
                self._call(
                    self._handle,
                    interface,
                    self._config,
                    self._proxy.handle,
                    shape_ref,
                    dims_ref,
                    preds_ref,
                )
            )
            shape = tuple(self._shape[i] for i in range(self._dims.value))
            out = np.frombuffer(
                ctypes.string_at(self._preds, 4 * math.prod(shape)), dtype=np.float32
            )
        return out.reshape(shape)
