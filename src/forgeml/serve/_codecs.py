"""Request and response codecs of the server's three protocols.

Pure functions, no web framework: a request body (bytes) becomes ``Rows``, ``Outputs`` become a
response body. Decoders only check what the protocol itself defines (structure, shapes, tensor
datatypes); the types of the values against the model's signature are the validator's job.
Every malformed request raises ``RequestError`` naming the field at fault, never another
exception.

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

import csv
import io
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from forgeml.serve._types import Outputs, RequestError, Rows

if TYPE_CHECKING:
    from forgeml.registry import Signature

__all__ = [
    "V2Request",
    "decode_mlflow",
    "decode_native",
    "decode_v2",
    "encode_mlflow",
    "encode_v2",
    "v2_header_length",
    "v2_model_metadata",
    "v2_server_metadata",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
BINARY_TYPE = "application/octet-stream"
PREDICT = "predict"
PREDICT_PROBA = "predict_proba"

_SCALARS = frozenset({str, int, float, bool, type(None)})
_SHOWN = 60  # characters of a name shown in a message


# -- shared helpers ---------------------------------------------------------------------------


def _q(name: Any) -> str:
    """A name as shown in messages and fields: quoted and cut short."""
    return repr(str(name)[:_SHOWN])


def _short(name: Any) -> str:
    return str(name)[:_SHOWN]


def _kind(value: Any) -> str:
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


def _load_json(body: bytes | memoryview, field: str = "body", hint: str = "") -> Any:
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


def _json_object(body: bytes | memoryview, field: str = "body", hint: str = "") -> dict[str, Any]:
    doc = _load_json(body, field, hint)
    if type(doc) is not dict:
        raise RequestError(f"The request body is a JSON object; got {_kind(doc)}", field=field)
    return doc


def _first_duplicate(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _check_scalars(values: list[Any], field: str) -> None:
    for i, value in enumerate(values):
        if type(value) not in _SCALARS:
            raise RequestError(
                f"{field}[{i}] is {_kind(value)}; a value is a number, a string, a boolean or null",
                field=f"{field}[{i}]",
            )


def _no_rows(field: str) -> RequestError:
    return RequestError(f"{field} holds no rows; send at least one row", field=field)


def _from_records(records: Any, field: str, *, fill_missing: bool) -> tuple[dict[str, list], int]:
    """Columns from a list of row objects.

    With ``fill_missing``, a column absent from some rows is ``None`` there (pandas'
    behaviour); without, it is an error naming the row and the column.
    """
    if type(records) is not list:
        raise RequestError(f"{field} is a list of row objects; got {_kind(records)}", field=field)
    if not records:
        raise _no_rows(field)
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(records):
        if type(row) is not dict:
            raise RequestError(
                f"{field}[{i}] is a row object (column -> value); got {_kind(row)}",
                field=f"{field}[{i}]",
            )
        for name, value in row.items():
            if type(value) not in _SCALARS:
                raise RequestError(
                    f"Column {_q(name)} of {field}[{i}] is {_kind(value)}; a value is a number, "
                    "a string, a boolean or null",
                    field=f"{field}[{i}].{_short(name)}",
                )
            column = columns.get(name)
            if column is None:
                if i and not fill_missing:
                    raise RequestError(
                        f"{field}[0] lacks column {_q(name)} that {field}[{i}] has; every row "
                        "has the same columns (give missing values as null)",
                        field=f"{field}[0].{_short(name)}",
                    )
                column = columns[name] = [None] * i
            column.append(value)
        if len(row) != len(columns):
            for name, column in columns.items():
                if len(column) == i:
                    if not fill_missing:
                        raise RequestError(
                            f"{field}[{i}] lacks column {_q(name)} that other rows have; every "
                            "row has the same columns (give missing values as null)",
                            field=f"{field}[{i}].{_short(name)}",
                        )
                    column.append(None)
    return columns, len(records)


def _from_column_lists(obj: dict[str, Any], field: str) -> tuple[dict[str, list], int]:
    """Columns from an object of column -> list of values."""
    if not obj:
        raise RequestError(f"{field} names no columns", field=field)
    n = -1
    first = ""
    for name, values in obj.items():
        where = f"{field}.{_short(name)}"
        if type(values) is not list:
            raise RequestError(
                f"Column {_q(name)} of {field} is a list of values; got {_kind(values)}",
                field=where,
            )
        if n < 0:
            n, first = len(values), name
        elif len(values) != n:
            raise RequestError(
                f"Column {_q(name)} of {field} has {len(values)} values and column {_q(first)} "
                f"has {n}; every column has the same number of rows",
                field=where,
            )
        _check_scalars(values, where)
    if n == 0:
        raise _no_rows(field)
    return dict(obj), n


def _from_matrix(rows: list[Any], names: Sequence[str], field: str) -> tuple[dict[str, list], int]:
    """Columns from a list of rows (lists), mapped by position onto ``names``."""
    if not rows:
        raise _no_rows(field)
    k = len(names)
    if k == 0:
        raise RequestError(
            f"{field} gives values by position but no column names are known; name the columns",
            field=field,
        )
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise RequestError(
                f"{field}[{i}] is a row (a list of {k} values); got {_kind(row)}",
                field=f"{field}[{i}]",
            )
        if len(row) != k:
            raise RequestError(
                f"{field}[{i}] has {len(row)} values; every row has {k}, one per column",
                field=f"{field}[{i}]",
            )
        for j, value in enumerate(row):
            if type(value) not in _SCALARS:
                raise RequestError(
                    f"{field}[{i}][{j}] is {_kind(value)}; a value is a number, a string, a "
                    "boolean or null",
                    field=f"{field}[{i}][{j}]",
                )
    columns = {
        name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)
    }
    return columns, len(rows)


# -- forgeml native ---------------------------------------------------------------------------

_NATIVE_FIELDS = ("records", "columns", "key")


def decode_native(body: bytes) -> Rows:
    """Decode forgeml's own JSON request.

    The body is ``{"records": [{column: value, ...}, ...]}`` or
    ``{"columns": {column: [value, ...], ...}}`` (exactly one of them), with an optional
    ``"key"``: the routing key of sticky canary and A/B assignment. Every record has the same
    columns; missing values are explicit ``null``.

    Args:
        body: the request body.

    Returns:
        The rows, with ``key`` set when the request gave one.

    Raises:
        RequestError: (400) the body is not such a document, has no rows, or rows or columns of
            different lengths.
    """
    doc = _json_object(body)
    for name in doc:
        if name not in _NATIVE_FIELDS:
            raise RequestError(
                f"Unknown field {_q(name)}; the body has 'records' or 'columns', and optionally "
                "'key'",
                field=_short(name) or "body",
            )
    key = doc.get("key")
    if key is not None and type(key) is not str:
        raise RequestError(f"'key' is a string; got {_kind(key)}", field="key")
    if ("records" in doc) == ("columns" in doc):
        raise RequestError(
            "The body has exactly one of 'records' (a list of row objects) or 'columns' (an "
            "object of column -> list of values)",
            field="body",
        )
    if "records" in doc:
        columns, n = _from_records(doc["records"], "records", fill_missing=False)
    else:
        obj = doc["columns"]
        if type(obj) is not dict:
            raise RequestError(
                f"'columns' is an object of column -> list of values; got {_kind(obj)}",
                field="columns",
            )
        columns, n = _from_column_lists(obj, "columns")
    return Rows(columns=columns, n=n, key=key)


# -- MLflow scoring protocol ------------------------------------------------------------------

_MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_SPLIT_FIELDS = frozenset({"columns", "data", "index"})
# pandas.read_csv's default missing-value markers (what `mlflow models serve` reads as NaN).
_CSV_NA = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)


def _media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, refusing what MLflow's server refuses."""
    if not content_type or not content_type.strip():
        raise RequestError(
            "The Content-Type header is missing; send application/json or text/csv",
            field="Content-Type",
            status=415,
            code="unsupported_media_type",
        )
    mime, *parameters = (part.strip() for part in content_type.split(";"))
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        key = key.strip().lower()
        if key == "charset":
            if value.strip().strip('"').lower() != "utf-8":
                raise RequestError(
                    "The scoring server reads UTF-8 only; send charset=utf-8",
                    field="Content-Type",
                    status=415,
                    code="unsupported_media_type",
                )
        elif key:
            raise RequestError(
                f"Unrecognized content type parameter {_q(key)}; the scoring protocol takes "
                "application/json or text/csv (with an optional charset=utf-8)",
                field="Content-Type",
                status=415,
                code="unsupported_media_type",
            )
    return mime.lower()


def decode_mlflow(body: bytes, content_type: str | None, names: Sequence[str]) -> Rows:
    """Decode a request of MLflow's scoring protocol (``POST /invocations``).

    JSON (``application/json``) has exactly one of:

    - ``dataframe_split``: ``{"columns": [...], "data": [[...], ...], "index": [...]}``;
      without ``columns`` the values are mapped by position onto ``names``;
    - ``dataframe_records``: a list of row objects (a key absent from a row is missing there);
    - ``instances`` or ``inputs``: a list of row objects (the same keys in every row), an
      object of column -> list of values, an object of column -> value (one row), or a list of
      rows (lists) mapped by position onto ``names``.

    An optional ``params`` is accepted and ignored, as are other top-level keys (as MLflow
    does). ``text/csv`` is CSV with a header row; the values are strings, and the fields pandas
    reads as missing are ``None``.

    Args:
        body: the request body.
        content_type: the request's Content-Type header (``charset=utf-8`` allowed).
        names: the model's input columns, in order, for values given by position.

    Returns:
        The rows.

    Raises:
        RequestError: 415 for a missing or unsupported content type; 400 for a malformed body.
    """
    mime = _media_type(content_type)
    if mime == CSV_TYPE:
        return _decode_csv(body)
    if mime != JSON_TYPE:
        raise RequestError(
            f"Unsupported content type {_q(mime)}; the scoring protocol takes application/json "
            "or text/csv",
            field="Content-Type",
            status=415,
            code="unsupported_media_type",
        )
    doc = _json_object(body)
    present = [f for f in _MLFLOW_FORMATS if f in doc]
    if len(present) != 1:
        got = ", ".join(_q(k) for k in list(doc)[:10]) or "no fields"
        raise RequestError(
            "The body has exactly one of the input fields 'dataframe_split', "
            f"'dataframe_records', 'instances' or 'inputs'; got {got}",
            field="body",
        )
    name = present[0]
    value = doc[name]
    if name == "dataframe_split":
        columns, n = _mlflow_split(value, names)
    elif name == "dataframe_records":
        columns, n = _from_records(value, name, fill_missing=True)
    else:
        columns, n = _mlflow_tensor_input(value, name, names)
    return Rows(columns=columns, n=n)


def _mlflow_split(split: Any, names: Sequence[str]) -> tuple[dict[str, list], int]:
    field = "dataframe_split"
    if type(split) is not dict:
        raise RequestError(
            f"{field} is an object with 'data' and optionally 'columns' and 'index'; got "
            f"{_kind(split)}",
            field=field,
        )
    for key in split:
        if key not in _SPLIT_FIELDS:
            raise RequestError(
                f"Unknown field {_q(key)} in {field}; it has 'data' and optionally 'columns' "
                "and 'index'",
                field=f"{field}.{_short(key)}",
            )
    if "data" not in split:
        raise RequestError(f"{field} has no 'data'", field=f"{field}.data")
    data = split["data"]
    columns = split.get("columns")
    if columns is None:
        columns = list(names)
    else:
        where = f"{field}.columns"
        if type(columns) is not list:
            raise RequestError(
                f"{where} is a list of column names; got {_kind(columns)}", field=where
            )
        for j, column in enumerate(columns):
            if type(column) is not str:
                raise RequestError(
                    f"{where}[{j}] is a column name (a string); got {_kind(column)}",
                    field=f"{where}[{j}]",
                )
        twice = _first_duplicate(columns)
        if twice is not None:
            raise RequestError(f"{where} names column {_q(twice)} twice", field=where)
    where = f"{field}.data"
    if type(data) is not list:
        raise RequestError(f"{where} is a list of rows; got {_kind(data)}", field=where)
    if len(columns) == 1 and data and all(type(v) is not list for v in data):
        _check_scalars(data, where)  # one column: pandas takes a flat list as its values
        result: tuple[dict[str, list], int] = ({columns[0]: list(data)}, len(data))
    else:
        result = _from_matrix(data, columns, where)
    index = split.get("index")
    if index is not None and (type(index) is not list or len(index) != result[1]):
        raise RequestError(
            f"{field}.index is a list of one label per row ({result[1]}); got "
            f"{_kind(index) if type(index) is not list else f'{len(index)} labels'}",
            field=f"{field}.index",
        )
    return result


def _mlflow_tensor_input(
    value: Any, field: str, names: Sequence[str]
) -> tuple[dict[str, list], int]:
    if type(value) is dict:
        if value and all(type(v) in _SCALARS for v in value.values()):
            return {k: [v] for k, v in value.items()}, 1  # one row, as MLflow reads it
        return _from_column_lists(value, field)
    if type(value) is not list:
        raise RequestError(
            f"{field} is a list of rows or an object of column -> values; got {_kind(value)}",
            field=field,
        )
    if not value:
        raise _no_rows(field)
    if type(value[0]) is dict:
        # MLflow turns `instances` into columns (rows lacking a key break it) and gives
        # `inputs` to pandas (which fills the gap with NaN).
        return _from_records(value, field, fill_missing=field == "inputs")
    if type(value[0]) is not list and len(names) == 1:
        _check_scalars(value, field)  # one column: a flat list holds its values
        return {names[0]: list(value)}, len(value)
    return _from_matrix(value, names, field)


def _decode_csv(body: bytes) -> Rows:
    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RequestError(
            f"The CSV body is not UTF-8 text (byte {e.start})", field="body"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [row for row in reader if row]  # pandas skips blank lines
    except csv.Error as e:
        raise RequestError(
            f"The body is not valid CSV: {e} (line {reader.line_num})", field="body"
        ) from None
    if not rows:
        raise RequestError("The CSV body is empty; send a header row and rows", field="body")
    header = [name or f"Unnamed: {j}" for j, name in enumerate(rows[0])]
    twice = _first_duplicate(header)
    if twice is not None:
        raise RequestError(f"The CSV header names column {_q(twice)} twice", field="body")
    data = rows[1:]
    if not data:
        raise RequestError("The CSV body has a header but no rows", field="body")
    k = len(header)
    for i, row in enumerate(data):
        if len(row) != k:
            raise RequestError(
                f"Row {i + 1} of the CSV has {len(row)} fields; the header has {k}",
                field=f"body.row[{i}]",
            )
    columns = {
        name: [None if v in _CSV_NA else v for v in values]
        for name, values in zip(header, zip(*data, strict=True), strict=True)
    }
    return Rows(columns=columns, n=len(data))


def encode_mlflow(out: Outputs) -> bytes:
    """Encode predictions as MLflow's scoring server answers: ``{"predictions": [...]}``.

    The list is what MLflow gives for a pyfunc model returning a 1-D array (its ``tolist()``),
    except that NaN is written as ``null`` (valid JSON) where MLflow writes a bare ``NaN``.
    Answer with content type ``application/json``.

    Args:
        out: the model's outputs.

    Returns:
        The response body.
    """
    return orjson.dumps({"predictions": out.predictions}, option=orjson.OPT_SERIALIZE_NUMPY)


# -- Open Inference Protocol v2 ---------------------------------------------------------------

# datatype -> little-endian numpy dtype (BYTES has none: length-prefixed elements)
_V2_DTYPES: dict[str, str | None] = {
    "BOOL": "|b1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "BYTES": None,
}
_V2_INT_RANGES = {
    name: (int(np.iinfo(code).min), int(np.iinfo(code).max))
    for name, code in _V2_DTYPES.items()
    if code is not None and code[1] in "iu"
}
_INPUT_DATATYPES = {
    "numeric": "FP64",
    "integer": "INT64",
    "boolean": "BOOL",
    "categorical": "BYTES",
    "datetime": "BYTES",
    "text": "BYTES",
    "identifier": "BYTES",
}
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(slots=True)
class V2Request:
    """What a v2 inference request asks of the response, besides its rows.

    Attributes:
        id: the request's ``id``, echoed in the response; ``None`` when not given.
        outputs: the output names asked for, in order; ``None`` for every output.
        binary_outputs: the outputs to answer in Triton's binary tensor form (resolved from
            each requested output's ``parameters.binary_data`` and the request's
            ``parameters.binary_data_output``).
    """

    id: str | None = None
    outputs: list[str] | None = None
    binary_outputs: set[str] = field(default_factory=set)


def v2_header_length(value: str | None) -> int | None:
    """Read the ``Inference-Header-Content-Length`` HTTP header.

    Args:
        value: the header's value, or ``None`` when the request has none.

    Returns:
        The length in bytes of the JSON header at the start of the body, or ``None``.

    Raises:
        RequestError: (400) the value is not a non-negative integer.
    """
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise RequestError(
            f"The {HEADER_LENGTH} header is the length in bytes of the JSON header; got "
            f"{value[:20]!r}",
            field=HEADER_LENGTH,
        )
    return int(text)


def _parameters(spec: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``parameters`` object of a tensor or requested output (empty when absent)."""
    parameters = spec.get("parameters")
    if parameters is None:
        return {}
    if type(parameters) is not dict:
        raise RequestError(
            f"{where}.parameters is an object; got {_kind(parameters)}",
            field=f"{where}.parameters",
        )
    return parameters


@dataclass(slots=True)
class _Tensor:
    name: str
    shape: list[int]
    values: list[Any]
    field: str


def decode_v2(
    body: bytes, header_length: int | None, signature: Signature
) -> tuple[Rows, V2Request]:
    """Decode an Open Inference Protocol v2 inference request (KServe, Triton, MLServer).

    Two layouts of the inputs are accepted:

    - one 2-D input of shape ``[n, k]``, ``k`` the number of the model's columns, whose name is
      not a column name: its rows are the rows, mapped onto the columns in order (KServe's
      form; a ``BYTES`` tensor can hold mixed rows, numbers as text);
    - one input per column, named after it, of shape ``[n]`` or ``[n, 1]`` (MLServer's pandas
      form; ``parameters.content_type`` is ignored). Columns without an input are left out,
      for the validator to report.

    Tensor data is the JSON ``data`` (flat or nested, row-major) or, with Triton's binary
    extension, ``parameters.binary_data_size`` bytes of the body after the JSON header, in input
    order: numbers little-endian, ``BYTES`` elements as a 4-byte little-endian length and
    UTF-8 text. Datatypes: BOOL, UINT8-64, INT8-64, FP16, FP32, FP64, BYTES.

    Args:
        body: the request body.
        header_length: the ``Inference-Header-Content-Length`` header (see
            ``v2_header_length``), or ``None`` when the whole body is JSON.
        signature: the model's signature (column order and names, classes).

    Returns:
        The rows and what the response must hold (id, outputs, binary outputs).

    Raises:
        RequestError: (400) a malformed request, naming the field (``inputs[1].shape``...).
    """
    view = memoryview(body)
    if header_length is None:
        header, tail = view, view[:0]
    elif type(header_length) is not int or not 0 <= header_length <= len(view):
        raise RequestError(
            f"The {HEADER_LENGTH} header is the length of the JSON header, at most the body's "
            f"{len(view)} bytes",
            field=HEADER_LENGTH,
        )
    else:
        header, tail = view[:header_length], view[header_length:]
    hint = (
        ""
        if header_length is not None
        else f"; binary tensor data needs the {HEADER_LENGTH} header"
    )
    doc = _json_object(header, hint=hint)

    request_id = doc.get("id")
    if request_id is not None and type(request_id) is not str:
        raise RequestError(f"'id' is a string; got {_kind(request_id)}", field="id")
    parameters = doc.get("parameters")
    if parameters is None:
        parameters = {}
    elif type(parameters) is not dict:
        raise RequestError(
            f"'parameters' is an object; got {_kind(parameters)}", field="parameters"
        )
    binary_default = parameters.get("binary_data_output", False)
    if type(binary_default) is not bool:
        raise RequestError(
            f"parameters.binary_data_output is a boolean; got {_kind(binary_default)}",
            field="parameters.binary_data_output",
        )

    inputs = doc.get("inputs")
    if type(inputs) is not list or not inputs:
        raise RequestError(
            "'inputs' is a non-empty list of input tensors"
            + ("" if inputs is None else f"; got {_kind(inputs) if inputs else 'an empty list'}"),
            field="inputs",
        )
    offset = 0
    tensors = []
    for i, spec in enumerate(inputs):
        tensor, offset = _v2_input(spec, f"inputs[{i}]", tail, offset, header_length)
        tensors.append(tensor)
    if offset != len(tail):
        raise RequestError(
            f"{len(tail) - offset} bytes follow the JSON header beyond the inputs' "
            "binary_data_size total",
            field="body",
        )

    columns, n = _v2_columns(tensors, signature)
    request = _v2_outputs(doc.get("outputs"), binary_default, signature)
    request.id = request_id
    return Rows(columns=columns, n=n), request


def _v2_input(
    spec: Any, where: str, tail: memoryview, offset: int, header_length: int | None
) -> tuple[_Tensor, int]:
    if type(spec) is not dict:
        raise RequestError(f"{where} is an input tensor object; got {_kind(spec)}", field=where)
    name = spec.get("name")
    if type(name) is not str:
        raise RequestError(
            f"{where}.name is the input's name (a string); got {_kind(name)}",
            field=f"{where}.name",
        )
    datatype = spec.get("datatype")
    if type(datatype) is not str or datatype not in _V2_DTYPES:
        shown = _q(datatype) if type(datatype) is str else _kind(datatype)
        raise RequestError(
            f"{where}.datatype is one of {', '.join(_V2_DTYPES)}; got {shown}",
            field=f"{where}.datatype",
        )
    shape = spec.get("shape")
    if type(shape) is not list or any(type(d) is not int or d < 0 for d in shape):
        raise RequestError(
            f"{where}.shape is a list of non-negative integers", field=f"{where}.shape"
        )
    count = math.prod(shape)
    parameters = _parameters(spec, where)
    if "shared_memory_region" in parameters:
        raise RequestError(
            "Shared-memory inputs are not supported; send the data in the request",
            field=f"{where}.parameters.shared_memory_region",
        )
    size = parameters.get("binary_data_size")
    if size is None:
        if "data" not in spec:
            raise RequestError(
                f"{where} has neither 'data' nor parameters.binary_data_size",
                field=f"{where}.data",
            )
        values = _flatten(spec["data"], f"{where}.data")
        if len(values) != count:
            raise RequestError(
                f"{where}.data has {len(values)} values; shape {shape} holds {count}",
                field=f"{where}.data",
            )
        values = _v2_json_values(values, datatype, f"{where}.data")
    else:
        size_field = f"{where}.parameters.binary_data_size"
        if type(size) is not int or size < 0:
            raise RequestError(
                f"{size_field} is a non-negative integer; got {_kind(size)}", field=size_field
            )
        if "data" in spec:
            raise RequestError(
                f"{where} has both 'data' and parameters.binary_data_size; give one",
                field=f"{where}.data",
            )
        if offset + size > len(tail):
            hint = f" (the {HEADER_LENGTH} header is missing)" if header_length is None else ""
            raise RequestError(
                f"{size_field} is {size} bytes but only {len(tail) - offset} bytes of binary "
                f"data are left{hint}",
                field=size_field,
            )
        chunk = bytes(tail[offset : offset + size])
        offset += size
        values = _v2_binary_values(chunk, datatype, count, shape, where)
    return _Tensor(name=name, shape=shape, values=values, field=where), offset


def _flatten(data: Any, field: str) -> list[Any]:
    """The elements of nested lists in row-major order (iterative: no recursion limit)."""
    if type(data) is not list:
        raise RequestError(f"{field} is a list of values; got {_kind(data)}", field=field)
    if not any(type(v) is list for v in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if type(value) is list:
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _v2_json_values(values: list[Any], datatype: str, field: str) -> list[Any]:
    def bad(i: int, expected: str) -> RequestError:
        return RequestError(
            f"{field}[{i}] is {_kind(values[i])}; a {datatype} tensor holds {expected}",
            field=f"{field}[{i}]",
        )

    if datatype == "BYTES":
        for i, value in enumerate(values):
            if type(value) not in _SCALARS:
                raise bad(i, "strings (or numbers, booleans, null)")
        return values
    if datatype == "BOOL":
        for i, value in enumerate(values):
            if type(value) is not bool:
                raise bad(i, "booleans")
        return values
    if datatype.startswith("FP"):
        floats = []
        for i, value in enumerate(values):
            kind = type(value)
            if kind is float:
                floats.append(value)
            elif kind is int:
                floats.append(float(value))
            elif value is None:
                floats.append(math.nan)
            else:
                raise bad(i, "numbers (null for missing)")
        return floats
    low, high = _V2_INT_RANGES[datatype]
    for i, value in enumerate(values):
        if type(value) is not int or not low <= value <= high:
            raise bad(i, f"integers from {low} to {high}")
    return values


def _v2_binary_values(
    chunk: bytes, datatype: str, count: int, shape: list[int], where: str
) -> list[Any]:
    size_field = f"{where}.parameters.binary_data_size"
    code = _V2_DTYPES[datatype]
    if code is not None:
        itemsize = np.dtype(code).itemsize
        if len(chunk) != count * itemsize:
            raise RequestError(
                f"{size_field} is {len(chunk)} bytes; shape {shape} of {datatype} takes "
                f"{count * itemsize}",
                field=size_field,
            )
        if datatype == "BOOL":
            return (np.frombuffer(chunk, dtype=np.uint8) != 0).tolist()
        return np.frombuffer(chunk, dtype=np.dtype(code)).tolist()  # type: ignore[no-any-return]
    values: list[Any] = []
    position, end = 0, len(chunk)
    while position < end:
        if position + 4 > end or len(values) >= count:
            break
        (length,) = struct.unpack_from("<I", chunk, position)
        position += 4
        if position + length > end:
            position = -1
            break
        try:
            values.append(chunk[position : position + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(
                f"Element {len(values)} of {where} is not UTF-8 text", field=f"{where}.data"
            ) from None
        position += length
    if position != end or len(values) != count:
        raise RequestError(
            f"The {size_field} bytes of {where} are not {count} BYTES elements (each a 4-byte "
            "little-endian length, then the bytes)",
            field=size_field,
        )
    return values


def _v2_columns(tensors: list[_Tensor], signature: Signature) -> tuple[dict[str, list], int]:
    names = signature.names
    known = set(names)
    if len(tensors) == 1 and tensors[0].name not in known and len(tensors[0].shape) == 2:
        tensor = tensors[0]
        n, k = tensor.shape
        if k != len(names) or k == 0:
            raise RequestError(
                f"A single 2-D input has one column per model input: shape [n, {len(names)}]; "
                f"got {tensor.shape}",
                field=f"{tensor.field}.shape",
            )
        if n == 0:
            raise _no_rows(tensor.field)
        values = tensor.values
        return {name: values[j::k] for j, name in enumerate(names)}, n
    columns: dict[str, list[Any]] = {}
    n = -1
    for tensor in tensors:
        if tensor.name not in known:
            raise RequestError(
                f"Unknown input {_q(tensor.name)}; the model takes {len(names)} inputs named "
                f"after its columns ({', '.join(_q(c) for c in names[:10])}"
                f"{', ...' if len(names) > 10 else ''}), or one 2-D input of shape "
                f"[n, {len(names)}]",
                field=f"{tensor.field}.name",
            )
        if tensor.name in columns:
            raise RequestError(
                f"Input {_q(tensor.name)} is given twice", field=f"{tensor.field}.name"
            )
        shape = tensor.shape
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise RequestError(
                f"Input {_q(tensor.name)} is one column: shape [n] or [n, 1]; got {shape}",
                field=f"{tensor.field}.shape",
            )
        if n < 0:
            n = shape[0]
        elif shape[0] != n:
            raise RequestError(
                f"Input {_q(tensor.name)} has {shape[0]} rows and {tensors[0].field} has {n}; "
                "every input has the same number of rows",
                field=f"{tensor.field}.shape",
            )
        columns[tensor.name] = tensor.values
    if n == 0:
        raise _no_rows("inputs")
    return columns, n


def _v2_outputs(outputs: Any, binary_default: bool, signature: Signature) -> V2Request:
    available = [PREDICT, PREDICT_PROBA] if signature.classes else [PREDICT]
    if outputs is None or outputs == []:
        return V2Request(binary_outputs=set(available) if binary_default else set())
    if type(outputs) is not list:
        raise RequestError(
            f"'outputs' is a list of requested outputs; got {_kind(outputs)}", field="outputs"
        )
    names: list[str] = []
    binary: set[str] = set()
    for j, spec in enumerate(outputs):
        where = f"outputs[{j}]"
        if type(spec) is not dict:
            raise RequestError(
                f"{where} is a requested output object; got {_kind(spec)}", field=where
            )
        name = spec.get("name")
        if type(name) is not str or name not in available:
            shown = _q(name) if type(name) is str else _kind(name)
            raise RequestError(
                f"Unknown output {shown}; the model gives {' and '.join(map(repr, available))}",
                field=f"{where}.name",
            )
        if name in names:
            raise RequestError(f"Output {name!r} is requested twice", field=f"{where}.name")
        parameters = _parameters(spec, where)
        for unsupported in ("classification", "shared_memory_region"):
            if parameters.get(unsupported) not in (None, 0):
                raise RequestError(
                    f"{where}.parameters.{unsupported} is not supported",
                    field=f"{where}.parameters.{unsupported}",
                )
        flag = parameters.get("binary_data", binary_default)
        if type(flag) is not bool:
            raise RequestError(
                f"{where}.parameters.binary_data is a boolean; got {_kind(flag)}",
                field=f"{where}.parameters.binary_data",
            )
        names.append(name)
        if flag:
            binary.add(name)
    return V2Request(outputs=names, binary_outputs=binary)


def _label_datatype(labels: Sequence[Any]) -> str:
    """The v2 datatype of a list of labels or values: BOOL, INT64, FP64 or BYTES."""
    kinds = set()
    missing = False
    for value in labels:
        if value is None:
            missing = True
        elif isinstance(value, bool | np.bool_):
            kinds.add("bool")
        elif isinstance(value, int | np.integer):
            kinds.add("int" if _INT64[0] <= int(value) <= _INT64[1] else "text")
        elif isinstance(value, float | np.floating):
            kinds.add("float")
        else:
            kinds.add("text")
    if not kinds:
        return "FP64"
    if kinds == {"bool"}:
        return "BYTES" if missing else "BOOL"
    if kinds == {"int"} and not missing:
        return "INT64"
    if kinds <= {"int", "float"}:
        return "FP64"
    return "BYTES"


def _v2_output(
    name: str, datatype: str, shape: list[int], values: Sequence[Any], binary: bool
) -> tuple[dict[str, Any], bytes]:
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
    if datatype == "BYTES":
        texts = [v if v is None or isinstance(v, str) else str(v) for v in values]
        if not binary:
            tensor["data"] = texts
            return tensor, b""
        parts = []
        for text in texts:
            encoded = b"" if text is None else text.encode("utf-8")
            parts.append(struct.pack("<I", len(encoded)))
            parts.append(encoded)
        raw = b"".join(parts)
    else:
        array = np.asarray(values, dtype=_V2_DTYPES[datatype])
        if not binary:
            tensor["data"] = array.tolist()
            return tensor, b""
        raw = array.tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


def encode_v2(out: Outputs, request: V2Request) -> tuple[bytes, dict[str, str]]:
    """Encode an Open Inference Protocol v2 inference response.

    Outputs: ``predict`` (shape ``[n]``; BYTES for text labels, INT64 for integer labels, BOOL
    for booleans, FP64 for numbers) and, for classifiers, ``predict_proba`` (shape ``[n, c]``,
    FP64, columns in ``out.classes`` order), or only those the request asked for. Outputs in
    ``request.binary_outputs`` are sent in Triton's binary tensor form (JSON header, then the
    raw tensors; the ``Inference-Header-Content-Length`` header gives the JSON's length);
    others as JSON ``data`` (flat, row-major). A missing FP64 value is NaN (``null`` in JSON);
    a ``None`` label is ``null`` in JSON BYTES and an empty string in binary BYTES.

    Args:
        out: the model's outputs.
        request: what ``decode_v2`` read from the request.

    Returns:
        The body and the headers to answer with: ``Content-Type`` (``application/json``, or
        ``application/octet-stream`` when any output is binary) and, for a binary answer,
        ``Inference-Header-Content-Length``.

    Raises:
        ValueError: ``predict_proba`` is asked for and ``out`` has no probabilities, or their
            rows have different lengths.
    """
    n = len(out.predictions)
    names = request.outputs
    if names is None:
        names = [PREDICT] if out.probabilities is None else [PREDICT, PREDICT_PROBA]
    tensors = []
    raws = []
    for name in names:
        binary = name in request.binary_outputs
        if name == PREDICT:
            datatype = _label_datatype(out.predictions)
            tensor, raw = _v2_output(name, datatype, [n], out.predictions, binary)
        elif name == PREDICT_PROBA:
            if out.probabilities is None:
                raise ValueError("predict_proba was requested but the outputs have none")
            c = len(out.classes) if out.classes is not None else len(out.probabilities[0])
            if any(len(row) != c for row in out.probabilities) or len(out.probabilities) != n:
                raise ValueError(f"The probabilities are not {n} rows of {c} classes")
            flat = [p for row in out.probabilities for p in row]
            tensor, raw = _v2_output(name, "FP64", [n, c], flat, binary)
        else:
            raise ValueError(f"Unknown output {name!r}")
        tensors.append(tensor)
        if binary:
            raws.append(raw)
    response: dict[str, Any] = {"model_name": out.model, "model_version": str(out.version)}
    response_id = request.id if request.id is not None else out.request_id or None
    if response_id is not None:
        response["id"] = response_id
    response["outputs"] = tensors
    header = orjson.dumps(response)
    if not raws:
        return header, {"Content-Type": JSON_TYPE}
    return header + b"".join(raws), {
        "Content-Type": BINARY_TYPE,
        HEADER_LENGTH: str(len(header)),
    }


def v2_model_metadata(name: str, versions: Sequence[int], signature: Signature) -> dict[str, Any]:
    """The v2 model metadata (``GET /v2/models/{name}``).

    Inputs are one tensor per column (MLServer's pandas form), shape ``[-1]``: FP64 for
    numeric columns, INT64 integer, BOOL boolean, BYTES the others. Outputs: ``predict`` and,
    for classifiers, ``predict_proba`` ``[-1, c]``; ``parameters`` gives the task and, for
    classifiers, the class labels in ``predict_proba``'s column order (a JSON-encoded list, as
    parameter values are scalars).

    Args:
        name: the model's name.
        versions: the versions served.
        signature: the model's signature.

    Returns:
        A JSON-ready dictionary.
    """
    inputs = [
        {"name": c.name, "datatype": _INPUT_DATATYPES.get(c.kind, "BYTES"), "shape": [-1]}
        for c in signature.inputs
    ]
    classes = signature.classes
    if classes:
        outputs = [
            {"name": PREDICT, "datatype": _label_datatype(classes), "shape": [-1]},
            {"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, len(classes)]},
        ]
    else:
        outputs = [{"name": PREDICT, "datatype": "FP64", "shape": [-1]}]
    metadata: dict[str, Any] = {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": "forgeml",
        "inputs": inputs,
        "outputs": outputs,
    }
    parameters: dict[str, Any] = {}
    if signature.task:
        parameters["task"] = signature.task
    if classes:
        parameters["classes"] = orjson.dumps(list(classes)).decode()
    if parameters:
        metadata["parameters"] = parameters
    return metadata


def v2_server_metadata(version: str) -> dict[str, Any]:
    """The v2 server metadata (``GET /v2``).

    Args:
        version: forgeml's version.

    Returns:
        ``{"name": "forgeml", "version": ..., "extensions": ["binary_tensor_data"]}``.
    """
    return {"name": "forgeml", "version": version, "extensions": ["binary_tensor_data"]}
