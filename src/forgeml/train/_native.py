"""LightGBM's and XGBoost's C prediction functions called directly on a few rows.

``Booster.predict`` (LightGBM) and ``Booster.inplace_predict`` (XGBoost) validate their input,
build a configuration and an array description, and convert the output on every call: tens to
hundreds of microseconds that dominate a one-row prediction of a bagged ensemble (one call per
fold model). Here that work is done once, when the predictor is made:

- ``lightgbm_rows``: LightGBM's single-row API (``LGBM_BoosterPredictForMatSingleRowFast``),
  its prediction set-up made once;
- ``xgboost_rows``: ``XGBoosterPredictFromDense``, the function ``inplace_predict`` calls, with
  its configuration encoded once and the array description written by one format; for a
  regression booster (no link function, numeric splits) one row is answered by walking its
  trees in NumPy instead, which gives the same float32 numbers (checked when it is made) in a
  fraction of the time for deep models.

Both give the numbers the library's own call gives (the same C function, or the single-row
variant of the same prediction), and hold the GIL while they run (a few microseconds: letting
go of it hands it to any other thread, and the caller then waits to take it back), so they are
for small batches only; a caller uses the library's own call for more rows.
"""

from __future__ import annotations

import ctypes
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ROWS", "lightgbm_rows", "xgboost_rows"]

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


def xgboost_rows(booster: Any, iteration_range: tuple[int, int] = (0, 0)) -> RowsPredictor | None:
    """What ``booster.inplace_predict(X, iteration_range=...)`` gives for a float64 matrix
    ``X`` of a few rows, through the C function it calls, or ``None`` when this XGBoost does
    not have it. The booster's own thread setting applies (one thread: set ``nthread``).

    A regression booster's trees are walked in NumPy instead for up to one row per
    ``_TREES_PER_WALKED_ROW`` trees (``_XGBoostWalk``), when that gives the C function's
    numbers to the last bit on rows made to sit on and beside every split."""
    try:
        rows = _XGBoostRows(booster, iteration_range).predict
    except (AttributeError, OSError, ImportError):
        return None
    walk = _XGBoostWalk.of(booster, iteration_range, rows)
    if walk is None:
        return rows
    walked_rows = walk.walk_rows

    def predict(X: np.ndarray) -> np.ndarray:
        return walk.predict(X) if len(X) <= walked_rows else rows(X)

    return predict


# XGBoost's predictor sets up each tree for a block of rows, and one deep tree costs it about
# 3 us for one row; the NumPy walk of all trees at once costs per row and tree level: measured
# on bike-sharing (1,000 trees of depth 8, one thread), one row 0.53 ms walked vs 2.85 ms
# through the C function, 8 rows 2.6 vs 3.7 ms.
_TREES_PER_WALKED_ROW = 125
# Objectives whose prediction is the sum of the leaves (no link function), so a float32 sum in
# XGBoost's order gives its numbers exactly.
_IDENTITY_OBJECTIVES = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")


class _XGBoostWalk:
    """A regression booster's trees walked in NumPy, all at once, for a few rows: values
    compared as float32 (``x < split``; missing goes the split's default way) and the leaves
    added to the base score in tree order in float32, as XGBoost does."""

    def __init__(self, base: np.float32, trees: list[dict[str, Any]]) -> None:
        sizes = np.array([len(t["left_children"]) for t in trees], dtype=np.intp)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        shift = np.repeat(starts, sizes)
        left = np.concatenate([t["left_children"] for t in trees]).astype(np.intp)
        right = np.concatenate([t["right_children"] for t in trees]).astype(np.intp)
        self.leaf = left == -1
        at_leaf = np.flatnonzero(self.leaf)
        left += shift
        right += shift
        left[at_leaf] = at_leaf  # a leaf stays where it is
        right[at_leaf] = at_leaf
        self.left, self.right, self.starts = left, right, starts
        self.feature = np.concatenate([t["split_indices"] for t in trees]).astype(np.intp)
        # a split's threshold, or a leaf's value
        self.condition = np.concatenate([t["split_conditions"] for t in trees]).astype(np.float32)
        self.default_left = np.concatenate([t["default_left"] for t in trees]).astype(bool)
        self.base = np.float32(base)
        self.walk_rows = max(1, len(trees) // _TREES_PER_WALKED_ROW)

    @classmethod
    def of(
        cls, booster: Any, iteration_range: tuple[int, int], reference: RowsPredictor
    ) -> _XGBoostWalk | None:
        """The walk of ``booster``'s trees in ``iteration_range``, or ``None`` when the booster
        is not a one-target regression on numeric splits, or the walk does not give
        ``reference``'s numbers exactly."""
        try:
            learner = json.loads(booster.save_config())["learner"]
            params = learner["learner_model_param"]
            if learner["objective"]["name"] not in _IDENTITY_OBJECTIVES:
                return None
            if int(params.get("num_target", "1")) != 1:
                return None
            base = np.ravel(json.loads(params["base_score"]))
            model = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
            indptr = model["iteration_indptr"]
            begin, end = iteration_range
            trees = model["trees"][indptr[begin] : indptr[end or len(indptr) - 1]]
            if len(base) != 1 or not trees or any(any(t["split_type"]) for t in trees):
                return None
            walk = cls(np.float32(base[0]), trees)
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        probe = walk.probe_rows(int(booster.num_features()))
        if not np.array_equal(walk.predict(probe), np.asarray(reference(probe)).reshape(-1)):
            return None
        return walk

    def probe_rows(self, width: int, n: int = 8) -> np.ndarray:
        """Rows whose values sit on, just below and just above the splits' thresholds, or
        are missing (seeded: the same rows for the same trees)."""
        rng = np.random.default_rng(0)
        inner = np.flatnonzero(~self.leaf)
        X = rng.normal(size=(n, width)).astype(np.float32)
        for j in range(width):
            at = inner[self.feature[inner] == j]
            if not at.size:
                continue
            thresholds = self.condition[rng.choice(at, size=n)]
            side = rng.integers(0, 4, size=n)
            X[:, j] = np.where(
                side == 0,
                thresholds,
                np.where(
                    side == 1,
                    np.nextafter(thresholds, np.float32(-np.inf)),
                    np.where(side == 2, np.nextafter(thresholds, np.float32(np.inf)), np.nan),
                ),
            )
        return X.astype(np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The predictions of ``X``'s rows (float32, one per row)."""
        X = np.asarray(X, dtype=np.float32)
        n, width = X.shape
        flat = np.ascontiguousarray(X).reshape(-1)
        starts, leaf, condition = self.starts, self.leaf, self.condition
        node = np.tile(starts, n)  # one entry per row and tree, row by row
        row_start = np.repeat(np.arange(n, dtype=np.intp) * width, len(starts))
        active = np.flatnonzero(~leaf[node])
        while active.size:  # only the entries not yet at a leaf move on
            at = node[active]
            x = flat[row_start[active] + self.feature[at]]
            go_left = np.where(np.isnan(x), self.default_left[at], x < condition[at])
            at = np.where(go_left, self.left[at], self.right[at])
            node[active] = at
            active = active[~leaf[at]]
        added = np.empty((n, len(starts) + 1), dtype=np.float32)
        added[:, 0] = self.base
        added[:, 1:] = condition[node].reshape(n, len(starts))
        return np.add.accumulate(added, axis=1)[:, -1]


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
