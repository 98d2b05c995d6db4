"""Explanations: per-row SHAP contributions per original column, and global importance.

The final estimator is explained on the output of the fitted preprocessing (a scikit-learn
``Pipeline`` / ``ColumnTransformer``), then the contributions of the transformed features are
summed back to the input column each came from (the one-hot pieces of a category add up to
that column's contribution). Sums of SHAP values are SHAP values of the grouped feature, so
additivity is kept: contributions + base value == the model's raw output.

Which algorithm:

    LightGBM                 exact TreeSHAP, the library's own ``pred_contrib=True``
    XGBoost                  exact TreeSHAP, the library's own ``pred_contribs=True``
    scikit-learn trees       exact TreeSHAP, ``shap.TreeExplainer`` (path dependent)
    linear models            ``shap.LinearExplainer`` over a background sample
    anything else            ``shap.PermutationExplainer`` over a background sample

The raw output is the margin for boosted trees and linear classifiers (log-odds of the
positive class for binary tasks), the probability for random forests and decision trees
(their trees vote probabilities), and the prediction for regressors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from forgeml.errors import InputError

__all__ = ["Explainer", "Explanation", "explain", "global_importance", "raw_output"]

_BACKGROUND_ROWS = 100
# The permutation explainer builds (2 x features + 1) x background rows of width features per
# explained row; past this many cells (about 160 MB of float64) it explains a seeded sample of
# the features (``Explainer._permutation_sampled``): a 10,000-feature table would need 30 GB.
_PERMUTATION_CELLS = 20_000_000


# Past the bound: features permuted and background rows used per explained row.
_SAMPLED_FEATURES = 24
_SAMPLED_BACKGROUND = 8


def _permuted_features(n_features: int, n_background: int) -> int:
    """How many features the permutation explainer permutes: all within the memory bound,
    else a sample of at most ``_SAMPLED_FEATURES`` that fits it."""
    if (2 * n_features + 1) * max(n_background, 1) * n_features <= _PERMUTATION_CELLS:
        return n_features
    background = min(max(n_background, 1), _SAMPLED_BACKGROUND)
    fits = _PERMUTATION_CELLS // (2 * background * n_features) - 1
    return max(1, min(n_features, _SAMPLED_FEATURES, fits))


@dataclass(frozen=True)
class Explanation:
    """SHAP contributions of each original column for some rows. Treat arrays as read-only.

    Attributes:
        columns: the original input columns.
        contributions: shape (rows, columns), or (rows, columns, outputs) for multiclass.
        base_values: shape (rows,), or (rows, outputs).
        output: what the contributions add up to: ``log_odds`` (binary margin), ``margin``
            (multiclass scores before softmax), ``probability`` or ``value`` (regression).
        outputs: class labels of the outputs (multiclass), else empty.
        method: the algorithm used.
        data: the explained rows as given (for plots), or None.
        note: what was left out to bound memory (the permutation explainer on a wide
            table explains a sample of the features; see ``Explainer``), else empty.
    """

    columns: tuple[str, ...]
    contributions: np.ndarray
    base_values: np.ndarray
    output: str
    method: str
    outputs: tuple[Any, ...] = ()
    data: pd.DataFrame | None = field(default=None, repr=False)
    note: str = ""

    @property
    def raw_prediction(self) -> np.ndarray:
        """Contributions plus base value: the model's raw output for each row."""
        return self.contributions.sum(axis=1) + self.base_values

    def frame(self, output: Any = None) -> pd.DataFrame:
        """Contributions as a table (rows x columns) for one output (default: the only one,
        or the first class of a multiclass model)."""
        values = self.contributions
        if values.ndim == 3:
            index = 0 if output is None else list(self.outputs).index(output)
            values = values[:, :, index]
        return pd.DataFrame(values, columns=list(self.columns))

    def importance(self) -> pd.Series:
        """Mean |contribution| per column (averaged over outputs), largest first."""
        magnitude = np.abs(self.contributions).mean(axis=0)
        if magnitude.ndim == 2:
            magnitude = magnitude.mean(axis=1)
        return pd.Series(magnitude, index=list(self.columns), name="mean_abs_shap").sort_values(
            ascending=False
        )

    def to_records(self, top: int | None = None) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: base value, raw output and contributions by column,
        largest magnitude first (the ``top`` largest when given)."""
        records = []
        for i in range(self.contributions.shape[0]):
            if self.contributions.ndim == 3:
                per_output = {}
                for k, label in enumerate(self.outputs):
                    per_output[str(label)] = self._record(
                        self.contributions[i, :, k], float(self.base_values[i, k]), top
                    )
                records.append({"output": self.output, "by_output": per_output})
            else:
                record = self._record(self.contributions[i], float(self.base_values[i]), top)
                records.append({"output": self.output, **record})
        return records

    def _record(self, row: np.ndarray, base: float, top: int | None) -> dict[str, Any]:
        order = np.argsort(-np.abs(row), kind="stable")[: top or len(row)]
        return {
            "base_value": base,
            "raw_prediction": base + float(row.sum()),
            "contributions": {self.columns[j]: float(row[j]) for j in order},
        }


def _import_shap() -> Any:
    """Import shap, whose import calls a matplotlib colormap method that matplotlib has
    scheduled for deprecation (a warning, an error under ``-W error``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The set_.* function", category=PendingDeprecationWarning
        )
        import shap
    return shap


# ------------------------------------------------------------------ the model's parts


def _split(model: Any) -> tuple[Any | None, Any]:
    """(preprocessing or None, final estimator) of a model or Pipeline."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        if len(model.steps) == 1:
            return None, model.steps[-1][1]
        return model[:-1], model.steps[-1][1]
    return None, model


def _family(estimator: Any) -> str:
    module = type(estimator).__module__
    if module.startswith("lightgbm"):
        return "lightgbm"
    if module.startswith("xgboost"):
        return "xgboost"
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import BaseDecisionTree

    trees = (
        BaseDecisionTree,
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    if isinstance(estimator, trees):
        return "sklearn_tree"
    if hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
        return "linear"
    return "other"


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    try:
        declared = bool(is_classifier(estimator))
    except AttributeError:  # not a scikit-learn estimator (a LightGBM Booster...)
        declared = False
    return declared or hasattr(estimator, "classes_")


def _votes_probabilities(estimator: Any) -> bool:
    """Random forests and single trees output probabilities, not margins."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    kinds = (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier)
    return isinstance(estimator, (*kinds, ExtraTreeClassifier))


def _output_kind(estimator: Any) -> str:
    if not _is_classifier(estimator):
        return "value"
    n_classes = len(getattr(estimator, "classes_", [0, 1]))
    if _votes_probabilities(estimator) or (
        _family(estimator) == "other" and not hasattr(estimator, "decision_function")
    ):
        return "probability"
    return "log_odds" if n_classes == 2 else "margin"


def _final_raw(estimator: Any, xt: Any) -> np.ndarray:
    """The raw output of the final estimator on transformed rows."""
    family = _family(estimator)
    classifier = _is_classifier(estimator)
    if family == "lightgbm":
        out = estimator.predict(xt, raw_score=True)
    elif family == "xgboost":
        out = estimator.predict(xt, output_margin=True)
    elif classifier and _output_kind(estimator) == "probability":
        out = estimator.predict_proba(xt)
        if out.shape[1] == 2:
            out = out[:, 1]
    elif classifier:
        out = estimator.decision_function(xt)
    else:
        out = estimator.predict(xt)
    return np.asarray(out, dtype=np.float64)


def raw_output(model: Any, X: Any) -> np.ndarray:
    """What an explanation's contributions add up to, for each row of ``X``.

    Args:
        model: a fitted estimator or Pipeline.
        X: the input rows (as the model takes them).

    Returns:
        shape (rows,), or (rows, classes) for a multiclass model.
    """
    pre, est = _split(model)
    xt = X if pre is None else pre.transform(X)
    return _final_raw(est, xt)


# ------------------------------------------------------------------ columns back from features


def _column_positions(ct: Any, columns: Any, n_inputs: int) -> list[int]:
    names = list(getattr(ct, "feature_names_in_", []))
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, slice):
        if columns.start is None or isinstance(columns.start, int | np.integer):
            return list(range(n_inputs))[columns]
        start, stop = names.index(columns.start), names.index(columns.stop) + 1
        return list(range(start, stop))
    array = np.asarray(columns)
    if array.dtype == bool:
        return [int(i) for i in np.flatnonzero(array)]
    positions = []
    for c in array.tolist():
        positions.append(int(c) if isinstance(c, int) else names.index(c))
    return positions


def _trace(step: Any, sources: np.ndarray) -> np.ndarray:
    """For each output feature of a fitted transformer, the original column it came from.

    ``sources[i]`` is the original column of the transformer's input feature ``i``.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    if step is None or (isinstance(step, str) and step == "passthrough"):
        return sources
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            sources = _trace(inner, sources)
        return sources
    if isinstance(step, ColumnTransformer):
        total = max((s.stop for s in step.output_indices_.values()), default=0)
        out = np.full(total, -1, dtype=np.int64)
        for name, transformer, columns in step.transformers_:
            where = step.output_indices_.get(name, slice(0, 0))
            if where.stop <= where.start or (
                isinstance(transformer, str) and transformer == "drop"
            ):
                continue
            inner = sources[_column_positions(step, columns, len(sources))]
            mapped = _trace(transformer, inner)
            if len(mapped) != where.stop - where.start:
                raise InputError(
                    f"Cannot trace the outputs of {name!r} ({type(transformer).__name__}) "
                    "back to its input columns"
                )
            out[where] = mapped
        return out
    if len(np.unique(sources)) == 1:
        n_out = _n_outputs(step, len(sources))
        return np.full(n_out, sources[0]) if n_out is not None else sources
    if isinstance(step, OneHotEncoder):
        counts = getattr(step, "_n_features_outs", None)
        if counts is None:  # older scikit-learn
            counts = [len(c) for c in step.categories_]
        return np.repeat(sources, counts)
    if isinstance(step, SimpleImputer):
        kept = sources
        if not getattr(step, "keep_empty_features", False):
            stats = np.asarray(step.statistics_, dtype=object)
            kept = sources[[not (isinstance(s, float) and np.isnan(s)) for s in stats]]
        indicator = getattr(step, "indicator_", None)
        if indicator is not None:
            kept = np.concatenate([kept, sources[indicator.features_]])
        return kept
    if hasattr(step, "get_support"):
        return sources[step.get_support()]
    n_out = _n_outputs(step, len(sources))
    if n_out is None or n_out == len(sources):
        return sources
    raise InputError(
        f"Cannot trace the {n_out} outputs of {type(step).__name__} back to its "
        f"{len(sources)} input columns; explain the model without that step"
    )


def _named_sources(step: Any) -> Any:
    """The preprocessing step that names each output's raw column (``feature_sources``),
    alone or as the only step of a Pipeline, else ``None``."""
    steps = getattr(step, "steps", None)
    if steps is not None and len(steps) == 1:
        step = steps[0][1]
    return step if callable(getattr(step, "feature_sources", None)) else None


def _n_outputs(step: Any, n_inputs: int) -> int | None:
    try:
        return len(step.get_feature_names_out())
    except Exception:  # not every transformer names its outputs
        return None


# ------------------------------------------------------------------ explainer


class Explainer:
    """Explains a fitted model's predictions per original column. Build once, then call
    ``explain(rows)`` as often as needed (thread safe for the tree families).

    Args:
        model: a fitted estimator or scikit-learn Pipeline whose last step is the estimator.
        background: rows that stand for "typical input", used by the linear and permutation
            explainers (the tree explainers are exact and need none). Default: the rows of the
            first ``explain`` call.
        background_rows: at most this many background rows are kept (sampled with ``seed``).
        seed: seed of the background sample and the permutation explainer.
        max_evals: model evaluations per row for the permutation explainer (at least
            2 x features + 1).
    """

    def __init__(
        self,
        model: Any,
        *,
        background: Any = None,
        background_rows: int = _BACKGROUND_ROWS,
        seed: int = 0,
        max_evals: int | None = None,
    ) -> None:
        self.model = model
        self.background = background
        self.background_rows = background_rows
        self.seed = seed
        self.max_evals = max_evals
        self.preprocessing_, self.estimator_ = _split(model)
        self.family_ = _family(self.estimator_)
        self.output_ = _output_kind(self.estimator_)
        self._cache: dict[str, Any] = {}

    def _transform(self, X: Any) -> Any:
        return X if self.preprocessing_ is None else self.preprocessing_.transform(X)

    def _dense(self, xt: Any) -> Any:
        if hasattr(xt, "toarray"):
            return xt.toarray()
        return xt

    def _columns(self, X: Any) -> tuple[str, ...]:
        if isinstance(X, pd.DataFrame):
            return tuple(str(c) for c in X.columns)
        return tuple(f"x{i}" for i in range(np.shape(X)[1]))

    def _grouping(self, X: Any, n_features: int) -> Any:
        n_columns = len(self._columns(X))
        encoder = _named_sources(self.preprocessing_)
        if encoder is not None:
            # an encoder that names the raw column of each of its outputs (forgeml's own)
            where = {c: i for i, c in enumerate(self._columns(X))}
            sources = np.array([where.get(str(c), -1) for c in encoder.feature_sources()])
            if getattr(encoder, "output", None) == "dense":
                sources = _trace(encoder.dense_, sources)
        elif self.preprocessing_ is None:
            sources = np.arange(n_columns)
        else:
            sources = _trace(self.preprocessing_, np.arange(n_columns))
        if len(sources) != n_features or (sources < 0).any():
            raise InputError(
                f"The preprocessing gives {n_features} features but {len(sources)} could be "
                "traced to input columns; explain the model without that step"
            )
        from scipy import sparse

        # sparse: a dense features x columns matrix is 800 MB for a 10,000-column table
        return sparse.csr_matrix(
            (np.ones(n_features), (np.arange(n_features), sources)),
            shape=(n_features, n_columns),
        )

    def _background(self, rows: Any) -> Any:
        if "background" in self._cache:
            return self._cache["background"]
        source = rows if self.background is None else self.background
        n = len(source)
        if n > self.background_rows:
            rng = np.random.default_rng(self.seed)
            picked = np.sort(rng.choice(n, self.background_rows, replace=False))
            source = source.iloc[picked] if hasattr(source, "iloc") else np.asarray(source)[picked]
        background = self._dense(self._transform(source))
        self._cache["background"] = background
        return background

    def explain(self, rows: Any) -> Explanation:
        """SHAP contributions of each original column for ``rows``.

        Args:
            rows: input rows, as the model takes them (a DataFrame for a Pipeline of columns).

        Returns:
            the explanation; ``contributions.sum(axis=1) + base_values`` equals the model's
            raw output (``raw_output(model, rows)``).

        Raises:
            InputError: no rows, or preprocessing whose outputs cannot be traced to columns.
        """
        if len(rows) == 0:
            raise InputError("Nothing to explain: `rows` is empty")
        xt = self._transform(rows)
        values, base = self._shap(xt, rows)
        n_features = values.shape[1]
        grouping = self._grouping(rows, n_features)
        if values.ndim == 3:
            grouped = np.stack(
                [np.asarray((grouping.T @ values[:, :, k].T).T) for k in range(values.shape[2])],
                axis=2,
            )
        else:
            grouped = np.asarray((grouping.T @ values.T).T)
        outputs: tuple[Any, ...] = ()
        if grouped.ndim == 3:
            outputs = tuple(
                c.item() if isinstance(c, np.generic) else c for c in self.estimator_.classes_
            )
        data = rows if isinstance(rows, pd.DataFrame) else None
        return Explanation(
            columns=self._columns(rows),
            contributions=grouped,
            base_values=base,
            output=self.output_,
            method=self._method(),
            outputs=outputs,
            data=data,
            note=self._cache.pop("note", ""),
        )

    def _method(self) -> str:
        return {
            "lightgbm": "lightgbm.pred_contrib",
            "xgboost": "xgboost.pred_contribs",
            "sklearn_tree": "shap.TreeExplainer",
            "linear": "shap.LinearExplainer",
        }.get(self.family_, "shap.PermutationExplainer")

    def _shap(self, xt: Any, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """(values (n, features[, outputs]), base (n[, outputs])) on transformed rows."""
        n = xt.shape[0]
        if self.family_ == "lightgbm":
            contrib = self.estimator_.predict(xt, pred_contrib=True)
            contrib = (
                self._dense(contrib)
                if not isinstance(contrib, list)
                else np.hstack([self._dense(c) for c in contrib])
            )
            contrib = np.asarray(contrib, dtype=np.float64)
            n_classes = len(getattr(self.estimator_, "classes_", [0, 1]))
            if n_classes > 2 and _is_classifier(self.estimator_):
                per_class = contrib.reshape(n, n_classes, -1)
                return per_class[:, :, :-1].transpose(0, 2, 1), per_class[:, :, -1]
            return contrib[:, :-1], contrib[:, -1]
        if self.family_ == "xgboost":
            import xgboost

            booster = self.estimator_.get_booster()
            matrix = xgboost.DMatrix(
                xt, enable_categorical=bool(getattr(self.estimator_, "enable_categorical", False))
            )
            best = (
                getattr(self.estimator_, "best_iteration", None)
                if hasattr(self.estimator_, "best_iteration")
                else None
            )
            iteration_range = (0, best + 1) if best is not None else (0, 0)
            contrib = np.asarray(
                booster.predict(matrix, pred_contribs=True, iteration_range=iteration_range),
                dtype=np.float64,
            )
            if contrib.ndim == 3:  # (rows, classes, features + 1)
                return contrib[:, :, :-1].transpose(0, 2, 1), contrib[:, :, -1]
            return contrib[:, :-1], contrib[:, -1]
        shap = _import_shap()
        dense = self._dense(xt)
        if isinstance(dense, pd.DataFrame) and self.family_ in ("sklearn_tree", "linear"):
            text = [str(c) for c in dense.columns if not is_numeric_dtype(dense[c])]
            if text:
                raise InputError(
                    f"SHAP for {type(self.estimator_).__name__} needs numeric inputs; "
                    f"{text[:5]} are not numeric (encode them in the model's pipeline)"
                )
        if self.family_ == "sklearn_tree":
            explainer = self._cache.get("tree") or shap.TreeExplainer(self.estimator_)
            self._cache["tree"] = explainer
            values = np.asarray(explainer.shap_values(dense, check_additivity=False))
            expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        else:
            background = self._background(rows)
            if self.family_ == "linear":
                # the background is already our seeded sample: keep all of it (shap's
                # masker would otherwise subsample it again with its own fixed seed)
                masker = shap.maskers.Independent(background, max_samples=len(background))
                explainer = self._cache.get("linear") or shap.LinearExplainer(
                    self.estimator_, masker
                )
                self._cache["linear"] = explainer
                values = np.asarray(explainer.shap_values(dense))
                expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
            else:
                return self._permutation(dense, background)
        if values.ndim == 3 and values.shape[2] == 2 and self.output_ == "probability":
            values, expected = values[:, :, 1], expected[1:]  # the positive class
        if values.ndim == 3:
            return values, np.broadcast_to(expected, (n, len(expected))).copy()
        return values, np.full(n, float(expected[0]))

    def _permutation(self, dense: Any, background: Any) -> tuple[np.ndarray, np.ndarray]:
        shap = _import_shap()
        estimator = self.estimator_
        if isinstance(dense, pd.DataFrame):
            codec = _ColumnCodec(dense, background)
            array, reference = codec.encode(dense), codec.encode(background)

            def f(data: np.ndarray) -> np.ndarray:
                return _final_raw(estimator, codec.decode(data))

        else:
            array = np.asarray(dense, dtype=np.float64)
            reference = np.asarray(background, dtype=np.float64)

            def f(data: np.ndarray) -> np.ndarray:
                return _final_raw(estimator, data)

        n_features = array.shape[1]
        kept = _permuted_features(n_features, len(reference))
        if kept >= n_features:
            masker = shap.maskers.Independent(reference, max_samples=len(reference))
            explainer = shap.PermutationExplainer(f, masker, seed=self.seed)
            max_evals = max(self.max_evals or 0, 2 * n_features + 1)
            result = explainer(array, max_evals=max_evals, silent=True)
            return np.asarray(result.values, dtype=np.float64), np.asarray(
                result.base_values, dtype=np.float64
            )
        return self._permutation_sampled(f, array, reference, kept)

    def _permutation_sampled(
        self, f: Any, array: np.ndarray, reference: np.ndarray, kept: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Permutation SHAP of the game on ``kept`` features drawn with the seed, the other
        features held at each row's own values; one antithetic pair of permutations per row
        (as ``shap.PermutationExplainer`` with its minimum evaluations), every row's coalitions
        evaluated together in a few model calls of bounded size. Exact for that game:
        contributions + base == the model's output, the base being the output with the drawn
        features at background values."""
        n, n_features = array.shape
        rng = np.random.default_rng(self.seed)
        features = np.sort(rng.choice(n_features, kept, replace=False))
        background = reference[:_SAMPLED_BACKGROUND]
        b = len(background)
        per_row = 2 * (kept + 1) * b
        chunk = max(1, _PERMUTATION_CELLS // (per_row * n_features))
        orders = [rng.permutation(kept) for _ in range(n)]
        steps = np.arange(kept + 1)[:, None]
        outputs = []
        for start in range(0, n, chunk):
            blocks = []
            for i in range(start, min(n, start + chunk)):
                for order in (orders[i], orders[i][::-1]):
                    rank = np.empty(kept, dtype=np.int64)
                    rank[order] = np.arange(kept)
                    inside = rank[None, :] < steps  # (kept + 1, kept): the first j in order
                    full = np.repeat(array[i][None, None, :], kept + 1, axis=0).repeat(b, axis=1)
                    full[:, :, features] = np.where(
                        inside[:, None, :], array[i, features], background[None, :, features]
                    )
                    blocks.append(full.reshape(-1, n_features))
            outputs.append(np.asarray(f(np.concatenate(blocks)), dtype=np.float64))
        out = np.concatenate(outputs)
        out = out.reshape(n, 2, kept + 1, b, *out.shape[1:]).mean(axis=3)
        deltas = np.diff(out, axis=2)  # (rows, 2, kept[, outputs]): adding order[j]
        values = np.zeros((n, n_features, *out.shape[3:]))
        for i in range(n):
            for d, order in enumerate((orders[i], orders[i][::-1])):
                values[i, features[order]] += deltas[i, d] / 2
        self._cache["note"] = (
            f"SHAP (permutation) on {kept:,} of {n_features:,} model features drawn with seed "
            f"{self.seed}, the others held at each row's values, over {b} background rows, to "
            "bound memory"
        )
        return values, out[:, 0, 0]


class _ColumnCodec:
    """Numbers for SHAP's maskers and back: each non-numeric column becomes the float code of
    its value (NaN stays NaN), and ``decode`` rebuilds a frame the model takes, with the
    original values and dtypes. The model sees only values that occur in the data."""

    def __init__(self, rows: pd.DataFrame, background: pd.DataFrame) -> None:
        self.template = rows
        self.values: dict[str, np.ndarray] = {}
        for column in rows.columns:
            if not is_numeric_dtype(rows[column]):
                both = pd.concat([rows[column], background[column]]).dropna().astype(object)
                self.values[column] = np.asarray(pd.unique(both), dtype=object)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty(frame.shape, dtype=np.float64)
        for j, column in enumerate(frame.columns):
            series = frame[column]
            if column in self.values:
                codes = pd.Index(self.values[column]).get_indexer(series.astype(object))
                out[:, j] = np.where(series.isna().to_numpy() | (codes < 0), np.nan, codes)
            else:
                out[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def decode(self, data: np.ndarray) -> pd.DataFrame:
        if not self.values and all(
            dtype == np.float64 for dtype in self.template.dtypes
        ):  # all float columns (a wide numeric table): one block, no per-column Series
            return pd.DataFrame(data, columns=self.template.columns, copy=False)
        columns: dict[Any, Any] = {}
        for j, column in enumerate(self.template.columns):
            dtype = self.template[column].dtype
            values = data[:, j]
            if column in self.values:
                known = ~np.isnan(values)
                decoded = np.full(len(values), np.nan, dtype=object)
                decoded[known] = self.values[column][values[known].astype(np.int64)]
                columns[column] = pd.Series(decoded, dtype=object).astype(dtype)
            elif np.isnan(values).any() and not pd.api.types.is_float_dtype(dtype):
                columns[column] = pd.Series(values)  # missing values need a float column
            else:
                columns[column] = pd.Series(values).astype(dtype)
        return pd.DataFrame(columns)


def explain(model: Any, rows: Any, *, background: Any = None, seed: int = 0) -> Explanation:
    """SHAP contributions of each original column of ``rows`` (see ``Explainer``).

    Args:
        model: a fitted estimator or Pipeline.
        rows: the rows to explain.
        background: reference rows for the linear and permutation explainers (default: the
            rows themselves).
        seed: seed of the background sample and of the permutation explainer.

    Returns:
        the explanation (contributions + base value == ``raw_output(model, rows)``).
    """
    return Explainer(model, background=background, seed=seed).explain(rows)


def global_importance(
    model: Any,
    X: Any,
    *,
    max_rows: int = 1000,
    background: Any = None,
    background_rows: int = _BACKGROUND_ROWS,
    seed: int = 0,
) -> tuple[pd.Series, Explanation]:
    """Global importance: mean |SHAP| per original column over (a sample of) ``X``.

    Args:
        model: a fitted estimator or Pipeline.
        X: rows to average over.
        max_rows: explain at most this many rows (a seeded sample).
        background: reference rows for the linear and permutation explainers.
        background_rows: at most this many background rows are used.
        seed: seed of the row sample, the background sample and the permutation explainer.

    Returns:
        (importance largest first, the explanation of the sampled rows).
    """
    n = len(X)
    if n > max_rows:
        picked = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
        X = X.iloc[picked] if hasattr(X, "iloc") else np.asarray(X)[picked]
    explanation = Explainer(
        model, background=background, background_rows=background_rows, seed=seed
    ).explain(X)
    return explanation.importance(), explanation
