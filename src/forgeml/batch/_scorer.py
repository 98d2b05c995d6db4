"""Scoring one chunk: the model's columns of some input rows in, their output columns out.

Each chunk is converted to the types the signature takes (numbers through Arrow's cast,
categories encoded straight onto the signature's categories; whatever the fast conversion does
not take is left to the signature check, which converts it or names the column and value),
checked once and scored with ``LoadedModel.predict_both`` (one model pass where the flavor can
give labels and probabilities together).

A chunk that fails the signature check is searched for the rows that fail it, column by
column, by bisection with the signature check itself (so a row is refused for exactly the
reasons a whole table is); the other rows are then scored. Searching costs a few checks per
bad row; a chunk without bad rows costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from forgeml.errors import InputError, SchemaMismatchError

if TYPE_CHECKING:
    import pandas as pd

    from forgeml.registry import InputColumn, LoadedModel, Signature

__all__ = ["BadRow", "ScoredChunk", "Scorer", "output_names"]

_SCAN_BELOW = 16  # rows checked one by one rather than halved further


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row of a chunk the model cannot take.

    Attributes:
        position: the row's position in its chunk (from 0).
        column: the first of the model's columns (in its order) whose value does not fit.
        reason: the signature check's message for that value.
    """

    position: int
    column: str
    reason: str


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """The outcome of one chunk.

    Attributes:
        outputs: ``prediction`` (and ``proba_<class>``) for every row not in ``bad``, in
            order; ``None`` when no row was scored.
        bad: the rows that do not fit the model, in order (only the first one when the
            scorer was asked to stop there).
    """

    outputs: pa.Table | None
    bad: tuple[BadRow, ...] = ()


class Scorer:
    """Scores chunks with one loaded model.

    Args:
        model: the loaded model.
        probabilities: add ``proba_<class>`` columns for classifiers.
        find_all: on a chunk with bad rows, find every one and score the others; else stop
            at the first bad row (nothing of that chunk is scored).
    """

    def __init__(self, model: LoadedModel, probabilities: bool, *, find_all: bool) -> None:
        self.model = model
        self.probabilities = probabilities and model.classes is not None
        self.find_all = find_all

    def score(self, table: pa.Table) -> ScoredChunk:
        """Score one chunk of the model's columns.

        Raises:
            SchemaMismatchError: the chunk does not fit the model in a way that is not about
                single rows.
        """
        frame = model_frame(table, self.model.signature)
        try:
            return ScoredChunk(self._outputs(frame))
        except SchemaMismatchError:
            bad = find_bad_rows(frame, self.model, first_only=not self.find_all)
            if not bad:
                raise
        if not self.find_all:
            return ScoredChunk(None, bad)
        good = np.ones(len(frame), dtype=bool)
        good[[b.position for b in bad]] = False
        outputs = self._outputs(frame.iloc[good]) if good.any() else None
        return ScoredChunk(outputs, bad)

    def _outputs(self, frame: pd.DataFrame) -> pa.Table:
        model = self.model
        labels, proba = model.predict_both(frame, probabilities=self.probabilities)
        columns: dict[str, pa.Array] = {"prediction": _arrow(labels)}
        if proba is not None:
            for i, label in enumerate(model.classes or ()):
                columns[f"proba_{label}"] = pa.array(np.ascontiguousarray(proba[:, i]))
        return pa.table(columns)


def output_names(model: LoadedModel, probabilities: bool) -> list[str]:
    """The columns batch scoring adds to each row."""
    names = ["prediction"]
    if probabilities and model.classes is not None:
        names += [f"proba_{c}" for c in model.classes]
    return names


def empty_outputs(model: LoadedModel, probabilities: bool) -> list[pa.Field]:
    """The output fields of an input without rows."""
    label = pa.float64()
    if model.classes is not None:
        try:
            label = pa.array(list(model.classes)).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            label = pa.string()
    fields = [pa.field("prediction", label)]
    return fields + [pa.field(n, pa.float64()) for n in output_names(model, probabilities)[1:]]


def find_bad_rows(
    frame: pd.DataFrame, model: LoadedModel, *, first_only: bool
) -> tuple[BadRow, ...]:
    """The rows of ``frame`` that fail the signature check, each with its first bad column.

    With ``first_only``, only the first such row (in row order). Rows are first picked out
    column by column with vectorised tests of the kind of value the check refuses, each
    distinct refused value confirmed (and its message taken) from the check on one row; the
    rows left must then pass the check as a whole, or bisection finds the rest.
    """
    from forgeml.registry import Signature

    checks = {
        c.name: _one_column_check(Signature(inputs=(c,)), model) for c in model.signature.inputs
    }
    found: dict[int, BadRow] = {}
    for column in model.signature.inputs:
        name, check = column.name, checks[column.name]
        suspects = _suspects(column, frame[name], model.unknown_categories == "error")
        if first_only and found:
            suspects[min(found) :] = False
        messages: dict[tuple[str, str], str | None] = {}
        for position in np.flatnonzero(suspects).tolist():
            value = frame[name].iloc[position]
            key = _key(value)
            if key not in messages:
                messages[key] = check(frame[[name]].iloc[position : position + 1])
            reason = messages[key]
            if reason is not None:
                found.setdefault(position, BadRow(position, name, reason))
                if first_only:
                    break
    limit = min(found) if first_only and found else len(frame)
    rest = np.ones(limit, dtype=bool)
    rest[[p for p in found if p < limit]] = False
    others = np.flatnonzero(rest)
    whole = _one_column_check(model.signature, model)
    if others.size and whole(frame.iloc[others]) is not None:
        left = frame.iloc[others]
        for column in model.signature.inputs:
            stop = len(left)
            if first_only and found:
                stop = int(np.searchsorted(others, min(found)))
            part = left[[column.name]]
            for position, reason in _failing(part, checks[column.name], 0, stop, first_only):
                found.setdefault(
                    int(others[position]), BadRow(int(others[position]), column.name, reason)
                )
    rows = sorted(found.values(), key=lambda b: b.position)
    return tuple(rows[:1]) if first_only else tuple(rows)


def _key(value: Any) -> tuple[str, str]:
    """What identifies a value for the check: its type and text, or missing."""
    import pandas as pd

    try:
        if bool(pd.isna(value)):
            return ("", "missing")
    except (TypeError, ValueError):
        pass
    return (type(value).__name__, str(value))


def _one_column_check(
    signature: Signature, model: LoadedModel
) -> Callable[[pd.DataFrame], str | None]:
    def check(rows: pd.DataFrame) -> str | None:
        try:
            signature.check(model.apply_pii(rows), unknown_categories=model.unknown_categories)
        except SchemaMismatchError as e:
            return e.message
        return None

    return check


_BOOLEAN_WORDS = [
    True,
    False,
    "true",
    "True",
    "TRUE",
    "1",
    "yes",
    "false",
    "False",
    "FALSE",
    "0",
    "no",
]


def _suspects(column: InputColumn, series: pd.Series, strict: bool) -> np.ndarray:
    """Rows whose value in ``series`` the signature check may refuse (a superset)."""
    import warnings

    import pandas as pd

    present = series.notna().to_numpy()
    suspects = np.zeros(len(series), dtype=bool)
    if not column.nullable:
        suspects |= ~present
    kind = column.kind
    if kind in ("numeric", "integer"):
        if pd.api.types.is_bool_dtype(series):
            suspects |= present
        elif not pd.api.types.is_numeric_dtype(series):
            suspects |= present & pd.to_numeric(series, errors="coerce").isna().to_numpy()
    elif kind == "boolean" and not pd.api.types.is_bool_dtype(series):
        suspects |= present & ~series.isin(_BOOLEAN_WORDS).to_numpy()
    elif kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(series):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(series, errors="coerce")
        suspects |= present & parsed.isna().to_numpy()
    elif kind == "categorical" and column.categories is not None and strict:
        values = series.astype(object)
        allowed = list(column.categories)
        known = values.isin(allowed) | values.astype(str).isin([str(c) for c in allowed])
        suspects |= present & ~known.to_numpy()
    return suspects


def _failing(
    part: pd.DataFrame,
    check: Callable[[pd.DataFrame], str | None],
    start: int,
    stop: int,
    first_only: bool,
) -> list[tuple[int, str]]:
    """Positions in ``[start, stop)`` whose single row fails ``check``, with its message."""
    if start >= stop or check(part.iloc[start:stop]) is None:
        return []
    if stop - start <= _SCAN_BELOW:
        found = []
        for position in range(start, stop):
            reason = check(part.iloc[position : position + 1])
            if reason is not None:
                found.append((position, reason))
                if first_only:
                    break
        return found
    middle = (start + stop) // 2
    left = _failing(part, check, start, middle, first_only)
    if first_only and left:
        return left
    return left + _failing(part, check, middle, stop, first_only)


def _arrow(values: Any) -> pa.Array:
    values = np.asarray(values)
    if values.ndim != 1:
        raise InputError(
            f"The model gives {values.shape[1:]} values per row; batch scoring writes one "
            "prediction per row"
        )
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # labels of mixed types
        return pa.array(values.astype(str))


def model_frame(table: pa.Table, signature: Signature) -> pd.DataFrame:
    """The chunk as a DataFrame the signature check takes, text columns converted first."""
    arrays: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for column in signature.inputs:
        values = table.column(column.name)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            converted = _from_text(values, column)
            if isinstance(converted, pa.ChunkedArray | pa.Array):
                arrays[column.name] = converted
            else:
                categorical[column.name] = converted
        else:
            arrays[column.name] = values
    frame = pa.table(arrays).to_pandas() if arrays else None
    if frame is None:
        import pandas as pd

        return pd.DataFrame(categorical)
    return frame.assign(**categorical) if categorical else frame


def _from_text(values: pa.ChunkedArray, column: InputColumn) -> Any:
    """Text of a model column as the type the signature takes, when the conversion is exact
    and fast; else the text itself, for the signature check to convert or refuse."""
    import pyarrow.compute as pc

    categories = column.categories
    try:
        if column.kind in ("numeric", "integer"):
            return pc.cast(values, pa.float64())
        if column.kind == "categorical" and categories is not None:
            if all(isinstance(c, str) for c in categories):
                if column.dtype == "category":
                    return _categorical(values, categories)
                return values
            if all(isinstance(c, int) and not isinstance(c, bool) for c in categories):
                return pc.cast(values, pa.int64())
            if all(isinstance(c, int | float) and not isinstance(c, bool) for c in categories):
                return pc.cast(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return values


def _categorical(values: pa.ChunkedArray, categories: Sequence[str]) -> Any:
    """Text as a pandas Categorical on exactly the signature's categories (what the signature
    check makes of it), or the text itself if a value is not one of them."""
    import pandas as pd
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values.combine_chunks())
    positions = pc.index_in(encoded.dictionary, value_set=pa.array(categories, pa.string()))
    if positions.null_count:  # an unknown category: the signature check names it
        return values
    codes = pc.fill_null(pc.take(positions, encoded.indices), -1)
    return pd.Categorical.from_codes(
        codes.to_numpy(zero_copy_only=False), dtype=pd.CategoricalDtype(list(categories))
    )
