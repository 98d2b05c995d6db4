"""The input signature of a model version and the checking of inputs against it.

A signature is the dataset schema of the model's input columns (``forgeml.schema/1``: kind,
dtype, nullability, categories, range per column) plus the output (task and classes). It is
required: every registered version has one, inferred from the training data, a ``sample`` or,
at least, the estimator's ``feature_names_in_``.

How ``Signature.check`` treats inputs (documented behaviour, tested):

======================================  ====================================================
input                                   handling
======================================  ====================================================
a column is missing                     ``SchemaMismatchError`` naming every missing column
an extra column                         dropped, with an ``ExtraColumnsWarning``
columns in another order                reordered to the signature's order
numbers given as text (``"3.5"``)       converted; text that is not a number is an error
a value of the wrong type               ``SchemaMismatchError`` naming the column and value
a category not seen in training         ``SchemaMismatchError`` naming the column and value;
                                        with ``unknown_categories="pass"`` it is given to the
                                        model (whose encoder decides), with an
                                        ``UnknownCategoryWarning``
missing values in a column that had     ``SchemaMismatchError``: the model never saw missing
none in the training data               values there
======================================  ====================================================
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError, SchemaMismatchError

__all__ = [
    "ExtraColumnsWarning",
    "InputColumn",
    "Signature",
    "UnknownCategoryWarning",
    "infer_signature",
]

SIGNATURE_FORMAT = "forgeml.signature/1"
SCHEMA_FORMAT = "forgeml.schema/1"
_KINDS = ("numeric", "integer", "boolean", "categorical", "datetime", "text", "identifier")
_MAX_CATEGORIES = 200  # more distinct strings than this: an open set (text), not checked
_SHOWN = 5


class ExtraColumnsWarning(UserWarning):
    """Input columns the model does not take were dropped."""


class UnknownCategoryWarning(UserWarning):
    """Categories never seen in training were passed to the model."""


@dataclass(frozen=True, slots=True)
class InputColumn:
    """One input column of a signature (the fields of a dataset schema's column)."""

    name: str
    kind: str
    dtype: str = "object"
    nullable: bool = True
    categories: tuple[Any, ...] | None = None
    min: float | int | str | None = None
    max: float | int | str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary in the dataset schema's column format."""
        return {
            "name": self.name,
            "kind": self.kind,
            "nullable": self.nullable,
            "dtype": self.dtype,
            "categories": None if self.categories is None else list(self.categories),
            "min": self.min,
            "max": self.max,
            "overridden": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputColumn:
        """The column described by ``to_dict``'s output (or a dataset schema column)."""
        kind = str(data.get("kind", "numeric"))
        if kind not in _KINDS:
            raise InputError(f"Unknown column kind {kind!r} for column {data.get('name')!r}")
        categories = data.get("categories")
        return cls(
            name=str(data["name"]),
            kind=kind,
            dtype=str(data.get("dtype", "object")),
            nullable=bool(data.get("nullable", True)),
            categories=None if categories is None else tuple(categories),
            min=data.get("min"),
            max=data.get("max"),
        )


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes and gives.

    Attributes:
        inputs: the input columns, in the order the model takes them.
        task: ``binary``, ``multiclass``, ``regression`` (or another task name).
        classes: the class labels in the model's output order (classification), else ``None``.
        source: where the input types came from: ``dataset``, ``sample``, ``feature_names``
            (names only: every column is taken as a nullable number) or ``mlflow``.
        ignored: columns of the training data the model leaves out on purpose (the target,
            identifiers, sensitive and dropped columns): rows that carry them are taken without
            a warning, so a row of the dataset itself can be scored as it is.
    """

    inputs: tuple[InputColumn, ...]
    task: str | None = None
    classes: tuple[Any, ...] | None = None
    source: str = "sample"
    ignored: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The input column names, in order."""
        return tuple(c.name for c in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; ``inputs`` is a dataset schema document."""
        return {
            "format": SIGNATURE_FORMAT,
            "inputs": {"format": SCHEMA_FORMAT, "columns": [c.to_dict() for c in self.inputs]},
            "output": {
                "task": self.task,
                "classes": None if self.classes is None else list(self.classes),
            },
            "source": self.source,
            "ignored": list(self.ignored),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """The signature described by ``to_dict``'s output.

        Raises:
            InputError: ``data`` is not a signature document.
        """
        try:
            columns = data["inputs"]["columns"]
            output = data.get("output") or {}
        except (KeyError, TypeError):
            raise InputError("A signature document has 'inputs' with a 'columns' list") from None
        classes = output.get("classes")
        return cls(
            inputs=tuple(InputColumn.from_dict(c) for c in columns),
            task=output.get("task"),
            classes=None if classes is None else tuple(classes),
            source=str(data.get("source", "sample")),
            ignored=tuple(str(c) for c in data.get("ignored") or ()),
        )

    def check(self, rows: Any, *, unknown_categories: str = "error") -> pd.DataFrame:
        """Check input rows against the signature; return them as the model takes them.

        Args:
            rows: a DataFrame, a mapping of column -> values, or a list of row mappings.
            unknown_categories: ``"error"`` (default) or ``"pass"``: give categories never
                seen in training to the model, with an ``UnknownCategoryWarning``.

        Returns:
            A DataFrame with exactly the signature's columns, in its order, with types
            converted where the conversion is exact (see the module docstring).

        Raises:
            SchemaMismatchError: a column is missing, has a wrong type, an unknown category or
                missing values the model never saw.
            InputError: ``rows`` is not tabular.
        """
        frame = _as_frame(rows)
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                f"Missing input column{'s' if len(missing) > 1 else ''} "
                f"{_names(missing)}; the model takes {len(self.inputs)} columns: "
                f"{_names(self.names)}"
            )
        known = {*self.names, *self.ignored}
        extra = [str(c) for c in frame.columns if c not in known]
        if extra:
            warnings.warn(
                f"Dropped {len(extra)} input column{'s' if len(extra) > 1 else ''} the model "
                f"does not take: {_names(extra)}",
                ExtraColumnsWarning,
                stacklevel=3,
            )
        out = frame.loc[:, list(self.names)]
        if unknown_categories not in ("error", "pass"):
            raise InputError(f"unknown_categories is 'error' or 'pass'; got {unknown_categories!r}")
        strict = unknown_categories == "error"
        converted = {c.name: _check_column(c, out[c.name], strict) for c in self.inputs}
        changed = {k: v for k, v in converted.items() if v is not out[k]}
        if changed:
            out = out.assign(**changed)
        return out


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(str(n)[:60]) for n in list(names)[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _as_frame(rows: Any) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, Mapping):
        try:
            return pd.DataFrame({k: np.atleast_1d(v) for k, v in rows.items()})
        except ValueError as e:
            raise InputError(f"The input columns do not have the same length: {e}") from None
    if (
        isinstance(rows, Sequence)
        and not isinstance(rows, str)
        and rows
        and all(isinstance(r, Mapping) for r in rows)
    ):
        return pd.DataFrame(list(rows))
    raise InputError(
        "Inputs are a pandas DataFrame, a mapping of column -> values or a list of row "
        f"mappings; got {type(rows).__name__}"
    )


def _show(values: Any) -> str:
    items = [repr(v)[:40] for v in list(values)[:_SHOWN]]
    return ", ".join(items)


def _mismatch(column: InputColumn, what: str, bad: pd.Series) -> SchemaMismatchError:
    unique = pd.unique(bad.astype(object))
    more = f" ({len(unique)} distinct)" if len(unique) > _SHOWN else ""
    return SchemaMismatchError(f"Column {column.name!r} {what}; got {_show(unique)}{more}")


def _check_column(column: InputColumn, series: pd.Series, strict: bool) -> pd.Series:
    present = series.notna()
    if not column.nullable and not bool(present.all()):
        raise SchemaMismatchError(
            f"Column {column.name!r} has {int((~present).sum())} missing value(s); the model "
            "was trained without missing values in it"
        )
    kind = column.kind
    if kind in ("numeric", "integer"):
        return _numbers(column, series, present)
    if kind == "boolean":
        return _booleans(column, series, present)
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series):
            return series
        try:
            return pd.to_datetime(series)
        except (ValueError, TypeError):
            raise SchemaMismatchError(
                f"Column {column.name!r} takes dates and times; some values do not parse"
            ) from None
    if kind == "categorical":
        return _categories(column, series, present, strict)
    return series  # text and identifiers are passed as given


def _numbers(column: InputColumn, series: pd.Series, present: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        if pd.api.types.is_bool_dtype(series):
            raise _mismatch(column, f"takes {column.kind} values, not booleans", series[present])
        converted = pd.to_numeric(series, errors="coerce")
        bad = present & converted.isna()
        if bool(bad.any()):
            raise _mismatch(column, f"takes {column.kind} values", series[bad])
        series = converted
    if column.dtype != str(series.dtype):
        series = _cast_exact(series, column.dtype)
    return series


def _cast_exact(series: pd.Series, dtype: str) -> pd.Series:
    """``series`` as ``dtype`` when no value changes, else unchanged."""
    try:
        cast = series.astype(dtype)
    except (TypeError, ValueError):
        return series
    same = (cast.astype("float64") == series.astype("float64")) | series.isna()
    return cast if bool(same.all()) else series


_TRUE = {True, "true", "True", "TRUE", "1", "yes"}
_FALSE = {False, "false", "False", "FALSE", "0", "no"}


def _booleans(column: InputColumn, series: pd.Series, present: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series
    values = series[present]
    known = values.map(lambda v: v in _TRUE or v in _FALSE)
    if not bool(known.all()):
        raise _mismatch(column, "takes booleans", values[~known])
    mapped = series.map(lambda v: None if v is None or v != v else v in _TRUE)
    return mapped.astype("boolean") if not bool(present.all()) else mapped.astype(bool)


def _categories(
    column: InputColumn, series: pd.Series, present: pd.Series, strict: bool
) -> pd.Series:
    if column.categories is None:
        return series
    allowed = set(column.categories)
    values = series[present]
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    unknown = ~values.isin(allowed)
    if bool(unknown.any()):  # categories recorded as text match values by their text
        unknown &= ~values.astype(str).isin({str(c) for c in allowed})
    if bool(unknown.any()):
        error = _mismatch(column, "has categories the model never saw", values[unknown])
        if strict:
            raise error
        warnings.warn(error.message, UnknownCategoryWarning, stacklevel=4)
        return series
    if column.dtype == "category" and not isinstance(series.dtype, pd.CategoricalDtype):
        return series.astype(pd.CategoricalDtype(list(column.categories)))
    return series


# (1 and 0 are in the sets as True and False, which hash equal to them)

# -- inference --------------------------------------------------------------------------------


def infer_signature(
    frame: pd.DataFrame,
    *,
    task: str | None = None,
    classes: Sequence[Any] | None = None,
    source: str = "sample",
) -> Signature:
    """The signature of a model that takes the columns of ``frame``.

    Column kinds, categories and ranges come from ``forgeml.data.infer_schema`` when the data
    capability offers it, else from a small inference of the same document format here.

    Args:
        frame: the model's input columns (training data or a sample of it).
        task: the model's task.
        classes: the class labels, in the model's output order.
        source: where ``frame`` comes from (``dataset`` or ``sample``).
    """
    if not isinstance(frame, pd.DataFrame) or frame.shape[1] == 0:
        raise InputError("A signature is inferred from a DataFrame with at least one column")
    frame = frame.rename(columns=str)
    columns = _columns_from_data_capability(frame)
    if columns is None:
        columns = [_infer_column(str(name), frame[name]) for name in frame.columns]
    else:  # keep the pandas category order the model was fitted with
        columns = [_keep_category_order(c, frame[c.name]) for c in columns]
    return Signature(
        inputs=tuple(columns),
        task=task,
        classes=None if classes is None else tuple(_plain(c) for c in classes),
        source=source,
    )


def names_only_signature(
    names: Sequence[str], *, task: str | None = None, classes: Sequence[Any] | None = None
) -> Signature:
    """A signature known by column names only: every column a nullable number."""
    return Signature(
        inputs=tuple(InputColumn(str(n), "numeric", "float64", True) for n in names),
        task=task,
        classes=None if classes is None else tuple(_plain(c) for c in classes),
        source="feature_names",
    )


def signature_from_columns(
    schema: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
    *,
    task: str | None = None,
    classes: Sequence[Any] | None = None,
) -> Signature:
    """A signature from a training result's per-column summary (``{column: {"kind", "dtype",
    "missing", "categories", "n_categories", "min", "max"}}``).

    Categories are checked only when the summary lists all of them.
    """
    inputs = []
    for name in columns:
        entry = schema.get(name) or {}
        kind = str(entry.get("kind", "numeric"))
        categories = entry.get("categories")
        if categories is not None and entry.get("n_categories", len(categories)) > len(categories):
            categories = None
        inputs.append(
            InputColumn(
                name=str(name),
                kind=kind if kind in _KINDS else "text",
                dtype=str(entry.get("dtype", "object")),
                nullable=float(entry.get("missing", 1.0)) > 0,
                categories=None if categories is None else tuple(categories),
                min=entry.get("min"),
                max=entry.get("max"),
            )
        )
    return Signature(
        inputs=tuple(inputs),
        task=task,
        classes=None if classes is None else tuple(_plain(c) for c in classes),
        source="dataset",
    )


def _columns_from_data_capability(frame: pd.DataFrame) -> list[InputColumn] | None:
    try:
        from forgeml.data import infer_schema  # type: ignore[attr-defined]
    except ImportError:
        return None
    schema = infer_schema(frame)
    return [InputColumn.from_dict(c) for c in schema.to_dict()["columns"]]


def _keep_category_order(column: InputColumn, series: pd.Series) -> InputColumn:
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = tuple(_plain(c) for c in series.cat.categories)
        return InputColumn(
            column.name, "categorical", "category", column.nullable, categories, None, None
        )
    return column


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _number(value: Any) -> float | int | None:
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value  # type: ignore[no-any-return]


def _infer_column(name: str, series: pd.Series) -> InputColumn:
    nullable = bool(series.isna().any())
    dtype = str(series.dtype)
    present = series.dropna()
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = tuple(_plain(c) for c in series.cat.categories)
        return InputColumn(name, "categorical", "category", nullable, categories)
    if pd.api.types.is_bool_dtype(series):
        return InputColumn(name, "boolean", dtype, nullable, (False, True))
    if pd.api.types.is_integer_dtype(series):
        low, high = (
            (_number(present.min()), _number(present.max())) if len(present) else (None,) * 2
        )
        return InputColumn(name, "integer", dtype, nullable, None, low, high)
    if pd.api.types.is_numeric_dtype(series):
        low, high = (
            (_number(present.min()), _number(present.max())) if len(present) else (None,) * 2
        )
        return InputColumn(name, "numeric", dtype, nullable, None, low, high)
    if pd.api.types.is_datetime64_any_dtype(series):
        low, high = (
            (present.min().isoformat(), present.max().isoformat()) if len(present) else (None,) * 2
        )
        return InputColumn(name, "datetime", dtype, nullable, None, low, high)
    distinct = pd.unique(present.astype(object))
    if len(distinct) <= _MAX_CATEGORIES:
        try:
            categories = tuple(sorted(_plain(v) for v in distinct))
        except TypeError:  # mixed types: keep first-seen order
            categories = tuple(_plain(v) for v in distinct)
        return InputColumn(name, "categorical", dtype, nullable, categories)
    return InputColumn(name, "text", dtype, nullable)
