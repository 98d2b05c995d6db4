"""forgeml's native protocol: ``POST /v1/models/{name}/predict`` and its neighbours (explain,
model listing, feedback)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from forgeml.errors import ForgeMLError
from forgeml.registry import Signature
from forgeml.serve import _schemas as docs
from forgeml.serve._codec import (
    from_column_lists,
    from_records,
    json_object,
    kind_of,
    quoted,
    short,
)
from forgeml.serve._http import (
    Operation,
    WireProtocol,
    answer,
    answer_raw,
    error_response,
    from_forgeml,
    guarded,
    json_response,
    operation,
    principal_name,
    read_body,
    send_response,
)
from forgeml.serve._service import PredictionService
from forgeml.serve._types import PRINCIPAL_SCOPE_KEY, Outputs, RequestError, Rows
from forgeml.store import acting

__all__ = ["NativeProtocol", "decode_native", "operations"]

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
    doc = json_object(body)
    for name in doc:
        if name not in _NATIVE_FIELDS:
            raise RequestError(
                f"Unknown field {quoted(name)}; the body has 'records' or 'columns', and "
                "optionally 'key'",
                field=short(name) or "body",
            )
    key = doc.get("key")
    if key is not None and type(key) is not str:
        raise RequestError(f"'key' is a string; got {kind_of(key)}", field="key")
    if ("records" in doc) == ("columns" in doc):
        raise RequestError(
            "The body has exactly one of 'records' (a list of row objects) or 'columns' (an "
            "object of column -> list of values)",
            field="body",
        )
    if "records" in doc:
        columns, n = from_records(doc["records"], "records", fill_missing=False)
    else:
        obj = doc["columns"]
        if type(obj) is not dict:
            raise RequestError(
                f"'columns' is an object of column -> list of values; got {kind_of(obj)}",
                field="columns",
            )
        columns, n = from_column_lists(obj, "columns")
    return Rows(columns=columns, n=n, key=key)


def native_body(outputs: Outputs) -> dict[str, Any]:
    """The native answer: request id, model, version, predictions (and probabilities)."""
    body: dict[str, Any] = {
        "request_id": outputs.request_id,
        "model": outputs.model,
        "version": outputs.version,
        "predictions": outputs.predictions,
    }
    if outputs.probabilities is not None:
        body["probabilities"] = outputs.probabilities
        body["classes"] = outputs.classes
    return body


class NativeProtocol(WireProtocol):
    """forgeml's JSON: records or columns in, predictions (and probabilities) out."""

    name = "native"

    def decode(
        self, body: bytes, headers: Mapping[str, str], signature: Signature | None
    ) -> tuple[Rows, Any]:
        return decode_native(body), None

    def encode(self, outputs: Outputs, context: Any) -> Response:
        return json_response(native_body(outputs))


_FLAGS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _probabilities(query: QueryParams) -> bool | Response:
    """The ``probabilities`` query parameter (default true), or the 422 answering a bad one."""
    given = query.get("probabilities")
    if given is None:
        return True
    flag = _FLAGS.get(given.lower())
    if flag is None:
        return error_response(
            RequestError(
                f"probabilities is true or false; got {str(given)[:20]!r}",
                field="probabilities",
                status=422,
            )
        )
    return flag


def operations(
    service: PredictionService,
    *,
    max_body: int,
    attach_feedback: Callable[[dict[str, list[Any]], str | None], None] | None,
) -> list[Operation]:
    """The native protocol's operations over ``service``.

    Args:
        service: what predicts.
        max_body: the largest body read, in bytes.
        attach_feedback: stores labels for logged request ids with who sent them, the
            principal an authentication middleware found (blocking; ``None`` when the server
            does not log predictions).
    """
    protocol = NativeProtocol()

    async def predict(request: Request) -> Response:
        probabilities = _probabilities(request.query_params)
        if isinstance(probabilities, Response):
            return probabilities
        name = request.path_params["name"]
        return await answer(
            protocol, service, request, name, max_body=max_body, probabilities=probabilities
        )

    async def predict_raw(
        scope: Scope, receive: Receive, send: Send, parameters: tuple[str, ...]
    ) -> None:
        # ``predict`` in front of the framework: the hot path of the server
        (name,) = parameters
        query = scope["query_string"]
        probabilities = _probabilities(QueryParams(query)) if query else True
        if isinstance(probabilities, Response):
            await send_response(probabilities, send)
            return
        await answer_raw(
            protocol,
            service,
            scope,
            receive,
            send,
            name,
            max_body=max_body,
            probabilities=probabilities,
        )

    async def explain(request: Request) -> Response:
        name = request.path_params["name"]

        async def handle() -> Response:
            service.entry(name)
            rows = decode_native(await read_body(request, max_body))
            if rows.key is None:
                rows.key = request.headers.get("x-routing-key")
            return json_response(await service.explain(name, rows))

        return await guarded(service, protocol, name, handle)

    async def list_models(request: Request) -> Response:
        return json_response({"models": [service.describe(n) for n in service.refs]})

    async def show_model(request: Request) -> Response:
        name = request.path_params["name"]

        async def handle() -> Response:
            if name not in service.entries:
                service.entry(name)  # 404 or 503
            return json_response(service.describe(name, signature=True))

        return await guarded(service, protocol, name, handle)

    async def feedback(request: Request) -> Response:
        async def handle() -> Response:
            labels = docs.parse_feedback(await read_body(request, max_body))
            if attach_feedback is None:
                raise RequestError(
                    "This server does not log predictions, so there is nothing to label",
                    field="request_id",
                    status=409,
                    code="conflict",
                )
            name = principal_name(request)
            kind = getattr(request.scope.get(PRINCIPAL_SCOPE_KEY), "kind", "user")
            origin = f"http:{request.client.host if request.client else 'unknown'}"

            def attach() -> None:
                # audited as the caller, from its address
                with acting(name, kind, origin) if name else contextlib.nullcontext():
                    attach_feedback(labels, name)

            try:
                await asyncio.get_running_loop().run_in_executor(None, attach)
            except ForgeMLError as e:
                raise from_forgeml(e, field="request_id") from None
            return json_response({"accepted": len(labels)})

        return await guarded(service, protocol, None, handle)

    async def doc_predict(name: str, probabilities: bool = True) -> None: ...

    async def doc_name(name: str) -> None: ...

    async def doc_none() -> None: ...

    tags = ["native"]
    return [
        operation(
            "/v1/models/{name}/predict",
            predict,
            "POST",
            doc=doc_predict,
            tags=tags,
            summary="Predict rows (records or columns)",
            openapi_extra=docs.native_predict(),
            raw=predict_raw,
        ),
        operation(
            "/v1/models/{name}/explain",
            explain,
            "POST",
            doc=doc_name,
            tags=tags,
            summary="Per-feature contributions (SHAP) for rows",
            openapi_extra=docs.native_predict(),
        ),
        operation(
            "/v1/models",
            list_models,
            "GET",
            doc=doc_none,
            tags=tags,
            summary="The served models and their routes",
        ),
        operation(
            "/v1/models/{name}",
            show_model,
            "GET",
            doc=doc_name,
            tags=tags,
            summary="One served model: route, signature",
        ),
        operation(
            "/v1/feedback",
            feedback,
            "POST",
            doc=doc_none,
            tags=tags,
            summary="Attach ground-truth labels to logged requests",
            openapi_extra=docs.feedback(),
        ),
    ]
