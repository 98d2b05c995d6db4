"""Preprocessing, fitted inside each fold so nothing of a validation or test row leaks in.

``TabularEncoder`` is the first step of every pipeline. From the column kinds it:

- drops identifier columns;
- turns numeric, integer and boolean columns into floats (missing stays NaN);
- expands datetime columns into year, month, day, day of week, hour (when times vary) and an
  ordinal day count;
- turns text columns into their length in characters and words;
- maps categorical values to integer codes learnt in ``fit``: the most frequent
  ``max_categories`` values keep their own code, rarer ones share an "other" code, and values
  never seen in training become missing (``unseen_categories`` counts them without changing
  the encoder); a column with more than ``max_categories`` values also gets a
  frequency-encoded column.

A fitted encoder never changes when it transforms. Its learned state is plain Python and NumPy
(category lists, frequency tables), so ``skops`` stores it without pickle; the pandas
categorical dtypes and lookup tables built from that state are caches, built after fitting
and after loading, never saved (``__getstate__``). It passes scikit-learn's estimator checks.

Its ``output`` decides what the model sees: ``native`` (a DataFrame whose code columns are
pandas categories, for LightGBM, XGBoost and HistGradientBoosting's own categorical
handling), ``ordinal`` (a float array of codes, for forests), or ``dense`` (one-hot encoding of
small categoricals, target encoding of large ones, imputation with missing indicators and
scaling, for linear models and the MLP; built with scikit-learn's ``ColumnTransformer``).

Column names: a table may name its columns anything (``temp[C]``, ``ratio:x``, quotes, braces,
spaces, any script), but LightGBM refuses JSON-special characters in feature names and XGBoost
refuses ``[``, ``]`` and ``<``. So the ``native`` frame a model library sees names each column by
``model_name`` (percent-encoding of every character but ASCII letters, digits and ``_.-~``,
which is reversible and leaves plain names as they are), while ``feature_names_out_``,
``feature_sources`` and everything reported (importance, explanations, the signature) keep the
table's own names. ``model_feature_names`` gives the names the model was fitted with.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["TabularEncoder", "make_dense_step", "model_name", "table_name"]

_DATE_PARTS = ("year", "month", "day", "day_of_week", "hour", "ordinal")
# HistGradientBoosting accepts at most 255 bins for a categorical feature (one is missing).
_MAX_CATEGORIES = 250
# Above this many categories the dense output target-encodes instead of one-hot encoding.
_ONE_HOT_MAX = 30


def model_name(name: str) -> str:
    """The name a model library is given for the encoded column ``name``: percent-encoded, so
    that no library-special character (``[]{}:,"<`` and white space) reaches it."""
    return quote(str(name), safe="")


def table_name(name: str) -> str:
    """The column name ``model_name`` encoded: ``table_name(model_name(x)) == x``."""
    return unquote(str(name))


# Attributes derived from the learned state on first use; not part of the saved state.
_CACHES = ("_lookups", "_code_dtypes")


def _to_datetime(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
            if parsed.isna().sum() > values.isna().sum():
                parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _as_text(values: pd.Series) -> pd.Series:
    """Category values as strings, missing kept missing (so 1 and "1" are one category)."""
    array = values.to_numpy(dtype=object)
    missing = pd.isna(array)
    text = array.astype(str).astype(object)
    text[missing] = np.nan
    return pd.Series(text, index=values.index, dtype=object)


class TabularEncoder(TransformerMixin, BaseEstimator):
    """Turns a raw feature frame into model inputs (see the module docstring).

    Args:
        kinds: column -> kind for every feature column.
        output: ``native``, ``ordinal`` or ``dense``.
        max_categories: categories kept per column; rarer ones share one code.
        random_state: seed of the dense output's cross-fitted target encoding.
    """

    def __init__(
        self,
        *,
        kinds: Mapping[str, str],
        output: str = "native",
        max_categories: int = _MAX_CATEGORIES,
        random_state: int = 0,
    ) -> None:
        self.kinds = kinds
        self.output = output
        self.max_categories = max_categories
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any = None) -> TabularEncoder:
        """Learn categories, frequencies and date parts from the training rows (a DataFrame;
        a 2-D array reads as columns ``x0``, ``x1``...)."""
        self._fit(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> Any:
        """Fit and encode the training rows; large categoricals of the dense output are
        target-encoded out of fold here, so a model never sees its own rows' targets."""
        frame = self._fit(X, y, keep=True)
        if self.output == "dense":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.dense_.fit_transform(frame, y)
        return self._finish(frame)

    def _fit(self, X: pd.DataFrame, y: Any, keep: bool = False) -> pd.DataFrame:
        if self.output not in ("native", "ordinal", "dense"):
            raise ValueError(
                "The `output` parameter of TabularEncoder must be native, ordinal or dense; "
                f"got {self.output!r}"
            )
        X = self._table(X, reset=True)
        self.columns_ = [c for c in X.columns if self.kinds.get(c, "numeric") != "identifier"]
        self.categories_: dict[str, list[str]] = {}
        self.frequencies_: dict[str, dict[str, float]] = {}
        self.date_parts_: dict[str, list[str]] = {}
        for column in self.columns_:
            kind = self.kinds.get(column, "numeric")
            if kind == "categorical":
                counts = _as_text(X[column]).value_counts(dropna=True)
                # ties broken by value so the codes do not depend on row order
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                self.categories_[column] = [k for k, _ in ordered[: self.max_categories]]
                if len(ordered) > self.max_categories:
                    total = max(1, int(counts.sum()))
                    self.frequencies_[column] = {k: v / total for k, v in ordered}
            elif kind == "datetime":
                parsed = _to_datetime(X[column])
                parts = ["year", "month", "day", "day_of_week", "ordinal"]
                if parsed.notna().any() and (parsed.dropna().dt.hour != 0).any():
                    parts.insert(4, "hour")
                self.date_parts_[column] = parts
        frame = self._encode(X)
        self.feature_names_out_ = list(frame.columns)
        # the native frame names its columns for the model libraries (``model_name``); an
        # encoder fitted before this attribute existed gave them the table's names
        self.names_encoded_ = True
        self.code_columns_ = [c for c in frame.columns if c in self.categories_]
        if self.output == "dense":
            self.dense_ = make_dense_step(
                frame, self.code_columns_, self.categories_, self.random_state
            )
            if not keep:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.dense_.fit(frame, y)
        self._build_caches()
        return frame

    def _table(self, X: Any, *, reset: bool) -> pd.DataFrame:
        """``X`` as a DataFrame: a frame as given, an array checked by scikit-learn's rules
        (2-D, dense, not empty; missing values allowed) with columns ``x0``, ``x1``..."""
        if isinstance(X, pd.DataFrame):
            if reset:
                self.n_features_in_ = X.shape[1]
            return X
        from sklearn.utils.validation import validate_data

        array = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])

    def _build_caches(self) -> None:
        """Lookup tables and pandas dtypes derived from the learned state, built once after
        fitting or loading so that transforming never changes the encoder."""
        self._lookups = {
            c: {v: i for i, v in enumerate(cats)} for c, cats in self.categories_.items()
        }
        self._code_dtypes = {
            # integer categories: XGBoost refuses floating point ones
            c: pd.CategoricalDtype(
                np.arange(len(self.categories_[c]) + (c in self.frequencies_), dtype=np.int64)
            )
            for c in self.code_columns_
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "categories_" in state and "code_columns_" in state:
            self._build_caches()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are encoded, not refused
        tags.input_tags.string = True  # text and categories are columns it encodes
        tags.input_tags.categorical = True
        tags.transformer_tags.preserves_dtype = []  # a frame or float32 codes
        return tags

    def _encode(self, X: pd.DataFrame, unseen: dict[str, int] | None = None) -> pd.DataFrame:
        plain = self._plain_numbers(X)
        if plain is not None:
            return plain
        out: dict[str, Any] = {}
        n = len(X)
        for column in self.columns_:
            kind = self.kinds.get(column, "numeric")
            values = X[column] if column in X.columns else pd.Series([np.nan] * n, index=X.index)
            if kind == "categorical":
                # Plain NumPy and dictionaries: as fast on one row as pandas is on many.
                array = values.to_numpy(dtype=object)
                missing = pd.isna(array)
                text = array.astype(str)
                lookup = self._lookup(column)
                get = lookup.get
                codes = np.array([get(t, np.nan) for t in text.tolist()], dtype=float)
                codes[missing] = np.nan
                unseen_mask = ~missing & np.isnan(codes)
                rare = self.frequencies_.get(column)
                if rare is not None:
                    seen_rare = unseen_mask & np.array([t in rare for t in text.tolist()], bool)
                    codes[seen_rare] = len(self.categories_[column])  # the shared "other" code
                    unseen_mask &= ~seen_rare
                    freq = np.array([rare.get(t, 0.0) for t in text.tolist()], dtype=float)
                    freq[missing] = 0.0
                    out[f"{column}__freq"] = freq
                if unseen is not None and bool(unseen_mask.any()):
                    unseen[column] = int(unseen_mask.sum())
                out[column] = codes
            elif kind == "datetime":
                parsed = _to_datetime(values)
                for part in self.date_parts_[column]:
                    if part == "ordinal":
                        vals = (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400
                    else:
                        vals = getattr(parsed.dt, part)
                    out[f"{column}__{part}"] = vals.astype(float).to_numpy()
            elif kind == "text":
                text = values.astype(object).where(values.notna(), None)
                as_str = text.map(lambda v: "" if v is None else str(v))
                out[f"{column}__chars"] = as_str.str.len().astype(float).to_numpy()
                out[f"{column}__words"] = as_str.str.split().str.len().astype(float).to_numpy()
            else:
                if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(
                    values.dtype
                ):
                    numbers = values.astype(float)
                else:
                    lowered = values.map(lambda v: v.lower() if isinstance(v, str) else v)
                    lowered = lowered.replace({"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0})
                    numbers = pd.to_numeric(lowered, errors="coerce").astype(float)
                out[column] = numbers.to_numpy()
        return pd.DataFrame(out, index=X.index)

    def _plain_numbers(self, X: pd.DataFrame) -> pd.DataFrame | None:
        """The encoded frame in one block when every column is a number column stored as
        numbers (a wide numeric table: one conversion instead of one per column), else
        ``None``."""
        columns = self.columns_
        if len(columns) < 64 or any(
            self.kinds.get(c, "numeric") not in ("numeric", "integer", "boolean") for c in columns
        ):
            return None
        if not set(columns) <= set(X.columns):
            return None
        block = X[columns]
        if not all(
            pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d) for d in block.dtypes
        ):
            return None
        return pd.DataFrame(
            block.to_numpy(dtype=np.float64, na_value=np.nan), columns=columns, index=X.index
        )

    def feature_sources(self) -> list[str]:
        """The raw column each encoded column comes from, in ``feature_names_out_`` order
        (``age`` for ``age``, ``day`` for ``day__month``): what explanations sum back to."""
        raw = set(self.columns_)
        sources = []
        for name in self.feature_names_out_:
            found = name
            if name not in raw:  # the longest raw column that is a prefix before "__"
                cut = str(name).rfind("__")
                while cut > 0 and name[:cut] not in raw:
                    cut = str(name).rfind("__", 0, cut)
                if cut > 0:
                    found = name[:cut]
            sources.append(found)
        return sources

    def unseen_categories(self, X: pd.DataFrame) -> dict[str, int]:
        """How many values of each categorical column of ``X`` were never seen in training
        (columns without any are left out). The encoder is not changed."""
        unseen: dict[str, int] = {}
        categorical = [c for c in self.columns_ if c in self.categories_ and c in X.columns]
        if categorical:
            kinds = {c: "categorical" for c in categorical}
            view = TabularEncoder(kinds=kinds, max_categories=self.max_categories)
            view.columns_ = categorical
            view.categories_ = self.categories_
            view.frequencies_ = self.frequencies_
            view._encode(X, unseen)
        return unseen

    def __getstate__(self) -> dict[str, Any]:
        # caches built from the learned state: rebuilt when loaded, never stored (a pandas
        # dtype is not a type skops can write without pickle)
        state = dict(super().__getstate__())
        for cache in _CACHES:
            state.pop(cache, None)
        return state

    def _lookup(self, column: str) -> dict[str, int]:
        lookups = self.__dict__.get("_lookups")
        if lookups is None or column not in lookups:
            return {v: i for i, v in enumerate(self.categories_[column])}
        return lookups[column]  # type: ignore[no-any-return]

    def transform(self, X: pd.DataFrame) -> Any:
        """Encode rows (columns matched by name; a missing column reads as all missing)."""
        frame = self._encode(self._table(X, reset=False))
        if self.output == "dense":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.dense_.transform(frame)
        return self._finish(frame)

    def codes(self, X: pd.DataFrame) -> np.ndarray:
        """The ``native`` output as one float matrix: a category's value is its code (the
        categories are 0, 1, 2...), so a LightGBM booster fitted on the native frame gives
        the same answers on this matrix, without its pandas conversion."""
        return self._encode(self._table(X, reset=False)).to_numpy(dtype=np.float64)

    def _finish(self, frame: pd.DataFrame) -> Any:
        if self.output == "ordinal":
            return frame.to_numpy(dtype=np.float32)
        if "_code_dtypes" not in self.__dict__:  # an encoder restored without its caches
            self._build_caches()
        dtypes = self._code_dtypes
        encoded = getattr(self, "names_encoded_", False)
        columns: dict[str, Any] = {}
        for column in frame.columns:
            values = frame[column].to_numpy()
            name = model_name(column) if encoded else column
            if column in self.code_columns_:
                dtype = dtypes[column]
                # a value is its own code; missing is -1
                codes = np.where(np.isnan(values), -1, values).astype(np.int64)
                columns[name] = pd.Categorical.from_codes(codes, dtype=dtype)
            else:
                columns[name] = values
        return pd.DataFrame(columns, index=frame.index)

    def model_feature_names(self) -> list[str]:
        """The column names of the ``native`` output: what LightGBM, XGBoost or
        HistGradientBoosting were fitted with (``feature_names_out_`` encoded by
        ``model_name``)."""
        if getattr(self, "names_encoded_", False):
            return [model_name(c) for c in self.feature_names_out_]
        return list(self.feature_names_out_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the encoded columns (before dense expansion)."""
        return np.asarray(self.feature_names_out_, dtype=object)


def make_dense_step(
    frame: pd.DataFrame,
    code_columns: list[str],
    categories: Mapping[str, list[str]],
    random_state: int = 0,
) -> Any:
    """A ``ColumnTransformer`` for linear models and the MLP over the encoded frame."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

    small = [c for c in code_columns if len(categories[c]) <= _ONE_HOT_MAX]
    large = [c for c in code_columns if c not in small]
    numeric = [c for c in frame.columns if c not in code_columns]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            )
        )
    if small:
        parts.append(
            (
                "one_hot",
                OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False),
                small,
            )
        )
    if large:
        parts.append(
            (
                "target",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True),
                    TargetEncoder(random_state=random_state),
                    StandardScaler(),
                ),
                large,
            )
        )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)
