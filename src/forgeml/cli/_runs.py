"""``forgeml runs list | show | compare``."""

from __future__ import annotations

from typing import Annotated

import typer

from forgeml.cli._common import (
    console,
    fmt_ms,
    fmt_value,
    open_workspace,
    print_json,
    require_positive,
    table,
)
from forgeml.store import RunRecord

app = typer.Typer(no_args_is_help=True, help="List, show and compare tracked runs.")

_STATUS_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "killed": "yellow",
    "lost": "magenta",
}


def _status(record: RunRecord) -> str:
    value = record.status.value
    return f"[{_STATUS_STYLE.get(value, 'white')}]{value}[/]"


def _duration(record: RunRecord) -> str:
    seconds = record.duration_s
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Only these experiments.")
    ] = None,
    filter: Annotated[
        str | None,
        typer.Option(
            "--filter", "-f", help="e.g. \"metrics.auc > 0.8 and params.model = 'lgbm'\"."
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.auc desc' (repeatable)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many runs.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first (or by --order-by)."""
    require_positive("limit", limit)
    workspace = open_workspace(ctx)
    page = workspace.runs.search_runs(
        experiments=experiment, filter=filter, order_by=order_by, max_results=limit
    )
    if json:
        print_json([r.to_dict() for r in page.items])
        return
    if not page.items:
        console.print("No runs.")
        return
    keys: list[str] = []
    for record in page.items:
        keys += [k for k in record.metrics if k not in keys]
    shown = keys[:5]
    t = table("run", "experiment", "name", "status", "started", "duration", *shown)
    for r in page.items:
        t.add_row(
            r.run_id[:8],
            r.experiment,
            r.name,
            _status(r),
            fmt_ms(r.start_time),
            _duration(r),
            *(fmt_value(r.metrics.get(k)) for k in shown),
        )
    console.print(t)
    if page.next_page_token:
        console.print(f"(more runs: raise --limit above {limit})")


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix (6+ characters).")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one run: its fields, parameters, metrics, tags and artifacts."""
    record = open_workspace(ctx).runs.get_run(run_id)
    if json:
        print_json(record.to_dict())
        return
    console.print(f"[bold]Run {record.run_id}[/]  {_status(record)}")
    fields = {
        "experiment": record.experiment,
        "name": record.name,
        "user": record.user,
        "started": fmt_ms(record.start_time),
        "ended": fmt_ms(record.end_time),
        "duration": _duration(record),
        "parent": record.parent_run_id,
        "code": (record.code_revision or "-") + (" (modified)" if record.code_dirty else ""),
        "python": record.environment.get("python"),
        "error": record.error,
    }
    for key, value in fields.items():
        if value not in (None, "-"):
            console.print(f"  {key:<11}{value}", markup=False)
    for title, values in (
        ("Parameters", record.params),
        ("Metrics", record.metrics),
        ("Tags", record.tags),
    ):
        if values:
            t = table("key", "value", title=title)
            for key, value in values.items():
                t.add_row(key, fmt_value(value))
            console.print(t)
    if record.artifacts:
        t = table("path", "kind", "size", "digest", title="Artifacts")
        for a in record.artifacts:
            t.add_row(a.path, a.kind, f"{a.size:,}", a.digest[:16])
        console.print(t)


@app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids or prefixes.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare runs side by side: parameters and metrics, differences marked."""
    from forgeml.errors import InputError

    if len(run_ids) < 2:
        raise InputError("runs compare needs at least two run ids")
    workspace = open_workspace(ctx)
    records = [workspace.runs.get_run(r) for r in run_ids]
    if json:
        print_json([r.to_dict() for r in records])
        return
    t = table("", *(f"{r.run_id[:8]} {r.name}" for r in records))
    t.add_row("status", *(_status(r) for r in records))
    t.add_row("duration", *(_duration(r) for r in records))
    for kind, getter in (("params", lambda r: r.params), ("metrics", lambda r: r.metrics)):
        keys: list[str] = []
        for r in records:
            keys += [k for k in getter(r) if k not in keys]
        for key in keys:
            cells = [fmt_value(getter(r).get(key)) for r in records]
            mark = "*" if len(set(cells)) > 1 else " "
            t.add_row(f"{mark}{kind}.{key}", *cells)
    console.print(t)
    console.print("* differs between runs", style="dim")
