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

__all__ = ["BoosterRunner", "FrameRunner", "Runner", "runner_for"]

_log = logging.getLogger("forgeml.serve")
_SMALL_BATCH = 2_000  # rows: below this, one thread predicts faster than a pool


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
        params = {"num_threads": 1} if n < _SMALL_BATCH else {}
        raw = np.asarray(self._booster.predict(X, **params))
        if not self._classifier:
            return raw.tolist(), None
        proba = np.column_stack((1.0 - raw, raw)) if raw.ndim == 1 else raw
        assert self.classes is not None
        classes = self.classes
        return [classes[i] for i in np.argmax(proba, axis=1).tolist()], proba


def runner_for(model: LoadedModel, *, sample: pd.DataFrame | None = None) -> Runner:
    """The fastest runner that gives the registry model's own answers.

    Args:
        model: the loaded version.
        sample: rows to compare the fast path against (default: the bundle's reference rows).
    """
    general = FrameRunner(model)
    if model.metadata.get("flavor") != "lightgbm":
        return general
    try:
        fast = BoosterRunner(model)
    except (ValueError, AttributeError, KeyError) as e:
        _log.info("%s@%s: no booster fast path (%s)", model.name, model.version, e)
        return general
    rows = sample if sample is not None else model.reference()
    if rows is None or len(rows) == 0:
        return general
    rows = rows.loc[:, list(model.signature.names)].head(200)
    columns = {c: [_plain(v) for v in rows[c].astype(object)] for c in rows.columns}
    columns = {c: [None if v != v else v for v in vs] for c, vs in columns.items()}
    try:
        expected, expected_proba = general.run(columns, len(rows))
        got, got_proba = fast.run(columns, len(rows))
    except Exception as e:  # the reference rows do not fit: keep the general path
        _log.info("%s@%s: fast path not checked (%s)", model.name, model.version, e)
        return general
    same = expected == got and (
        expected_proba is None
        or (got_proba is not None and np.allclose(expected_proba, got_proba, rtol=0, atol=1e-12))
    )
    if not same:
        _log.warning(
            "%s@%s: fast path disagrees; using the DataFrame path", model.name, model.version
        )
        return general
    return fast


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json_list(values: np.ndarray) -> list[Any]:
    out = np.asarray(values)
    if out.dtype == object:
        return [_plain(v) for v in out.tolist()]
    return out.tolist()  # type: ignore[no-any-return]
