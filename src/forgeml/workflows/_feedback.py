"""Use cases over feedback labels: correct labels already sent, read a request's labelling.

Labels are written once (``POST /v1/feedback``; sending them again is refused). A correction
is a new revision of the request's labels, recorded with who, when, why and the labels before
and after in the audit log; the latest revision is what monitoring and the loop read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forgeml.store import LabelRevision
from forgeml.workflows._context import Context, use_case

__all__ = ["correct_feedback", "label_history"]


@use_case("feedback.correct")
def correct_feedback(
    ctx: Context,
    labels: Mapping[str, Sequence[Any]],
    *,
    reason: str | None = None,
) -> dict[str, int]:
    """Correct the labels of requests that already have labels, as ``ctx.principal``.

    Args:
        ctx: where and who (recorded with each revision and in the audit entry).
        labels: request id -> its corrected labels, one per predicted row.
        reason: why (at most 1,000 characters), kept with the revision and audited.

    Returns:
        request id -> its new revision (2 for a first correction).

    Raises:
        NotFoundError: a request id has no logged prediction.
        ConflictError: a request has no labels yet (send them as feedback first).
        InputError: a label count differs from the request's rows, or a bad reason.
        PermissionDeniedError: the principal's role may not correct labels.
    """
    return ctx.workspace.predlog.correct_feedback(labels, user=ctx.principal.name, reason=reason)


@use_case("read")
def label_history(ctx: Context, request_id: str) -> list[LabelRevision]:
    """Every labelling of a request, oldest first; the last is the effective labels.

    Raises:
        NotFoundError: the request has no labels.
    """
    from forgeml.errors import NotFoundError

    history = ctx.workspace.predlog.feedback_history(request_id)
    if not history:
        raise NotFoundError(f"Request {request_id!r} has no labels")
    return history
