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
- ``ColumnTransformer`` and ``Pipeline`` compose those ("passthrough" columns, and a
  ``FunctionTransformer`` without a function, as they are);
- the forests call each tree's ``tree_.predict`` on the float32 matrix (what the forest's own
  ``predict_proba`` sums, without its validation and thread pool per call);
- HistGradientBoosting: its categorical columns mapped to the ordinal codes its own encoder
  gives, then its trees walked together in NumPy for a few rows (``train._hgb_walk``, used
  only when it matched scikit-learn's predictor on probe rows), or scikit-learn's compiled
  predictor called tree by tree for more; leaf values added in its order and turned into
  probabilities or values by its own loss (see ``compile_hist_gradient_boosting``).

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

from forgeml.train._hgb_walk import HGBForest

__all__ = [
    "ArrayFunction",
    "NotCompilable",
    "compile_forest",
    "compile_hist_gradient_boosting",
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
    if name == "FunctionTransformer" and transformer.func is None:
        # what a ColumnTransformer's "passthrough" becomes when fitted: the identity
        return lambda X: np.asarray(X, dtype=np.float64)
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


# HistGradientBoosting's trees are walked together in NumPy (``train._hgb_walk``) for up to one
# row per this many trees (at least one, at most ``_MOST_WALKED_ROWS``); more rows go to
# scikit-learn's compiled predictor, tree by tree. Its set-up costs a few microseconds per tree
# and call; the walk costs per row and level. Measured on Adult (one thread, loaded machine,
# median ms, walk / predictor): 10 trees, 1 row 0.04 / 0.08, 2 rows 0.08 / 0.08; 30 trees,
# 1 row 0.09 / 0.37, 8 rows 0.31 / 0.40, 16 rows 0.51 / 0.47; 100 trees, 1 row 0.08 / 0.88,
# 8 rows 0.73 / 1.44, 16 rows 1.01 / 0.98. The walk's arrays grow with the trees' nodes: for
# 60 trees of 255 leaves (509 nodes), 1 row 0.28 / 0.68, 2 rows 0.63 / 0.63, 4 rows 1.02 / 0.61;
# so also at most one row per ``_NODES_PER_WALKED_ROW`` nodes of the average tree.
_TREES_PER_WALKED_ROW = 12
_NODES_PER_WALKED_ROW = 700
_MOST_WALKED_ROWS = 8
# Up to this many rows, categories are mapped to HistGradientBoosting's codes by dictionary.
_LOOKED_UP_ROWS = 16
# From this many rows, scikit-learn's predictor uses every core.
_THREADED_ROWS = 2_000


def compile_hist_gradient_boosting(model: Any, *, walk_rows: int | None = None) -> ArrayFunction:
    """A function of a float64 matrix (the columns ``model`` was fitted on, in order;
    categorical columns as the numbers it was fitted with) giving the fitted
    ``HistGradientBoostingClassifier``'s ``predict_proba`` or the regressor's ``predict``.

    The model's own steps without its input checks: categorical columns mapped to the codes
    of its ``OrdinalEncoder`` (unknown and missing: NaN), columns put in its preprocessor's
    order (categorical first), every tree's leaf value added to the baseline in the model's
    order (so the sums are the same to the last bit), and its loss's inverse link applied.
    The trees are walked in NumPy, all at once, for a few rows (one per
    ``_TREES_PER_WALKED_ROW`` trees and per ``_NODES_PER_WALKED_ROW`` nodes of the average
    tree, at least one, at most ``_MOST_WALKED_ROWS``; ``train._hgb_walk``:
    every split decided first as scikit-learn's predictor decides it, then one step per
    level), used only when the walk gave the predictor's raw sums to the last bit on probe
    rows (on and beside every threshold, every category, missing values); more rows, or a
    walk that did not match, go through scikit-learn's predictor, one thread below
    ``_THREADED_ROWS`` rows.

    Args:
        model: the fitted model.
        walk_rows: up to how many rows the trees are walked in NumPy (default: as above;
            0: never).

    Raises:
        NotCompilable: not a fitted scikit-learn HistGradientBoosting model, or its
            categorical encoding is not one this function reproduces.
    """
    name = type(model).__name__
    if not type(model).__module__.startswith("sklearn.ensemble") or name not in (
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    ):
        raise NotCompilable(f"{name} is not a HistGradientBoosting model")
    predictors = getattr(model, "_predictors", None)
    loss = getattr(model, "_loss", None)
    baseline = getattr(model, "_baseline_prediction", None)
    bin_mapper = getattr(model, "_bin_mapper", None)
    if not predictors or loss is None or baseline is None or bin_mapper is None:
        raise NotCompilable("a HistGradientBoosting model that is not fitted")
    width = int(model.n_features_in_)
    prepare = _hgb_preprocessor(model, width)
    known_bitsets, feature_map = bin_mapper.make_known_categories_bitsets()
    outputs = int(model.n_trees_per_iteration_)
    baseline = np.asarray(baseline)

    def predictor_raw(X: np.ndarray, threads: int = 1) -> np.ndarray:
        # scikit-learn's own: the baseline, then each tree's values added in order
        raw = np.zeros((len(X), outputs), dtype=baseline.dtype, order="F")
        raw += baseline
        for trees in predictors:
            for k, tree in enumerate(trees):
                raw[:, k] += tree.predict(X, known_bitsets, feature_map, threads)
        return raw

    if walk_rows is None:
        count = sum(len(per_iteration) for per_iteration in predictors)
        nodes = sum(len(tree.nodes) for per_iteration in predictors for tree in per_iteration)
        walk_rows = min(
            _MOST_WALKED_ROWS,
            max(1, count // _TREES_PER_WALKED_ROW),
            max(1, _NODES_PER_WALKED_ROW * count // max(nodes, 1)),
        )
    forest = None
    if walk_rows > 0:
        forest = HGBForest.of(model, known_bitsets, feature_map, predictor_raw)
        if forest is None:
            walk_rows = 0
    classifier = hasattr(model, "classes_")
    if classifier:
        finish: Callable[[np.ndarray], np.ndarray] = loss.predict_proba
    else:
        inverse = loss.link.inverse

        def finish(raw: np.ndarray) -> np.ndarray:
            return np.asarray(inverse(raw.ravel()))

    def predict(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(
                f"{name}: X must be a 2-D array of {width} columns; got shape {X.shape}"
            )
        X = prepare(X)
        n = len(X)
        if n <= walk_rows and forest is not None:
            return finish(forest.raw(X))
        return finish(predictor_raw(X, 1 if n < _THREADED_ROWS else _effective_threads()))

    return predict


def _effective_threads() -> int:
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return int(_openmp_effective_n_threads())


def _hgb_preprocessor(model: Any, width: int) -> ArrayFunction:
    """The model's own input step as an array function: the identity without categorical
    columns, else its ``ColumnTransformer`` (an ``OrdinalEncoder`` of the categorical
    columns, placed first, then the numbers)."""
    pre = getattr(model, "_preprocessor", None)
    if pre is None:
        return lambda X: X
    indices = getattr(pre, "_transformer_to_input_indices", None)
    if indices is None or list(indices.get("remainder", [])):
        raise NotCompilable("a HistGradientBoosting preprocessor without its column indices")
    coded = np.asarray(indices["encoder"], dtype=np.intp)
    numbers = np.asarray(indices["numerical"], dtype=np.intp)
    slices = pre.output_indices_
    if (
        len(coded) + len(numbers) != width
        or slices["encoder"] != slice(0, len(coded))
        or slices["numerical"] != slice(len(coded), width)
    ):
        raise NotCompilable("a HistGradientBoosting preprocessor of another layout")
    encoder = pre.named_transformers_["encoder"]
    if (
        type(encoder).__name__ != "OrdinalEncoder"
        or encoder.handle_unknown != "use_encoded_value"
        or not _is_nan(encoder.unknown_value)
        or not _is_nan(encoder.encoded_missing_value)
        or getattr(encoder, "_infrequent_enabled", False)
    ):
        raise NotCompilable("a HistGradientBoosting category encoder of other settings")
    tables: list[np.ndarray] = []
    for known in encoder.categories_:
        known = np.asarray(known)
        if known.dtype.kind not in "iufb":
            raise NotCompilable("HistGradientBoosting categories that are not numbers")
        values = known.astype(np.float64)
        if len(values) and math.isnan(values[-1]):
            values = values[:-1]  # missing: NaN either way
        if np.isnan(values).any() or np.any(np.diff(values) <= 0):
            raise NotCompilable("HistGradientBoosting categories not sorted")
        tables.append(values)
    order = np.concatenate([coded, numbers])
    # for a few rows: each category's code by dictionary (a missing value, a new NaN object,
    # is not found), cheaper than one search per column
    codes = [dict(zip(values.tolist(), range(len(values)), strict=True)) for values in tables]
    count = len(tables)
    nan = math.nan

    def prepare(X: np.ndarray) -> np.ndarray:
        out = X[:, order]
        if len(out) <= _LOOKED_UP_ROWS:
            for row in out:
                row[:count] = [
                    c.get(v, nan) for c, v in zip(codes, row[:count].tolist(), strict=True)
                ]
            return out
        for j, values in enumerate(tables):
            column = out[:, j]
            at = np.searchsorted(values, column)  # NaN sorts last: not found
            found = at < len(values)
            found[found] &= values[at[found]] == column[found]
            out[:, j] = np.where(found, at, np.nan)
        return out

    return prepare


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
