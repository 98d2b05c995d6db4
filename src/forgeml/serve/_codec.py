"""What the codecs of the server's three protocols share (``_native``, ``_mlflow``, ``_v2``).

Codecs are pure functions, no web framework: a request body (bytes) becomes ``Rows``,
``Outputs`` become a response body. Decoders only check what the protocol itself defines
(structure, shapes, tensor datatypes); the types of the values against the model's signature
are the validator's job. Every malformed request raises ``RequestError`` naming the field at
fault, never another exception.

========================  =========================================================================
protocol                  request bodies accepted
========================  =========================================================================
forgeml native            ``{"records": [{col: value}, ...]}`` or ``{"columns": {col: [values]}}``,
                          optional ``"key"`` (routing key)
MLflow ``/invocations``   JSON with exactly one of ``dataframe_split``, ``dataframe_records``,
                          ``instances``, ``inputs`` (optional ``params``, ignored); ``text/csv``
Open Inference v2         JSON inference request, or Triton's binary tensor extension: a JSON
                          header of ``Inference-Header-Content-Length`` bytes, then raw tensors
========================  =========================================================================

Missing values
--------------

- Native and MLflow JSON: ``null`` is a missing value. ``NaN``, ``Infinity`` and ``-Infinity``
  tokens (not JSON, but what Python's ``json.dumps`` writes and MLflow's own client sends) are
  read as floats.
- MLflow ``dataframe_records``: a key absent from a record is a missing value (pandas and MLflow
  do the same; Spark's ``to_json`` leaves null fields out). Elsewhere a record lacking a column
  the others have is an error: missing values must be explicit.
- MLflow CSV: the fields pandas reads as missing by default (empty, ``NA``, ``NaN``, ``null``...)
  are ``None``; every other field is a string (the validator converts numeric text).
- v2 floating-point tensors: ``NaN`` is missing; in the JSON form ``null`` (and a ``NaN``
  token) is also read as ``NaN``. v2 ``BYTES`` tensors: ``null`` in the JSON form is ``None``;
  the binary form has no null (an element is always a string, ``""`` included), so a client
  with missing text values sends that input in the JSON form. ``BYTES`` JSON data may also hold
  numbers and booleans, passed on as they are (a 2-D tensor of mixed rows).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from forgeml.serve._types import RequestError

if TYPE_CHECKING:
    pass

__all__ = [
    "BINARY_TYPE",
    "CSV_TYPE",
    "HEADER_LENGTH",
    "JSON_TYPE",
    "PREDICT",
    "PREDICT_PROBA",
    "check_scalars",
    "first_duplicate",
    "from_column_lists",
    "from_matrix",
    "from_records",
    "json_object",
    "kind_of",
    "load_json",
    "no_rows",
    "quoted",
    "short",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
BINARY_TYPE = "application/octet-stream"
PREDICT = "predict"
PREDICT_PROBA = "predict_proba"

SCALARS = frozenset({str, int, float, bool, type(None)})
SHOWN = 60  # characters of a name shown in a message


# -- shared helpers ---------------------------------------------------------------------------


def quoted(name: Any) -> str:
    """A name as shown in messages and fields: quoted and cut short."""
    return repr(str(name)[:SHOWN])


def short(name: Any) -> str:
    return str(name)[:SHOWN]


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def load_json(body: bytes | memoryview, field: str = "body", hint: str = "") -> Any:
    if not len(body) or (len(body) < 1024 and not bytes(body).strip()):
        raise RequestError("The request body is empty; send a JSON object", field=field)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        error = e
    raw = bytes(body)
    if b"NaN" in raw or b"Infinity" in raw:
        # Python's json module writes NaN and Infinity as bare tokens (MLflow's client and
        # tritonclient's JSON form do): read them as floats, then hold the result to orjson's
        # rules (64-bit integers, valid Unicode) by serializing it once.
        try:
            value = json.loads(raw.decode("utf-8"))
            orjson.dumps(value)
            return value
        except (ValueError, TypeError, RecursionError):
            pass
    raise RequestError(
        f"The request body is not valid JSON: {error.msg} (line {error.lineno}, "
        f"column {error.colno}){hint}",
        field=field,
    ) from None


def json_object(body: bytes | memoryview, field: str = "body", hint: str = "") -> dict[str, Any]:
    doc = load_json(body, field, hint)
    if type(doc) is not dict:
        raise RequestError(f"The request body is a JSON object; got {kind_of(doc)}", field=field)
    return doc


def first_duplicate(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def check_scalars(values: list[Any], field: str) -> None:
    for i, value in enumerate(values):
        if type(value) not in SCALARS:
            raise RequestError(
                f"{field}[{i}] is {kind_of(value)}; a value is a number, a string, a boolean "
                "or null",
                field=f"{field}[{i}]",
            )


def no_rows(field: str) -> RequestError:
    return RequestError(f"{field} holds no rows; send at least one row", field=field)


def from_records(records: Any, field: str, *, fill_missing: bool) -> tuple[dict[str, list], int]:
    """Columns from a list of row objects.

    With ``fill_missing``, a column absent from some rows is ``None`` there (pandas'
    behaviour); without, it is an error naming the row and the column.
    """
    if type(records) is not list:
        raise RequestError(f"{field} is a list of row objects; got {kind_of(records)}", field=field)
    if not records:
        raise no_rows(field)
    if len(records) == 1 and type(records[0]) is dict:  # one row of plain values: the usual
        row = records[0]
        if all(type(value) in SCALARS for value in row.values()):
            return {name: [value] for name, value in row.items()}, 1
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(records):
        if type(row) is not dict:
            raise RequestError(
                f"{field}[{i}] is a row object (column -> value); got {kind_of(row)}",
                field=f"{field}[{i}]",
            )
        for name, value in row.items():
            if type(value) not in SCALARS:
                raise RequestError(
                    f"Column {quoted(name)} of {field}[{i}] is {kind_of(value)}; a value is a "
                    "number, a string, a boolean or null",
                    field=f"{field}[{i}].{short(name)}",
                )
            column = columns.get(name)
            if column is None:
                if i and not fill_missing:
                    raise RequestError(
                        f"{field}[0] lacks column {quoted(name)} that {field}[{i}] has; every row "
                        "has the same columns (give missing values as null)",
                        field=f"{field}[0].{short(name)}",
                    )
                column = columns[name] = [None] * i
            column.append(value)
        if len(row) != len(columns):
            for name, column in columns.items():
                if len(column) == i:
                    if not fill_missing:
                        raise RequestError(
                            f"{field}[{i}] lacks column {quoted(name)} that other rows have; every "
                            "row has the same columns (give missing values as null)",
                            field=f"{field}[{i}].{short(name)}",
                        )
                    column.append(None)
    return columns, len(records)


def from_column_lists(obj: dict[str, Any], field: str) -> tuple[dict[str, list], int]:
    """Columns from an object of column -> list of values."""
    if not obj:
        raise RequestError(f"{field} names no columns", field=field)
    n = -1
    first = ""
    for name, values in obj.items():
        where = f"{field}.{short(name)}"
        if type(values) is not list:
            raise RequestError(
                f"Column {quoted(name)} of {field} is a list of values; got {kind_of(values)}",
                field=where,
            )
        if n < 0:
            n, first = len(values), name
        elif len(values) != n:
            raise RequestError(
                f"Column {quoted(name)} of {field} has {len(values)} values and column "
                f"{quoted(first)} has {n}; every column has the same number of rows",
                field=where,
            )
        check_scalars(values, where)
    if n == 0:
        raise no_rows(field)
    return dict(obj), n


def from_matrix(rows: list[Any], names: Sequence[str], field: str) -> tuple[dict[str, list], int]:
    """Columns from a list of rows (lists), mapped by position onto ``names``."""
    if not rows:
        raise no_rows(field)
    k = len(names)
    if k == 0:
        raise RequestError(
            f"{field} gives values by position but no column names are known; name the columns",
            field=field,
        )
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise RequestError(
                f"{field}[{i}] is a row (a list of {k} values); got {kind_of(row)}",
                field=f"{field}[{i}]",
            )
        if len(row) != k:
            raise RequestError(
                f"{field}[{i}] has {len(row)} values; every row has {k}, one per column",
                field=f"{field}[{i}]",
            )
        for j, value in enumerate(row):
            if type(value) not in SCALARS:
                raise RequestError(
                    f"{field}[{i}][{j}] is {kind_of(value)}; a value is a number, a string, a "
                    "boolean or null",
                    field=f"{field}[{i}][{j}]",
                )
    columns = {
        name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)
    }
    return columns, len(rows)
