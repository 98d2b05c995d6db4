"""``forgeml loop history``: the continuous-training loop of a registered model."""

from __future__ import annotations

from typing import Annotated

import typer

from forgeml.cli._common import (
    console,
    fmt_ms,
    open_workspace,
    print_json,
    require_positive,
    styled,
    table,
)

app = typer.Typer(no_args_is_help=True, help="Continuous training: run, watch, history.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model.")],
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="Only the most recent decisions.")
    ] = None,
    steps: Annotated[bool, typer.Option("--steps", help="Also list the recorded steps.")] = False,
    json: JsonOption = False,
) -> None:
    """Every decision the loop made on NAME (passed or failed, with its reasons) and its steps."""
    ws = open_workspace(ctx)
    ws.models.get_model(name)  # NotFoundError names the model
    if limit is not None:
        require_positive("limit", limit)
    decisions = ws.loop.decisions(name, limit=limit)
    recorded = ws.loop.steps(name)
    if json:
        print_json(
            {
                "model": name,
                "decisions": [d.to_dict() for d in decisions],
                "steps": [s.to_dict() for s in recorded],
            }
        )
        return
    if not decisions and not recorded:
        console.print(f"No loop history for {name}.", markup=False)
        return
    t = table("#", "when", "cycle", "decision", "", "why", title=f"loop decisions of {name}")
    for d in decisions:
        mark = styled("pass", "green") if d.passed else styled("fail", "red")
        t.add_row(
            str(d.decision_id),
            fmt_ms(d.created_at),
            "-" if d.cycle is None else str(d.cycle),
            f"{d.kind}: {d.name}",
            mark,
            d.summary,
        )
    console.print(t)
    if steps:
        s = table("step", "state", "attempts", "started", "finished", "holder", title="steps")
        for step in recorded:
            s.add_row(
                step.key,
                step.state + (f": {step.error}" if step.error else ""),
                str(step.attempts),
                fmt_ms(step.started_at),
                fmt_ms(step.finished_at),
                step.holder,
            )
        console.print(s)
