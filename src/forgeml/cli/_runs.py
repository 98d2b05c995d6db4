"""``forgeml runs list | show | artifacts | compare``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from forgeml.cli._common import (
    console,
    fmt_ms,
    fmt_value,
    open_context,
    open_workspace,
    print_json,
    require_positive,
    styled,
    table,
)
from forgeml.errors import InputError
from forgeml.store import RunRecord

app = typer.Typer(no_args_is_help=True, help="List, show and compare tracked runs.")

_STATUS_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "killed": "yellow",
    "lost": "magenta",
}


def _status(record: RunRecord) -> Text:
    value = record.status.value
    return styled(value, _STATUS_STYLE.get(value, "white"))


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
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            help="Columns to show, comma-separated: metrics.NAME, params.NAME, tags.NAME or "
            "a bare metric name (default: the metrics --filter and --order-by use, then others).",
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List runs, newest first (or by --order-by); the metrics filtered or sorted by are shown."""
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
    shown = _columns(page.items, columns, filter, order_by)
    headers = [key.removeprefix("metrics.") for key in shown]
    t = table("run", "experiment", "name", "status", "started", "duration", *headers)
    for r in page.items:
        t.add_row(
            r.run_id[:8],
            r.experiment,
            r.name,
            _status(r),
            fmt_ms(r.start_time),
            _duration(r),
            *(fmt_value(_cell(r, key)) for key in shown),
        )
    console.print(t)
    if page.next_page_token:
        console.print(f"(more runs: raise --limit above {limit})")


_REFERENCE = re.compile(r"\b(metrics|params|tags)\.([A-Za-z0-9_./-]+)")
_SHOWN_METRICS = 5


def _columns(
    records: Sequence[RunRecord],
    columns: str | None,
    filter: str | None,
    order_by: list[str] | None,
) -> list[str]:
    """The ``kind.key`` columns to show: those asked for, else the ones the filter and order
    name first, then the first other metrics."""
    if columns is not None:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        if not wanted:
            raise InputError("--columns names at least one column, e.g. metrics.test_roc_auc")
        return [c if _REFERENCE.fullmatch(c) else f"metrics.{c}" for c in wanted]
    named: list[str] = []
    for text in [filter or "", *(order_by or [])]:
        for kind, key in _REFERENCE.findall(text):
            if f"{kind}.{key}" not in named:
                named.append(f"{kind}.{key}")
    others: list[str] = []
    for record in records:
        others += [f"metrics.{k}" for k in record.metrics if f"metrics.{k}" not in others]
    rest = [k for k in others if k not in named]
    return named + rest[: max(0, _SHOWN_METRICS - len(named))]


def _cell(record: RunRecord, column: str) -> object:
    kind, _, key = column.partition(".")
    values = {"metrics": record.metrics, "params": record.params, "tags": record.tags}[kind]
    return values.get(key)


@app.command("artifacts")
def artifacts(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix (6+ characters).")],
    download: Annotated[
        Path | None,
        typer.Option("--download", "-d", help="Copy the files (verified) into this folder."),
    ] = None,
    path: Annotated[
        str | None, typer.Option("--path", help="Only this file or folder of the run.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a run's files (folders expanded), or download them with --download DIR."""
    from forgeml.workflows import download_run_artifacts, run_artifacts

    context = open_context(ctx)
    if download is not None:
        written = download_run_artifacts(context, run_id, download, path=path)
        if json:
            print_json([str(p) for p in written])
            return
        console.print(f"downloaded {len(written)} file(s) to {download}", markup=False)
        for p in written:
            console.print(f"  {p}", markup=False)
        return
    files = run_artifacts(context, run_id)
    if path is not None:
        prefix = path.strip("/")
        files = [f for f in files if f.path == prefix or f.path.startswith(prefix + "/")]
    if json:
        print_json([f.to_dict() for f in files])
        return
    if not files:
        console.print("No artifacts.")
        return
    t = table("path", "size", "digest")
    for f in files:
        t.add_row(f.path, f"{f.size:,}", f.digest[:16])
    console.print(t)


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
    console.print(styled(f"Run {record.run_id}", "bold"), _status(record))
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
