"""``POST /v1/feedback/corrections``: correct labels already sent, as a new audited revision.

The body is a feedback body (``{"request_id", "label" | "labels"}`` or ``{"feedback": [...]}``)
with an optional ``"reason"``. It acts through ``workflows.correct_feedback`` with the
request's principal and origin, so the revision and its audit entry name who corrected what,
from where, and why. Plain feedback (``POST /v1/feedback``) stays written once: a second one
for a labelled request is a 409 naming ``request_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from forgeml import workflows
from forgeml.errors import ForgeMLError
from forgeml.http._admin import context_of
from forgeml.serve import (
    Operation,
    RequestError,
    Serving,
    from_forgeml,
    guarded,
    json_response,
    openapi_body,
    operation,
    parse_feedback_document,
    read_body,
)

__all__ = ["feedback_operations", "parse_correction"]

_REASON_LENGTH = 1000


def parse_correction(body: bytes) -> tuple[dict[str, list[Any]], str | None]:
    """Request id -> corrected labels, and the reason, from a correction body.

    Raises:
        RequestError: naming the field that is wrong.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"The body is not JSON: {e}", field="body") from None
    reason = document.get("reason") if isinstance(document, dict) else None
    if reason is not None and (not isinstance(reason, str) or len(reason) > _REASON_LENGTH):
        raise RequestError(f"reason is text of at most {_REASON_LENGTH} characters", field="reason")
    # (the reason is a key the feedback reading leaves alone)
    return parse_feedback_document(document), reason


def correction() -> dict[str, Any]:
    """The OpenAPI body of a correction."""
    item = {
        "type": "object",
        "required": ["request_id"],
        "properties": {
            "request_id": {"type": "string"},
            "label": {},
            "labels": {"type": "array"},
            "reason": {"type": "string", "maxLength": _REASON_LENGTH},
        },
    }
    schema = {
        "anyOf": [
            item,
            {
                "type": "object",
                "required": ["feedback"],
                "properties": {
                    "feedback": {"type": "array", "items": item},
                    "reason": {"type": "string", "maxLength": _REASON_LENGTH},
                },
            },
        ]
    }
    return openapi_body(
        schema, {"request_id": "3f2a...", "label": "<=50K", "reason": "audited by hand"}
    )


def feedback_operations(serving: Serving) -> Sequence[Operation]:
    """The feedback correction operation of one server."""
    ws, max_body = serving.workspace, serving.options.max_body_bytes

    async def correct(request: Request) -> Response:
        async def handle() -> Response:
            context = context_of(ws, request)
            labels, reason = parse_correction(await read_body(request, max_body))
            try:
                revisions = await asyncio.get_running_loop().run_in_executor(
                    None,
                    lambda: workflows.correct_feedback(context, labels, reason=reason),
                )
            except ForgeMLError as e:
                raise from_forgeml(e, field="request_id") from None
            return json_response(
                {"corrected": len(revisions), "revisions": revisions, "by": context.principal.name}
            )

        return await guarded(serving.service, None, None, handle)

    async def doc_none() -> None: ...

    return [
        operation(
            "/v1/feedback/corrections",
            correct,
            "POST",
            doc=doc_none,
            tags=["native"],
            summary="Correct labels already sent (a new revision, audited with who and why)",
            openapi_extra=correction(),
        )
    ]
