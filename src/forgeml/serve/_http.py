"""What every wire protocol shares over HTTP: the ``WireProtocol`` interface (decode, encode,
errors), the one prediction handler that runs a protocol around ``PredictionService.predict``,
bounded body reading, request ids and JSON answers.

A route on the hot path may also be served without Starlette's routing, request and response
objects (``RawRoute``): the application matches it first, in front of the framework, and its
endpoint reads the ASGI scope through ``RawRequest``, which offers what the handlers here read
of a request (headers, the body, the scope) with the same meaning as Starlette's."""

from __future__ import annotations

import logging
import os
import re
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from forgeml._json import dumps
from forgeml.errors import ForgeMLError, http_status_for
from forgeml.registry import Signature
from forgeml.security import Principal
from forgeml.serve._metrics import ServerMetrics
from forgeml.serve._routing import Served
from forgeml.serve._service import PredictionService
from forgeml.serve._types import PRINCIPAL_SCOPE_KEY, Outputs, RequestError, Rows

__all__ = [
    "JSON",
    "PRINCIPAL_SCOPE_KEY",
    "Operation",
    "RawEndpoint",
    "RawRequest",
    "RawRoute",
    "WireProtocol",
    "answer",
    "answer_raw",
    "client_request_id",
    "error_response",
    "from_forgeml",
    "guarded",
    "int_parameter",
    "json_response",
    "operation",
    "parse_int_parameter",
    "principal_name",
    "read_body",
    "request_error",
    "request_id",
    "send_response",
]

_log = logging.getLogger("forgeml.serve")
JSON = "application/json"


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``content`` as a JSON answer (NumPy arrays and scalars as JSON values)."""
    body = dumps(content)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def error_response(e: RequestError) -> Response:
    """forgeml's JSON error body ``{"error": {"code", "message", "field"}}``."""
    return json_response(e.body(), e.status, e.headers or None)


def from_forgeml(e: ForgeMLError, field: str | None = None) -> RequestError:
    """A forgeml error as the HTTP refusal its code maps to."""
    return RequestError(e.message, field=field, status=http_status_for(e), code=e.code)


def request_error(metrics: ServerMetrics, name: str | None, e: Exception) -> RequestError:
    """Any exception of a handler as the refusal it answers, counted in the error metrics (an
    unexpected one is logged with its traceback and answered 500 without details)."""
    if isinstance(e, RequestError):
        error = e
    elif isinstance(e, ForgeMLError):
        error = from_forgeml(e)
    else:
        _log.exception("internal error answering a request")
        error = RequestError("Internal error; the server logged it", status=500, code="internal")
    metrics.errors.labels(name or "", str(error.status), error.code).inc()
    return error


_CLIENT_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,64}")


class _RandomIds:
    """Time-ordered 128-bit ids as 32 hex digits: the millisecond (48 bits), then 80 random
    bits cut from a pool of ``os.urandom`` bytes refilled every 256 ids (one system call per
    id would let a busy thread take the GIL from the event loop). The prediction log's unique
    index takes ids in about the order they come: a random key lands on a random page of an
    index that grows with the log, which made each insert dearer the longer a server ran."""

    def __init__(self, ids: int = 256, clock: Callable[[], int] = time.time_ns) -> None:
        self._size = _RANDOM_BYTES * ids
        self._pool = b""
        self._at = self._size
        self._clock = clock

    def __call__(self) -> str:
        at = self._at
        if at >= self._size:
            self._pool, at = os.urandom(self._size), 0
        self._at = at + _RANDOM_BYTES
        millisecond = (self._clock() // 1_000_000) & 0xFFFF_FFFF_FFFF
        return f"{millisecond:012x}{self._pool[at : at + _RANDOM_BYTES].hex()}"


_RANDOM_BYTES = 10


_new_id = _RandomIds()  # used on the event loop only


class RawRequest:
    """What the handlers read of a request, straight from its ASGI scope, for the routes served
    without Starlette's request object (``RawRoute``).

    Attributes:
        scope: the request's ASGI scope (what the handler writes there, the access log reads).
        headers: header name (lower case) -> the first value given for it, as Starlette's
            ``Headers.get`` answers.
    """

    __slots__ = ("_receive", "headers", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        headers: dict[str, str] = {}
        for name, value in reversed(scope["headers"]):  # the first of a repeated name wins
            headers[name.decode("latin-1")] = value.decode("latin-1")
        self.headers = headers

    async def read(self, limit: int) -> bytes:
        """The body as sent (still compressed if it is), at most ``limit`` bytes.

        Raises:
            RequestError: 413 beyond ``limit``.
            ClientDisconnect: the client left before the body was complete.
        """
        receive = self._receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if not message.get("more_body", False):
                    if not chunks:
                        return chunk  # type: ignore[no-any-return]
                    chunks.append(chunk)
                    return b"".join(chunks)
                chunks.append(chunk)
            elif kind == "http.disconnect":
                raise ClientDisconnect()


def request_id(request: Request | RawRequest) -> str:
    """A new random id for a request: the key it is logged under, unique even when a caller
    sends the same ``X-Request-ID`` twice (``client_request_id`` keeps the caller's)."""
    return _new_id()


def client_request_id(request: Request | RawRequest) -> str | None:
    """The caller's ``X-Request-ID`` when it is a token of at most 64 characters (letters,
    digits, ``._:/+=-``), else ``None``."""
    given = request.headers.get("x-request-id")
    if given and _CLIENT_ID.fullmatch(given):
        return given
    return None


def principal_name(request: Request | RawRequest) -> str | None:
    """The name of the principal an authentication middleware found, if any."""
    found = request.scope.get(PRINCIPAL_SCOPE_KEY)
    return found.name if isinstance(found, Principal) else None


async def read_body(request: Request | RawRequest, limit: int) -> bytes:
    """The request body, inflated when compressed, at most ``limit`` bytes.

    Raises:
        RequestError: 413 beyond ``limit``, 415 for an unknown ``Content-Encoding``, 400 for
            an empty body or a corrupt compressed one.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(
            f"The body holds {length} bytes; at most {limit}",
            field="body",
            status=413,
            code="too_large",
        )
    if isinstance(request, RawRequest):
        body = await request.read(limit)
    else:
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        body = b"".join(chunks)
    encoding = request.headers.get("content-encoding")
    if encoding:
        body = _decompress(body, encoding.strip().lower(), limit)
    if not body:
        raise RequestError("The request body is empty; expected JSON", field="body")
    return body


def _too_large(limit: int) -> RequestError:
    return RequestError(
        f"The body exceeds {limit} bytes", field="body", status=413, code="too_large"
    )


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body, inflated to at most ``limit`` bytes."""
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise RequestError(
            f"Content-Encoding {encoding!r} is not supported; use gzip or deflate",
            field="Content-Encoding",
            status=415,
            code="unsupported_media_type",
        )
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise RequestError(
            f"The body is not valid {encoding}: {e}", field="Content-Encoding"
        ) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RequestError(
            f"The inflated body exceeds {limit} bytes", field="body", status=413, code="too_large"
        )
    return out


class WireProtocol(ABC):
    """One wire protocol: how a request body becomes rows, and outputs and refusals become
    answers. Implementations are stateless.

    Attributes:
        name: as logged and counted (``native``, ``mlflow``, ``v2``).
        needs_signature: decoding needs the answering version's signature, so the version is
            chosen (by the ``X-Routing-Key`` header) before the body is read.
    """

    name: str
    needs_signature: bool = False

    @abstractmethod
    def decode(
        self, body: bytes, headers: Mapping[str, str], signature: Signature | None
    ) -> tuple[Rows, Any]:
        """The rows of a request and what the answer must remember of it (or ``None``)."""

    @abstractmethod
    def encode(self, outputs: Outputs, context: Any) -> Response:
        """The answer to a predicted request."""

    def error(self, error: RequestError) -> Response:
        """The answer to a refused request (forgeml's JSON error body by default)."""
        return error_response(error)


async def guarded(
    service: PredictionService,
    protocol: WireProtocol | None,
    name: str | None,
    handler: Callable[[], Awaitable[Response]],
) -> Response:
    """``handler()``, or the refusal of whatever it raised in ``protocol``'s error shape."""
    try:
        return await handler()
    except Exception as e:
        error = request_error(service.metrics, name, e)
        return error_response(error) if protocol is None else protocol.error(error)


async def answer(
    protocol: WireProtocol,
    service: PredictionService,
    request: Request | RawRequest,
    name: str,
    *,
    max_body: int,
    version: int | None = None,
    probabilities: bool = True,
) -> Response:
    """Answer one prediction request in ``protocol``: choose the version, read and decode the
    body, predict (``PredictionService.predict``), encode; every refusal in the protocol's
    error shape, logged with its error code (``PredictionService.log_failure``) when the model
    is served. The answer carries ``X-Request-ID``: the caller's, else the logged id."""
    started = time.perf_counter()
    rid = request_id(request)
    client_rid = client_request_id(request)
    chosen: list[Served | None] = [None]

    async def handle() -> Response:
        served: Served | None = None
        shadow: Served | None = None
        if version is not None:
            served = service.version(name, version)
        elif protocol.needs_signature:
            served, shadow = service.entry(name).choose(request.headers.get("x-routing-key"))
        else:
            service.entry(name)  # 404 or 503 before the body is read
        chosen[0] = served
        body = await read_body(request, max_body)
        rows, context = protocol.decode(
            body, request.headers, None if served is None else served.model.signature
        )
        if rows.key is None:
            rows.key = request.headers.get("x-routing-key")
        if served is None:
            served, shadow = service.entry(name).choose(rows.key)
            chosen[0] = served
        outputs = await service.predict(
            name,
            rows,
            protocol=protocol.name,
            request_id=rid,
            started=started,
            served=served,
            shadow=shadow,
            probabilities=probabilities,
            client_request_id=client_rid,
        )
        request.scope["forgeml"] = (name, outputs.version, rid)
        response = protocol.encode(outputs, context)
        _with_request_id(response, client_rid or rid)
        return response

    try:
        return await handle()
    except Exception as e:
        error = request_error(service.metrics, name, e)
        service.log_failure(
            name,
            chosen[0],
            request_id=rid,
            code=error.code,
            started=started,
            protocol=protocol.name,
            client_request_id=client_rid,
        )
        response = protocol.error(error)
        _with_request_id(response, client_rid or rid)
        return response


async def answer_raw(
    protocol: WireProtocol,
    service: PredictionService,
    scope: Scope,
    receive: Receive,
    send: Send,
    name: str,
    *,
    max_body: int,
    version: int | None = None,
    probabilities: bool = True,
) -> None:
    """``answer`` for a route served in front of the framework (``RawRoute``): the request
    read from its ASGI scope (``RawRequest``), the answer sent as Starlette would send it."""
    response = await answer(
        protocol,
        service,
        RawRequest(scope, receive),
        name,
        max_body=max_body,
        version=version,
        probabilities=probabilities,
    )
    await send_response(response, send)


def _with_request_id(response: Response, value: str) -> None:
    """``response.headers["x-request-id"] = value`` (the first such header replaced, any
    other removed, else one added), without building the headers' view."""
    raw = response.raw_headers
    header = (b"x-request-id", value.encode("latin-1"))
    for i, (name, _) in enumerate(raw):
        if name == b"x-request-id":
            raw[i] = header
            raw[i + 1 :] = [h for h in raw[i + 1 :] if h[0] != b"x-request-id"]
            return
    raw.append(header)


#: A route's endpoint without the framework: the ASGI call and the path's parameters, in order.
RawEndpoint = Callable[[Scope, Receive, Send, tuple[str, ...]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RawRoute:
    """A route the application serves in front of the framework: ``method`` on the paths of
    ``path``, a Starlette path whose parameters (``{name}``) each match one non-empty path
    segment, as Starlette's do. Any other request goes on to Starlette's router, which has the
    same route and answers exactly as ``endpoint`` does.

    Attributes:
        method: the HTTP method.
        path: the route's path, as Starlette's route declares it.
        endpoint: called with the values of the path's parameters, in order.
        segments: ``path`` split on ``/``, ``None`` where a parameter is.
    """

    method: str
    path: str
    endpoint: RawEndpoint
    segments: tuple[str | None, ...] = field(init=False)

    def __post_init__(self) -> None:
        segments: list[str | None] = []
        for segment in self.path.split("/"):
            if segment.startswith("{") and segment.endswith("}") and segment[1:-1].isidentifier():
                segments.append(None)
            elif "{" in segment or "}" in segment:
                raise ValueError(
                    f"a raw route's parameter is a whole path segment; got {self.path!r}"
                )
            else:
                segments.append(segment)
        object.__setattr__(self, "segments", tuple(segments))

    def match(self, method: str, parts: Sequence[str]) -> tuple[str, ...] | None:
        """The path parameters when ``method`` and the path split on ``/`` (``parts``) are
        this route's, else ``None``."""
        segments = self.segments
        if method != self.method or len(parts) != len(segments):
            return None
        parameters = []
        for part, segment in zip(parts, segments, strict=True):
            if segment is None:
                if not part:
                    return None
                parameters.append(part)
            elif part != segment:
                return None
        return tuple(parameters)


@dataclass(frozen=True, slots=True)
class Operation:
    """One HTTP operation: the Starlette route that serves it (registered once, in the app's
    router), the FastAPI route that only documents it in the OpenAPI description and, for a
    hot path, the same route served in front of the framework (``raw``)."""

    route: Route
    doc: APIRoute
    raw: RawRoute | None = None


async def send_response(response: Response, send: Send) -> None:
    """Send ``response`` as Starlette's ``Response.__call__`` does (it has no background task)."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def operation(
    path: str,
    endpoint: Callable[[Request], Awaitable[Response]],
    method: str,
    *,
    doc: Callable[..., Any],
    tags: list[str],
    summary: str,
    openapi_extra: dict[str, Any] | None = None,
    raw: RawEndpoint | None = None,
) -> Operation:
    """An operation served by ``endpoint`` and described by ``doc``'s signature (its path and
    query parameters, with types), ``summary`` and ``openapi_extra`` (bodies, answers).

    ``raw`` serves the same operation in front of the framework (``RawRoute``), given the
    path's parameters in order; it must answer every request as ``endpoint`` does."""
    documented = APIRoute(
        path,
        doc,
        methods=[method],
        tags=list(tags),
        summary=summary,
        openapi_extra=openapi_extra,
        response_class=Response,
    )
    fast = None if raw is None else RawRoute(method, path, raw)
    return Operation(Route(path, endpoint, methods=[method]), documented, fast)


def int_parameter(request: Request, name: str) -> int:
    """A path parameter that is an integer.

    Raises:
        RequestError: 422 naming the parameter.
    """
    return parse_int_parameter(request.path_params[name], name)


def parse_int_parameter(text: str, name: str) -> int:
    """The value of the path parameter ``name`` (given as ``text``) as an integer.

    Raises:
        RequestError: 422 naming the parameter.
    """
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 18:
        raise RequestError(
            f"{name}: Input should be a valid integer; got {text[:20]!r}",
            field=name,
            status=422,
        )
    return int(text)
