"""Checks on the arrays every evaluation function takes, with errors that name the input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError

__all__ = [
    "as_labels",
    "as_scores",
    "check_known_labels",
    "check_same_length",
    "label_text",
]


def as_labels(values: Any, name: str) -> np.ndarray:
    """A one-dimensional array of labels (any hashable values, no missing)."""
    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(f"`{name}` must be one-dimensional; got shape {array.shape}")
    if len(array) == 0:
        raise InputError(f"`{name}` is empty; at least one row is needed")
    if pd.isna(array).any():
        raise InputError(f"`{name}` has {int(pd.isna(array).sum())} missing values")
    return array


def as_scores(values: Any, name: str) -> np.ndarray:
    """Scores or predictions as float64 (one- or two-dimensional), finite, numeric."""
    if isinstance(values, pd.DataFrame | pd.Series):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(
                f"`{name}` must be numeric; got values of type {array.dtype}"
            ) from None
    array = array.astype(np.float64, copy=False)
    if array.ndim not in (1, 2):
        raise InputError(f"`{name}` must be one- or two-dimensional; got shape {array.shape}")
    if len(array) == 0:
        raise InputError(f"`{name}` is empty; at least one row is needed")
    if not np.isfinite(array).all():
        raise InputError(
            f"`{name}` has {int((~np.isfinite(array)).sum())} missing or infinite values"
        )
    return array


def check_same_length(**arrays: Any) -> int:
    """The common length of the named arrays; an ``InputError`` naming both when they differ."""
    lengths = {name: len(a) for name, a in arrays.items() if a is not None}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"`{k}` has {v}" for k, v in lengths.items())
        raise InputError(f"Inputs must have the same number of rows; {described}")
    return next(iter(lengths.values()))


def label_text(values: Sequence[Any] | np.ndarray, limit: int = 5) -> str:
    """A short readable list of labels for an error message."""
    shown = [repr(v.item() if hasattr(v, "item") else v) for v in list(values)[:limit]]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(shown) + more


def check_known_labels(y_true: np.ndarray, classes: np.ndarray, name: str = "y_true") -> None:
    """Refuse labels that the model never saw (it cannot predict them; metrics would lie)."""
    known = set(classes.tolist())
    unseen = [v for v in pd.unique(y_true).tolist() if v not in known]
    if unseen:
        raise InputError(
            f"`{name}` has labels the model was not trained on: {label_text(unseen)}; "
            f"the model knows {label_text(classes)}"
        )
