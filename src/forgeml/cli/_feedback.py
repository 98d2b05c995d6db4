"""``forgeml feedback correct | history``: correct labels already sent, read their revisions."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from forgeml import workflows
from forgeml._json import dumps_text
from forgeml.cli._common import console, fmt_ms, open_context, print_json, table
from forgeml.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Feedback labels: corrections and their history.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _labels(label: list[str] | None, labels_json: str | None) -> list[Any]:
    if (label is None) == (labels_json is None):
        raise InputError("Give the corrected labels with --label (repeated) or --labels-json")
    if label is not None:
        return list(label)
    try:
        values = orjson.loads(labels_json or "")
    except orjson.JSONDecodeError as e:
        raise InputError(f"--labels-json is a JSON list of labels: {e}") from None
    if not isinstance(values, list) or not values:
        raise InputError("--labels-json is a non-empty JSON list of labels, one per row")
    if any(isinstance(v, dict | list) for v in values):
        raise InputError("--labels-json: each label is a single value")
    return values


@app.command("correct")
def correct(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request id a prediction answered with.")],
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="A corrected label, as text (repeat: one per row)."),
    ] = None,
    labels_json: Annotated[
        str | None,
        typer.Option("--labels-json", help="The corrected labels as a JSON list: [1, 0]."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (audited).")] = None,
    json: JsonOption = False,
) -> None:
    """Correct a request's labels: a new revision, audited with who, when and why."""
    values = _labels(label, labels_json)
    context = open_context(ctx)
    revisions = workflows.correct_feedback(context, {request_id: values}, reason=reason)
    if json:
        print_json({"request_id": request_id, "revision": revisions[request_id]})
        return
    console.print(
        f"{request_id}: labels corrected (revision {revisions[request_id]})", markup=False
    )


@app.command("history")
def history(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request id.")],
    json: JsonOption = False,
) -> None:
    """Every labelling of a request, oldest first; the last is the one in effect."""
    revisions = workflows.label_history(open_context(ctx), request_id)
    if json:
        print_json([r.to_dict() for r in revisions])
        return
    t = table("revision", "labels", "when", "by", "reason")
    for r in revisions:
        t.add_row(
            str(r.revision),
            dumps_text(r.labels),
            fmt_ms(r.time_ms),
            r.created_by or "-",
            r.reason or "-",
        )
    console.print(t)
