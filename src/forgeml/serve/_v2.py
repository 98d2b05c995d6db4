"""The Open Inference Protocol v2 (KServe, Triton, MLServer): responses, metadata, routes.

Requests are decoded in ``_v2_decode``. Errors are answered in the protocol's shape,
``{"error": "<message>"}``, with forgeml's ``code`` and ``field`` beside it. Both inference
routes are also served in front of the framework (``RawRoute``), as the Starlette routes
answer them.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from forgeml._json import dumps, dumps_text
from forgeml._version import __version__
from forgeml.registry import Signature
from forgeml.serve import _schemas as docs
from forgeml.serve._codec import BINARY_TYPE, HEADER_LENGTH, JSON_TYPE, PREDICT, PREDICT_PROBA
from forgeml.serve._http import (
    JSON,
    Operation,
    WireProtocol,
    answer,
    answer_raw,
    guarded,
    int_parameter,
    json_response,
    operation,
    parse_int_parameter,
    send_response,
)
from forgeml.serve._service import PredictionService
from forgeml.serve._types import Outputs, RequestError, Rows
from forgeml.serve._v2_decode import (
    INPUT_DATATYPES,
    INT64_RANGE,
    V2_DTYPES,
    V2Request,
    decode_v2,
    v2_header_length,
)

__all__ = [
    "V2Protocol",
    "encode_v2",
    "operations",
    "v2_error_body",
    "v2_model_metadata",
    "v2_server_metadata",
]


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
            kinds.add("int" if INT64_RANGE[0] <= int(value) <= INT64_RANGE[1] else "text")
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
        array = np.asarray(values, dtype=V2_DTYPES[datatype])
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
    header = dumps(response)
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
        {"name": c.name, "datatype": INPUT_DATATYPES.get(c.kind, "BYTES"), "shape": [-1]}
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
        parameters["classes"] = dumps_text(list(classes))
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


def v2_error_body(error: RequestError) -> dict[str, Any]:
    """The protocol's error body: ``{"error": "<message>"}`` (its clients read ``error`` as the
    message), with forgeml's code and field beside it."""
    return {"error": error.message, "code": error.code, "field": error.field}


class V2Protocol(WireProtocol):
    """Open Inference Protocol v2 inference: JSON tensors or Triton's binary extension."""

    name = "v2"
    needs_signature = True  # tensors are typed and mapped onto the signature's columns

    def decode(
        self, body: bytes, headers: Mapping[str, str], signature: Signature | None
    ) -> tuple[Rows, Any]:
        assert signature is not None
        header_length = v2_header_length(headers.get("inference-header-content-length"))
        return decode_v2(body, header_length, signature)

    def encode(self, outputs: Outputs, context: Any) -> Response:
        body, headers = encode_v2(outputs, context)
        media = headers.pop("content-type", None) or headers.pop("Content-Type", None)
        return Response(body, media_type=media or JSON, headers=headers)

    def error(self, error: RequestError) -> Response:
        return json_response(v2_error_body(error), error.status, error.headers or None)


def operations(service: PredictionService, *, max_body: int) -> list[Operation]:
    """The v2 protocol's operations over ``service`` (health, metadata, inference)."""
    protocol = V2Protocol()

    async def server_metadata(request: Request) -> Response:
        return json_response(v2_server_metadata(__version__))

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        return json_response({"ready": service.ready}, 200 if service.ready else 503)

    def version_of(request: Request) -> int | None:
        return int_parameter(request, "version") if "version" in request.path_params else None

    async def metadata(request: Request) -> Response:
        name = request.path_params["name"]

        async def handle() -> Response:
            version = version_of(request)
            entry = service.entry(name)
            served = entry.primary if version is None else service.version(name, version)
            return json_response(
                v2_model_metadata(name, sorted(entry.versions), served.model.signature)
            )

        return await guarded(service, protocol, name, handle)

    async def model_ready(request: Request) -> Response:
        name = request.path_params["name"]

        async def handle() -> Response:
            version = version_of(request)
            if version is None:
                service.entry(name)
            else:
                service.version(name, version)
            return json_response({"name": name, "ready": True})

        return await guarded(service, protocol, name, handle)

    async def infer(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            version = version_of(request)
        except RequestError as e:
            return protocol.error(e)
        return await answer(protocol, service, request, name, max_body=max_body, version=version)

    async def infer_raw(
        scope: Scope, receive: Receive, send: Send, parameters: tuple[str, ...]
    ) -> None:
        # both inference routes in front of the framework: what KServe's and Triton's clients call
        name = parameters[0]
        try:
            version = parse_int_parameter(parameters[1], "version") if parameters[1:] else None
        except RequestError as e:
            await send_response(protocol.error(e), send)
            return
        await answer_raw(
            protocol, service, scope, receive, send, name, max_body=max_body, version=version
        )

    async def doc_none() -> None: ...

    async def doc_name(name: str) -> None: ...

    async def doc_version(name: str, version: int) -> None: ...

    tags = ["v2"]
    model, one = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"
    return [
        operation(
            "/v2", server_metadata, "GET", doc=doc_none, tags=tags, summary="Server metadata"
        ),
        operation(
            "/v2/health/live", live, "GET", doc=doc_none, tags=tags, summary="Server liveness"
        ),
        operation(
            "/v2/health/ready", ready, "GET", doc=doc_none, tags=tags, summary="Server readiness"
        ),
        operation(model, metadata, "GET", doc=doc_name, tags=tags, summary="Model metadata"),
        operation(one, metadata, "GET", doc=doc_version, tags=tags, summary="Version metadata"),
        operation(
            f"{model}/ready", model_ready, "GET", doc=doc_name, tags=tags, summary="Model readiness"
        ),
        operation(
            f"{one}/ready",
            model_ready,
            "GET",
            doc=doc_version,
            tags=tags,
            summary="Version readiness",
        ),
        operation(
            f"{model}/infer",
            infer,
            "POST",
            doc=doc_name,
            tags=tags,
            summary="Inference (Open Inference Protocol v2)",
            openapi_extra=docs.v2_infer(),
            raw=infer_raw,
        ),
        operation(
            f"{one}/infer",
            infer,
            "POST",
            doc=doc_version,
            tags=tags,
            summary="Inference on one version (Open Inference Protocol v2)",
            openapi_extra=docs.v2_infer(),
            raw=infer_raw,
        ),
    ]
