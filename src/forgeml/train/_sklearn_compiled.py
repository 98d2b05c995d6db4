"""Fitted scikit-learn preprocessing and models as plain array functions.

scikit-learn validates its input and builds DataFrames on every call; on one row that costs far
more than the arithmetic (a ``ColumnTransformer`` of imputation, scaling and one-hot encoding
takes milliseconds where the arithmetic takes microseconds). Compiling reads the fitted
state once and returns functions of NumPy arrays:

- ``SimpleImputer`` (missing values ``NaN``; ``None`` counts as missing in text columns): the
  fitted statistics filled in, the missing indicators appended;
- ``StandardScaler``: ``(x - mean_) / scale_``, in that order, as scikit-learn computes it;
- ``OneHotEncoder``, ``OrdinalEncoder``, ``TargetEncoder``: each column's output for every
  known category (and for an unknown one and a missing one) is read once from the fitted
  encoder's own ``transform`` on probe rows, then looked up per value;
- ``ColumnTransformer`` and ``Pipeline`` compose those;
- the forests call each tree's ``tree_.predict`` on the float32 matrix (what the forest's own
  ``predict_proba`` sums, without its validation and thread pool per call).

Anything else raises ``NotCompilable``. Callers check that the compiled function gives the
same numbers as the fitted object on known rows before trusting it (the server's runner gate
does; ``TrainedModel``'s members are compiled from forgeml's own encoder, which the training
tests compare).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ArrayFunction",
    "NotCompilable",
    "compile_forest",
    "compile_transformer",
    "needs_text",
]

ArrayFunction = Callable[[np.ndarray], np.ndarray]


class NotCompilable(ValueError):
    """The object holds a part compiling does not handle (the reason is the message)."""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def compile_transformer(transformer: Any) -> ArrayFunction:
    """A function giving ``transformer.transform(X)`` for a 2-D array ``X`` (float64, or
    object for text columns), as a float64 matrix.

    Raises:
        NotCompilable: a step is not one this module compiles.
    """
    name = type(transformer).__name__
    module = type(transformer).__module__
    if transformer == "passthrough" or transformer is None:
        return lambda X: np.asarray(X, dtype=np.float64)
    if not module.startswith("sklearn"):
        raise NotCompilable(f"{name} is not a scikit-learn transformer")
    if name == "Pipeline":
        steps = [compile_transformer(step) for _, step in transformer.steps]

        def chained(X: np.ndarray) -> np.ndarray:
            for step in steps:
                X = step(X)
            return X

        return chained
    if name == "ColumnTransformer":
        return _column_transformer(transformer)
    if name == "SimpleImputer":
        return _imputer(transformer)
    if name == "StandardScaler":
        return _scaler(transformer)
    if name in ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder"):
        return _by_lookup(transformer)
    raise NotCompilable(f"{name} is not compiled")


def needs_text(transformer: Any) -> bool:
    """Whether ``transformer``'s input must keep its values as they are (categories, text)
    rather than as float64 (its first step is an encoder of categories, or an imputer of
    text)."""
    name = type(transformer).__name__
    if name == "Pipeline":
        return bool(transformer.steps) and needs_text(transformer.steps[0][1])
    if name in ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder"):
        return any(np.asarray(c).dtype.kind in "OUS" for c in transformer.categories_)
    if name == "SimpleImputer":
        return np.asarray(transformer.statistics_).dtype.kind in "OUS"
    return False


def _column_transformer(ct: Any) -> ArrayFunction:
    indices = getattr(ct, "_transformer_to_input_indices", None)
    if indices is None or getattr(ct, "sparse_output_", False):
        raise NotCompilable("a ColumnTransformer without its column indices, or sparse")
    parts: list[tuple[np.ndarray, ArrayFunction]] = []
    for name, fitted, _columns in ct.transformers_:
        if fitted == "drop":
            continue
        at = np.asarray(indices[name], dtype=np.intp)
        if len(at) == 0:
            continue
        parts.append((at, compile_transformer(fitted)))

    def transform(X: np.ndarray) -> np.ndarray:
        outputs = [function(X[:, at]) for at, function in parts]
        if not outputs:
            return np.empty((len(X), 0))
        return np.hstack(outputs) if len(outputs) > 1 else outputs[0]

    return transform


def _imputer(imputer: Any) -> ArrayFunction:
    missing = imputer.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)) and missing is not None:
        raise NotCompilable("a SimpleImputer whose missing value is not NaN")
    statistics = np.asarray(imputer.statistics_)
    text = statistics.dtype.kind in "OUS"
    keep = np.arange(len(statistics))
    if not text and not getattr(imputer, "keep_empty_features", False):
        keep = np.flatnonzero(~np.isnan(statistics.astype(np.float64)))
    indicator = getattr(imputer, "indicator_", None)
    flagged = None if indicator is None else np.asarray(indicator.features_, dtype=np.intp)
    if text:
        fill = statistics.tolist()

        def impute_text(X: np.ndarray) -> np.ndarray:
            X = np.asarray(X, dtype=object)
            mask = np.vectorize(_missing, otypes=[bool])(X) if X.size else np.zeros(X.shape, bool)
            out = X.copy()
            for j in range(X.shape[1]):
                if mask[:, j].any():
                    out[mask[:, j], j] = fill[j]
            out = out[:, keep]
            if flagged is not None and len(flagged):
                return np.hstack([out, mask[:, flagged]])
            return out

        return impute_text
    stats = statistics.astype(np.float64)

    def impute(X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=np.float64)  # a copy: filled in place
        mask = np.isnan(X)
        if mask.any():
            rows, columns = np.nonzero(mask)
            X[rows, columns] = stats[columns]
        out = X[:, keep] if len(keep) != X.shape[1] else X
        if flagged is not None and len(flagged):
            return np.hstack([out, mask[:, flagged].astype(np.float64)])
        return out

    return impute


def _scaler(scaler: Any) -> ArrayFunction:
    mean = None if scaler.mean_ is None or not scaler.with_mean else np.asarray(scaler.mean_)
    scale = None if scaler.scale_ is None or not scaler.with_std else np.asarray(scaler.scale_)

    def scaled(X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=np.float64)
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        return X

    return scaled


class _Unknown:
    """A probe value no encoder has seen."""

    def __repr__(self) -> str:
        return "<unknown>"


def _by_lookup(encoder: Any) -> ArrayFunction:
    """Each column's output per value, read off the encoder's own ``transform``."""
    categories = [list(np.asarray(c, dtype=object)) for c in encoder.categories_]
    name = type(encoder).__name__
    if name == "OneHotEncoder":
        widths = list(getattr(encoder, "_n_features_outs", []))
        if len(widths) != len(categories):
            raise NotCompilable("a OneHotEncoder without its output widths")
    elif name == "TargetEncoder":
        per = len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1
        widths = [per] * len(categories)
    else:
        widths = [1] * len(categories)
    text = any(np.asarray(c).dtype.kind in "OUS" for c in encoder.categories_)
    starts = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    base = [next((v for v in c if not _missing(v)), None) for c in categories]
    if any(b is None for b in base):
        raise NotCompilable("an encoder column without a known category")
    tables: list[dict[Any, np.ndarray]] = []
    unknown_rows: list[np.ndarray | None] = []
    missing_rows: list[np.ndarray | None] = []

    # probed as it is called: a DataFrame when it was fitted on one, else an array
    named = getattr(encoder, "feature_names_in_", None)

    def probe(j: int, values: Sequence[Any]) -> np.ndarray | None:
        rows = np.empty((len(values), len(categories)), dtype=object if text else np.float64)
        rows[:] = base
        rows[:, j] = values
        given: Any = rows
        if named is not None:
            import pandas as pd

            given = pd.DataFrame(rows, columns=list(named))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = encoder.transform(given)
                if hasattr(out, "toarray"):  # a sparse one-hot matrix: its dense values
                    out = out.toarray()
                out = np.asarray(out, dtype=np.float64)
        except (ValueError, TypeError):
            return None
        return out[:, starts[j] : starts[j + 1]]

    for j, known in enumerate(categories):
        plain = [v for v in known if not _missing(v)]
        got = probe(j, plain)
        if got is None:
            raise NotCompilable(f"{name} could not transform its own categories")
        tables.append({v: got[i] for i, v in enumerate(plain)})
        odd = _Unknown() if text else float(np.nanmax(np.asarray(plain, dtype=float)) + 7919.5)
        found = probe(j, [odd])
        unknown_rows.append(None if found is None else found[0])
        # in a frame, pandas reads None among text as NaN: missing is NaN there
        found = probe(j, [None if text and named is None else math.nan])
        missing_rows.append(None if found is None else found[0])
    width = int(starts[-1])

    def lookup(X: np.ndarray) -> np.ndarray:
        n = len(X)
        out = np.empty((n, width), dtype=np.float64)
        for j, table in enumerate(tables):
            start, end = starts[j], starts[j + 1]
            get = table.get
            unknown, absent = unknown_rows[j], missing_rows[j]
            for i, value in enumerate(X[:, j].tolist()):
                if _missing(value):
                    row = absent
                else:
                    row = get(value)
                    if row is None:
                        row = unknown
                if row is None:
                    raise ValueError(f"{name}: a value it cannot encode in input column {j}")
                out[i, start:end] = row
        return out

    return lookup


def compile_forest(forest: Any, task: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function of a float32 matrix giving the forest's ``predict_proba`` (classifiers) or
    ``predict`` (regressors): each tree's leaf values summed in order, divided by the number
    of trees, as the forest computes them.

    Raises:
        NotCompilable: not a fitted single-output scikit-learn forest.
    """
    found = [getattr(e, "tree_", None) for e in getattr(forest, "estimators_", [])]
    trees = [t for t in found if t is not None]
    if not trees or len(trees) != len(found) or getattr(forest, "n_outputs_", 1) != 1:
        raise NotCompilable("not a fitted single-output forest")
    count = len(trees)
    if task == "regression":

        def regress(X: np.ndarray) -> np.ndarray:
            X = np.ascontiguousarray(X, dtype=np.float32)
            out = np.zeros(len(X), dtype=np.float64)
            for tree in trees:
                out += tree.predict(X)[:, 0]
            out /= count
            return out

        return regress
    k = int(forest.n_classes_)

    def classify(X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.zeros((len(X), k), dtype=np.float64)
        for tree in trees:
            out += tree.predict(X)[:, :k]
        out /= count
        return out

    return classify
