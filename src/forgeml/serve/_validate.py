"""Request rows checked against a model's signature, one request at a time.

The check runs on the event loop before a request joins a batch, so that a bad request fails
alone (with a 422 naming the column and row) and a batch only ever holds valid rows. It is plain
Python over lists: for the small requests a server sees, building a DataFrame would cost more
than the whole check. ``Signature.check`` (the registry's, vectorised) documents the same rules.

=========================  ===================================================================
input                      handling
=========================  ===================================================================
a column is missing        422 naming every missing column
an extra column            ignored
a number as text ("3.5")   converted; other text is a 422
an infinity (binary         422 naming the column and row: the one non-finite policy (NaN is
tensors, "inf" as text)    a missing value, below)
a boolean for a number     422
a missing value (null)     422 when the model never saw missing values in that column
a category never seen      422 naming the column, row and value (or passed to the model with
                           ``unknown_categories="pass"``); counted either way
a number outside the       passed to the model, counted
training data's range
a list or object value     422: one value per cell
=========================  ===================================================================

Data quality: ``check_quality`` also says, per column, how many of a request's values were out
of the training data's range (``out_of_range``), categories never seen (``unseen_category``)
and missing where the training data had none (``unexpected_missing``); ``on_issue`` receives
the same counts (the server's ``forgeml_input_quality_issues_total``). A refused request
counts the issue it was refused for (its first value).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

from forgeml.registry import Signature
from forgeml.registry._signature import InputColumn
from forgeml.serve._types import RequestError, Rows

__all__ = ["ISSUES", "Quality", "Validator"]

ISSUES = ("out_of_range", "unseen_category", "unexpected_missing")
Quality = dict[str, dict[str, int]]  # column -> issue -> values of one request

_TRUE = {True, "true", "True", "TRUE", "1", "yes"}
_FALSE = {False, "false", "False", "FALSE", "0", "no"}
_SCALARS = (str, int, float, bool)


def _mismatch(column: str, message: str) -> RequestError:
    return RequestError(message, field=column, status=422, code="schema_mismatch")


def _show(value: Any) -> str:
    return repr(value)[:60]


class Validator:
    """Checks decoded rows against a signature and converts them to the values the model
    takes (numbers as float or int, categories as their training value, booleans as bool,
    ``None`` for missing).

    Args:
        signature: the model's signature.
        unknown_categories: ``"error"`` (default) or ``"pass"``.
        max_rows: the most rows one request may hold.
        on_unseen: called with a column's name and how many of a request's values in it are
            categories never seen in training (the serving metric
            ``forgeml_unseen_categories_total``); a refused request counts its first one.
        on_issue: called with a column's name, an issue of ``ISSUES`` and how many of a
            request's values in the column have it.
        transform: applied to a request's columns before they are checked: the model's PII
            policy (``LoadedModel.apply_pii``), so raw personal values are hashed or masked
            before they are predicted, logged or journaled.
    """

    def __init__(
        self,
        signature: Signature,
        *,
        unknown_categories: str = "error",
        max_rows: int = 10_000,
        on_unseen: Callable[[str, int], None] | None = None,
        on_issue: Callable[[str, str, int], None] | None = None,
        transform: Callable[[dict[str, list[Any]]], dict[str, list[Any]]] | None = None,
    ) -> None:
        self._transform = transform
        self.signature = signature
        self.names = signature.names
        self.max_rows = max_rows
        self._strict = unknown_categories != "pass"
        self._on_unseen = on_unseen
        self._on_issue = on_issue
        self._checks: list[Callable[[list[Any], Quality], list[Any]]] = [
            self._column_check(c) for c in signature.inputs
        ]
        # one row whose every value is the plain case (see ``_one``)
        self._plain = [(c.name, self._plain_value(c)) for c in signature.inputs]

    def check(self, rows: Rows) -> dict[str, list[Any]]:
        """The request's columns in the signature's order, converted.

        Raises:
            RequestError: 422 naming the column (and row) at fault; 413 for too many rows.
        """
        return self.check_quality(rows)[0]

    def check_quality(self, rows: Rows) -> tuple[dict[str, list[Any]], Quality | None]:
        """The request's columns in the signature's order, converted, and its data-quality
        issues (column -> issue -> count; ``None`` when there are none).

        Raises:
            RequestError: 422 naming the column (and row) at fault; 413 for too many rows.
        """
        if rows.n > self.max_rows:
            raise RequestError(
                f"The request holds {rows.n} rows; at most {self.max_rows} per request",
                field="body",
                status=413,
                code="too_many_rows",
            )
        if rows.n == 0:
            raise RequestError("The request holds no rows", field="body")
        given = rows.columns if self._transform is None else self._transform(rows.columns)
        if rows.n == 1:
            one = self._one(given)
            if one is not None:
                return one, None
        missing = [n for n in self.names if n not in given]
        if missing:
            shown = ", ".join(repr(n) for n in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise _mismatch(
                missing[0],
                f"Missing input column{'s' if len(missing) > 1 else ''} {shown}{more}; the "
                f"model takes {len(self.names)} columns",
            )
        issues: Quality = {}
        try:
            columns = {
                name: check(given[name], issues)
                for name, check in zip(self.names, self._checks, strict=True)
            }
        finally:
            if issues:
                self._report(issues)
        return columns, issues or None

    def _one(self, given: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
        """One row converted when each of its values is the plain case of its column (a
        finite number in the training range, a known category given as text or an integer,
        a boolean, text): what the full check gives for it, without a data-quality issue.
        ``None`` when any value is not, for the full check to convert, count or refuse."""
        out: dict[str, list[Any]] = {}
        for name, plain in self._plain:
            values = given.get(name)
            if values is None or len(values) != 1:
                return None
            value = plain(values[0])
            if value is _NOT_PLAIN:
                return None
            out[name] = [value]
        return out

    def _plain_value(self, column: InputColumn) -> Callable[[Any], Any]:
        kind = column.kind
        if kind in ("numeric", "integer"):
            low = max(_bound(column.min, -_INF), -_MAX_FLOAT)
            high = min(_bound(column.max, _INF), _MAX_FLOAT)

            def number(value: Any) -> Any:
                cls = value.__class__
                if (cls is int or cls is float) and low <= value <= high:
                    return value  # NaN and infinities compare outside
                return _NOT_PLAIN

            return number
        if kind == "boolean":
            return lambda value: value if value.__class__ is bool else _NOT_PLAIN
        if kind == "categorical" and column.categories is not None:
            known: dict[Any, Any] = {}
            for category in column.categories:
                known[str(category)] = category
            for category in column.categories:
                known[category] = category  # exact values win over their text, as below

            def category(value: Any) -> Any:
                cls = value.__class__
                if cls is str or cls is int:
                    found = known.get(value)
                    if found is not None:
                        return found
                return _NOT_PLAIN

            return category
        return lambda value: value if value.__class__ is str else _NOT_PLAIN

    def _report(self, issues: Quality) -> None:
        on_issue, on_unseen = self._on_issue, self._on_unseen
        for column, counts in issues.items():
            for issue, count in counts.items():
                if on_issue is not None:
                    on_issue(column, issue, count)
                if on_unseen is not None and issue == "unseen_category":
                    on_unseen(column, count)

    # -- per kind -----------------------------------------------------------------------------

    def _column_check(self, column: InputColumn) -> Callable[[list[Any], Quality], list[Any]]:
        kind = column.kind
        unseen = [0]  # values of one request not seen in training (checks run one at a time)
        convert: Callable[[Any], Any]
        if kind in ("numeric", "integer"):
            convert = _number
            what = "finite numbers" if kind == "numeric" else "finite integers"
        elif kind == "boolean":
            convert = _boolean
            what = "booleans (true/false)"
        elif kind == "categorical" and column.categories is not None:
            convert = self._category_converter(column, unseen)
            what = "one of the categories seen in training"
        else:  # text, identifiers, dates, open categorical sets: scalars as given
            convert = _scalar
            what = "text" if kind != "datetime" else "dates and times (ISO 8601 text)"
        name = column.name
        nullable = column.nullable

        def convert_all(values: list[Any], issues: Quality) -> list[Any]:
            out: list[Any] = []
            append = out.append
            for i, value in enumerate(values):
                if value is None or (value.__class__ is float and value != value):
                    if not nullable:
                        issues.setdefault(name, {})["unexpected_missing"] = 1
                        raise _mismatch(
                            name,
                            f"Column {name!r} has a missing value in row {i}; the model was "
                            "trained without missing values in it",
                        )
                    append(None)
                    continue
                try:
                    append(convert(value))
                except (TypeError, ValueError, KeyError):
                    raise _mismatch(
                        name, f"Column {name!r} takes {what}; row {i} has {_show(value)}"
                    ) from None
            return out

        if convert is _number:
            low, high = _bound(column.min, -math.inf), _bound(column.max, math.inf)
            if low == -math.inf and high == math.inf:
                return convert_all

            def in_range(values: list[Any], issues: Quality) -> list[Any]:
                out = convert_all(values, issues)
                try:
                    if min(out) >= low and max(out) <= high:  # the common case, in C
                        return out
                except TypeError:  # missing values (None) among them
                    pass
                outside = 0
                for v in out:
                    if v is not None and (v < low or v > high):
                        outside += 1
                if outside:
                    issues.setdefault(name, {})["out_of_range"] = outside
                return out

            return in_range
        if convert is _boolean or convert is _scalar:
            return convert_all

        def check(values: list[Any], issues: Quality) -> list[Any]:
            try:
                return convert_all(values, issues)
            finally:
                if unseen[0]:
                    issues.setdefault(name, {})["unseen_category"] = unseen[0]
                    unseen[0] = 0

        return check

    def _category_converter(self, column: InputColumn, unseen: list[int]) -> Callable[[Any], Any]:
        assert column.categories is not None
        known: dict[Any, Any] = {}
        for category in column.categories:
            known[str(category)] = category
        for category in column.categories:
            known[category] = category  # exact values win over their text
        strict = self._strict

        def convert(value: Any) -> Any:
            if value.__class__ not in _SCALAR_TYPES:
                raise TypeError(value)
            found = known.get(value)
            if found is None:
                found = known.get(str(value))
            if found is None:
                unseen[0] += 1
                if strict:
                    raise KeyError(value)
                return value
            return found

        return convert


_SCALAR_TYPES = {str, int, float, bool}


def _bound(value: Any, default: float) -> float:
    """A range bound of the signature as a number (``default`` when there is none)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


_INF = math.inf
_MAX_FLOAT = sys.float_info.max
_NOT_PLAIN = object()


def _number(value: Any) -> float | int:
    cls = value.__class__
    if cls is int:
        return value  # type: ignore[no-any-return]
    if cls is float:
        if value == _INF or value == -_INF:  # NaN was taken as missing before
            raise ValueError(value)
        return value  # type: ignore[no-any-return]
    if cls is str:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    raise TypeError(value)  # bool, list, dict...


def _boolean(value: Any) -> bool:
    if value.__class__ not in _SCALAR_TYPES or value.__class__ is float:
        raise TypeError(value)
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(value)


def _scalar(value: Any) -> Any:
    if value.__class__ not in _SCALAR_TYPES:
        raise TypeError(value)
    return value
