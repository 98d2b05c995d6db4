"""The OpenAPI descriptions of the request bodies (the handlers read raw bytes for speed, so
FastAPI cannot infer them) and the parsing of the small feedback body."""

from __future__ import annotations

from typing import Any

import orjson

from forgeml.serve._types import RequestError

__all__ = [
    "DESCRIPTION",
    "feedback",
    "mlflow_invocations",
    "native_predict",
    "openapi_body",
    "parse_feedback",
    "parse_feedback_document",
    "v2_infer",
]

DESCRIPTION = """Registered forgeml models behind three protocols: forgeml's own JSON
(`/v1/models/{name}/predict`), the MLflow scoring protocol (`/invocations`) and the Open
Inference Protocol v2 (`/v2/models/{name}/infer`). Requests are validated against the model's
signature; errors answer 4xx with `{"error": {"code", "message", "field"}}` (under `/v2`, the
protocol's `{"error": "<message>", "code", "field"}`)."""

_VALUE: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
}
_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
            "required": ["code", "message"],
        }
    },
}

# The Open Inference Protocol's error body: the message is the value of "error".
_V2_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "field": {"type": ["string", "null"]},
    },
    "required": ["error"],
}


def _body(schema: dict[str, Any], example: Any = None, media: str = "application/json") -> dict:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {
        "requestBody": {"required": True, "content": {media: content}},
        "responses": {
            "200": {"description": "Predictions", "content": {"application/json": {}}},
            "400": _error_response("The body is malformed"),
            "404": _error_response("The model is not served"),
            "413": _error_response("The body or the number of rows is too large"),
            "422": _error_response("The rows do not fit the model's signature"),
            "503": _error_response(
                "The model is loading, or overloaded: retry after Retry-After s"
            ),
        },
    }


def openapi_body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    """The OpenAPI description (``openapi_extra`` of ``operation``) of an operation that takes
    a JSON body described by ``schema`` and answers errors in forgeml's JSON shape."""
    return _body(schema, example)


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def native_predict() -> dict[str, Any]:
    """``/v1/models/{name}/predict``: records or columns."""
    schema = {
        "type": "object",
        "properties": {
            "records": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": _VALUE},
            },
            "columns": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": _VALUE},
            },
            "key": {"type": "string", "description": "Routing key: sticky version assignment"},
        },
    }
    example = {"records": [{"age": 39, "workclass": "State-gov", "hours-per-week": 40}]}
    return _body(schema, example)


def mlflow_invocations() -> dict[str, Any]:
    """``/invocations``: MLflow's four JSON forms (and CSV)."""
    schema = {
        "type": "object",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array", "items": _VALUE}},
                },
            },
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {"type": "array"},
            "inputs": {},
            "params": {"type": "object"},
        },
    }
    return _body(schema)


def v2_infer() -> dict[str, Any]:
    """``/v2/models/{name}/infer``: an inference request (JSON, or JSON plus binary tensors)."""
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": {"type": "object"},
            "data": {"type": "array"},
        },
    }
    schema = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": tensor},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    }
    out = _body(schema)
    for status, response in out["responses"].items():
        if status != "200":
            response["content"]["application/json"]["schema"] = _V2_ERROR
    return out


def feedback() -> dict[str, Any]:
    """``/v1/feedback``: labels for logged request ids."""
    item = {
        "type": "object",
        "required": ["request_id"],
        "properties": {
            "request_id": {"type": "string"},
            "label": _VALUE,
            "labels": {"type": "array", "items": _VALUE},
        },
    }
    schema = {
        "anyOf": [
            item,
            {
                "type": "object",
                "required": ["feedback"],
                "properties": {"feedback": {"type": "array", "items": item}},
            },
        ]
    }
    out = _body(schema, {"request_id": "3f2a...", "label": ">50K"})
    out["responses"]["200"] = {"description": "Labels stored", "content": {"application/json": {}}}
    return out


def parse_feedback(body: bytes) -> dict[str, list[Any]]:
    """Request id -> labels from a feedback body.

    Accepts ``{"request_id", "label"}``, ``{"request_id", "labels": [...]}`` or
    ``{"feedback": [those...]}``.

    Raises:
        RequestError: naming the field that is wrong.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"The body is not JSON: {e}", field="body") from None
    return parse_feedback_document(document)


def parse_feedback_document(document: Any) -> dict[str, list[Any]]:
    """``parse_feedback`` of a body already read as JSON (other keys are left alone).

    Raises:
        RequestError: naming the field that is wrong.
    """
    if not isinstance(document, dict):
        raise RequestError("The body is a JSON object", field="body")
    if "feedback" in document:
        items = document["feedback"]
        if not isinstance(items, list) or not items:
            raise RequestError("feedback is a non-empty list of objects", field="feedback")
        prefix = "feedback"
    else:
        items = [document]
        prefix = ""
    out: dict[str, list[Any]] = {}
    for i, item in enumerate(items):
        at = f"{prefix}[{i}]." if prefix else ""
        if not isinstance(item, dict):
            raise RequestError("Each feedback item is an object", field=f"{prefix}[{i}]")
        request_id = item.get("request_id")
        if not isinstance(request_id, str) or not request_id or len(request_id) > 36:
            raise RequestError(
                "request_id is the id a prediction answered with (text, at most 36 characters)",
                field=f"{at}request_id",
            )
        if ("label" in item) == ("labels" in item):
            raise RequestError(
                "Give exactly one of label (one row) or labels (one per row)", field=f"{at}label"
            )
        labels = item["labels"] if "labels" in item else [item["label"]]
        if not isinstance(labels, list) or not labels:
            raise RequestError("labels is a non-empty list", field=f"{at}labels")
        if any(isinstance(v, dict | list) for v in labels):
            raise RequestError("Each label is a single value", field=f"{at}labels")
        out[request_id] = labels
    return out
