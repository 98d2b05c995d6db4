"""The MLflow scoring protocol: ``POST /invocations`` (JSON and CSV).

Both invocation routes are also served in front of the framework (``RawRoute``): they are
what users moving from MLflow call, and answer as the Starlette routes do."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from forgeml._json import dumps
from forgeml._version import __version__
from forgeml.registry import Signature
from forgeml.serve import _schemas as docs
from forgeml.serve._codec import (
    CSV_TYPE,
    JSON_TYPE,
    SCALARS,
    check_scalars,
    first_duplicate,
    from_column_lists,
    from_matrix,
    from_records,
    json_object,
    kind_of,
    no_rows,
    quoted,
    short,
)
from forgeml.serve._http import (
    JSON,
    Operation,
    WireProtocol,
    answer,
    answer_raw,
    json_response,
    operation,
)
from forgeml.serve._service import PredictionService
from forgeml.serve._types import Outputs, RequestError, Rows

__all__ = ["MLflowProtocol", "decode_mlflow", "encode_mlflow", "operations"]

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
                f"Unrecognized content type parameter {quoted(key)}; the scoring protocol takes "
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
            f"Unsupported content type {quoted(mime)}; the scoring protocol takes application/json "
            "or text/csv",
            field="Content-Type",
            status=415,
            code="unsupported_media_type",
        )
    doc = json_object(body)
    present = [f for f in _MLFLOW_FORMATS if f in doc]
    if len(present) != 1:
        got = ", ".join(quoted(k) for k in list(doc)[:10]) or "no fields"
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
        columns, n = from_records(value, name, fill_missing=True)
    else:
        columns, n = _mlflow_tensor_input(value, name, names)
    return Rows(columns=columns, n=n)


def _mlflow_split(split: Any, names: Sequence[str]) -> tuple[dict[str, list], int]:
    field = "dataframe_split"
    if type(split) is not dict:
        raise RequestError(
            f"{field} is an object with 'data' and optionally 'columns' and 'index'; got "
            f"{kind_of(split)}",
            field=field,
        )
    for key in split:
        if key not in _SPLIT_FIELDS:
            raise RequestError(
                f"Unknown field {quoted(key)} in {field}; it has 'data' and optionally 'columns' "
                "and 'index'",
                field=f"{field}.{short(key)}",
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
                f"{where} is a list of column names; got {kind_of(columns)}", field=where
            )
        for j, column in enumerate(columns):
            if type(column) is not str:
                raise RequestError(
                    f"{where}[{j}] is a column name (a string); got {kind_of(column)}",
                    field=f"{where}[{j}]",
                )
        twice = first_duplicate(columns)
        if twice is not None:
            raise RequestError(f"{where} names column {quoted(twice)} twice", field=where)
    where = f"{field}.data"
    if type(data) is not list:
        raise RequestError(f"{where} is a list of rows; got {kind_of(data)}", field=where)
    if len(columns) == 1 and data and all(type(v) is not list for v in data):
        check_scalars(data, where)  # one column: pandas takes a flat list as its values
        result: tuple[dict[str, list], int] = ({columns[0]: list(data)}, len(data))
    else:
        result = from_matrix(data, columns, where)
    index = split.get("index")
    if index is not None and (type(index) is not list or len(index) != result[1]):
        raise RequestError(
            f"{field}.index is a list of one label per row ({result[1]}); got "
            f"{kind_of(index) if type(index) is not list else f'{len(index)} labels'}",
            field=f"{field}.index",
        )
    return result


def _mlflow_tensor_input(
    value: Any, field: str, names: Sequence[str]
) -> tuple[dict[str, list], int]:
    if type(value) is dict:
        if value and all(type(v) in SCALARS for v in value.values()):
            return {k: [v] for k, v in value.items()}, 1  # one row, as MLflow reads it
        return from_column_lists(value, field)
    if type(value) is not list:
        raise RequestError(
            f"{field} is a list of rows or an object of column -> values; got {kind_of(value)}",
            field=field,
        )
    if not value:
        raise no_rows(field)
    if type(value[0]) is dict:
        # MLflow turns `instances` into columns (rows lacking a key break it) and gives
        # `inputs` to pandas (which fills the gap with NaN).
        return from_records(value, field, fill_missing=field == "inputs")
    if type(value[0]) is not list and len(names) == 1:
        check_scalars(value, field)  # one column: a flat list holds its values
        return {names[0]: list(value)}, len(value)
    return from_matrix(value, names, field)


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
    twice = first_duplicate(header)
    if twice is not None:
        raise RequestError(f"The CSV header names column {quoted(twice)} twice", field="body")
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
    return dumps({"predictions": out.predictions})


class MLflowProtocol(WireProtocol):
    """MLflow's scoring protocol: ``dataframe_split``, ``dataframe_records``, ``instances``,
    ``inputs`` or CSV in, ``{"predictions": [...]}`` out (labels only, as MLflow answers)."""

    name = "mlflow"
    needs_signature = True  # a matrix of values is mapped onto the signature's columns

    def decode(
        self, body: bytes, headers: Mapping[str, str], signature: Signature | None
    ) -> tuple[Rows, Any]:
        assert signature is not None
        return decode_mlflow(body, headers.get("content-type"), signature.names), None

    def encode(self, outputs: Outputs, context: Any) -> Response:
        return Response(encode_mlflow(outputs), media_type=JSON)


def operations(service: PredictionService, *, max_body: int) -> list[Operation]:
    """The MLflow scoring protocol's operations over ``service``: ``/invocations`` answers for
    the first served model, ``/v1/models/{name}/invocations`` for any."""
    protocol = MLflowProtocol()
    first = next(iter(service.refs))

    async def invocations(request: Request) -> Response:
        return await answer(
            protocol, service, request, first, max_body=max_body, probabilities=False
        )

    async def invocations_named(request: Request) -> Response:
        name = request.path_params["name"]
        return await answer(
            protocol, service, request, name, max_body=max_body, probabilities=False
        )

    async def invocations_raw(
        scope: Scope, receive: Receive, send: Send, parameters: tuple[str, ...]
    ) -> None:
        # both invocation routes in front of the framework: what MLflow's users call
        name = parameters[0] if parameters else first
        await answer_raw(
            protocol, service, scope, receive, send, name, max_body=max_body, probabilities=False
        )

    async def ping(request: Request) -> Response:
        ready = service.ready
        return json_response({"status": "ready" if ready else "loading"}, 200 if ready else 503)

    async def version(request: Request) -> Response:
        return Response(__version__, media_type="text/plain")

    async def doc_none() -> None: ...

    async def doc_name(name: str) -> None: ...

    tags = ["mlflow"]
    return [
        operation(
            "/invocations",
            invocations,
            "POST",
            doc=doc_none,
            tags=tags,
            summary=f"MLflow scoring protocol (model {first})",
            openapi_extra=docs.mlflow_invocations(),
            raw=invocations_raw,
        ),
        operation(
            "/v1/models/{name}/invocations",
            invocations_named,
            "POST",
            doc=doc_name,
            tags=tags,
            summary="MLflow scoring protocol for one of several served models",
            openapi_extra=docs.mlflow_invocations(),
            raw=invocations_raw,
        ),
        operation("/ping", ping, "GET", doc=doc_none, tags=tags, summary="MLflow health check"),
        operation(
            "/version",
            version,
            "GET",
            doc=doc_none,
            tags=tags,
            summary="Server version",
            openapi_extra={
                "responses": {
                    "200": {
                        "description": "Successful Response",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                }
            },
        ),
    ]
