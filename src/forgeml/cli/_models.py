"""``forgeml models list | show | promote | retire | archive | restore | history | compare |
lineage | card | import-mlflow``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from forgeml.cli._common import (
    console,
    fmt_ms,
    fmt_value,
    open_context,
    open_workspace,
    print_json,
    styled,
    table,
)
from forgeml.errors import InputError
from forgeml.refs import parse_version

app = typer.Typer(no_args_is_help=True, help="Registered models: versions, aliases, cards.")

_STATUS_STYLE = {"active": "green", "archived": "yellow", "retired": "red"}
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (kept in the history).")
]


def _status(value: str) -> Text:
    return styled(value, _STATUS_STYLE.get(value, "white"))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@app.command("list")
def list_models(ctx: typer.Context, json: JsonOption = False) -> None:
    """List registered models."""
    from forgeml import registry

    models = registry.list_models(workspace=open_workspace(ctx))
    if json:
        print_json([m.to_dict() for m in models])
        return
    if not models:
        console.print("No models.")
        return
    t = table("model", "versions", "aliases", "updated", "created by")
    for m in models:
        aliases = ", ".join(f"{a}={v}" for a, v in m.aliases.items()) or "-"
        t.add_row(m.name, str(m.latest_version), aliases, fmt_ms(m.updated_at), m.created_by or "-")
    console.print(t)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (the model) or NAME@VERSION|ALIAS|latest.")],
    all_statuses: Annotated[
        bool, typer.Option("--all", help="Also archived and retired versions.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Show a model and its versions, or one version."""
    from forgeml import registry

    ws = open_workspace(ctx)
    if "@" not in ref:
        model = registry.get_model(ref, workspace=ws)
        versions = registry.list_versions(ref, all_statuses=all_statuses, workspace=ws)
        if json:
            print_json({**model.to_dict(), "versions": [v.to_dict() for v in versions]})
            return
        console.print(styled(model.name, "bold"), f" created {fmt_ms(model.created_at)}")
        t = table("version", "status", "aliases", "flavor", "task", "metrics", "created", "by")
        for v in versions:
            shown = ", ".join(f"{k}={fmt_value(x)}" for k, x in list(v.metrics.items())[:3])
            t.add_row(
                str(v.version),
                _status(v.status.value),
                ", ".join(v.aliases) or "-",
                v.flavor,
                v.task or "-",
                shown or "-",
                fmt_ms(v.created_at),
                v.created_by or "-",
            )
        console.print(t if versions else "No versions to show (try --all).")
        return
    record = registry.get_version(ref, workspace=ws)
    if json:
        print_json(record.to_dict())
        return
    t = table("field", "value")
    for key, value in record.to_dict().items():
        if key == "metrics":
            value = ", ".join(f"{k}={fmt_value(x)}" for k, x in value.items()) or "-"
        elif key == "aliases":
            value = ", ".join(value) or "-"
        elif key == "created_at":
            value = fmt_ms(value)
        elif key == "bundle_size":
            value = _size(value)
        t.add_row(key, "-" if value is None else str(value))
    console.print(t)


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[str, typer.Argument(help="The version number to point the alias at.")],
    alias: Annotated[str, typer.Option("--alias", "-a", help="The alias.")] = "production",
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Point NAME@ALIAS at VERSION (atomically; who, when and why are recorded)."""
    from forgeml import workflows

    event = workflows.promote(open_context(ctx), name, _number(version), alias=alias, reason=reason)
    if json:
        print_json(event.to_dict())
        return
    before = f" (was {event.from_version})" if event.from_version is not None else ""
    console.print(f"{name}@{alias} -> {event.to_version}{before}", markup=False)


@app.command("threshold")
def threshold(
    ctx: typer.Context,
    model_ref: Annotated[str, typer.Argument(help="The version: NAME@VERSION or NAME@ALIAS.")],
    value: Annotated[
        str, typer.Argument(help="Predict the positive class at this probability or above.")
    ],
    reason: ReasonOption = None,
    json: JsonOption = False,
) -> None:
    """Register a copy of a binary classifier with another decision threshold.

    Bundles never change, so the threshold makes a new version (same model file, lineage and
    metrics); promote it to serve it.
    """
    from forgeml import registry

    context = open_context(ctx)
    record = registry.set_threshold(
        model_ref, value, reason=reason, workspace=context.workspace, actor=context.principal
    )
    if json:
        print_json(record.to_dict())
        return
    console.print(
        f"{record.ref}: decision threshold {float(value):g} (from {model_ref}); "
        f"promote it with: forgeml models promote {record.name} {record.version}",
        markup=False,
    )


def _number(version: str) -> int:
    return parse_version(version, what="VERSION")


def _status_command(status: str) -> Any:
    def command(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="The model.")],
        version: Annotated[str, typer.Argument(help="The version number.")],
        reason: ReasonOption = None,
        json: JsonOption = False,
    ) -> None:
        from forgeml import workflows

        record = workflows.change_status(
            open_context(ctx), name, _number(version), status, reason=reason
        )
        if json:
            print_json(record.to_dict())
            return
        console.print(f"{record.ref} is {record.status.value}", markup=False)

    return command


app.command("archive", help="Archive a version (kept and loadable, hidden from lists).")(
    _status_command("archived")
)
app.command("restore", help="Make an archived version active again.")(_status_command("active"))
app.command("retire", help="Retire a version for good: never served or promoted again.")(
    _status_command("retired")
)


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model.")],
    alias: Annotated[str | None, typer.Option("--alias", "-a", help="Only this alias.")] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="With --alias: the version it named at this ISO time."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Who changed what, when and why (or what an alias named at a past time)."""
    from forgeml import registry

    ws = open_workspace(ctx)
    if at is not None:
        if alias is None:
            raise InputError("--at needs --alias")
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise InputError(f"--at takes an ISO 8601 time; got {at!r}") from None
        if when.tzinfo is None:
            when = when.astimezone()
        version = registry.alias_at(name, alias, when, workspace=ws)
        if json:
            print_json({"name": name, "alias": alias, "at": when.isoformat(), "version": version})
        else:
            console.print(
                f"{name}@{alias} at {when.isoformat()}: {version or 'none'}", markup=False
            )
        return
    events = registry.history(name, alias=alias, workspace=ws)
    if json:
        print_json([e.to_dict() for e in events])
        return
    t = table("when", "who", "change", "reason")
    for e in events:
        if e.kind == "alias":
            change = f"@{e.alias}: {e.from_version or '-'} -> {e.to_version or 'removed'}"
        elif e.kind == "status":
            change = f"{e.version}: {e.from_status} -> {e.to_status}"
        else:
            change = f"registered {e.version}"
        t.add_row(fmt_ms(e.at), e.actor or "-", change, e.reason or "-")
    console.print(t)


def _metric_cell(value: dict[str, Any] | None) -> str:
    if not value or value.get("value") is None:
        return "-"
    text = fmt_value(value["value"])
    if value.get("lower") is not None and value.get("upper") is not None:
        text += f" [{fmt_value(value['lower'])}, {fmt_value(value['upper'])}]"
    return text


@app.command("compare")
def compare(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS")],
    b: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS")],
    json: JsonOption = False,
) -> None:
    """Two versions side by side: metrics with intervals, parameters, data, size, latency."""
    from forgeml import registry

    result = registry.compare(a, b, workspace=open_workspace(ctx))
    if json:
        print_json(result)
        return
    left, right = result["a"], result["b"]
    t = table("", left["ref"], right["ref"])
    for key in ("status", "flavor", "estimator", "task", "dataset", "run_id", "inputs"):
        t.add_row(key, str(left[key] or "-"), str(right[key] or "-"))
    for name in result["metric_names"]:
        t.add_row(
            f"metric {name}",
            _metric_cell(left["metrics"].get(name)),
            _metric_cell(right["metrics"].get(name)),
        )
    for key in sorted(set(left["params"]) | set(right["params"])):
        t.add_row(
            f"param {key}",
            fmt_value(left["params"].get(key)),
            fmt_value(right["params"].get(key)),
        )
    t.add_row("bundle size", _size(left["bundle_bytes"]), _size(right["bundle_bytes"]))
    t.add_row("model file size", _size(left["model_bytes"]), _size(right["model_bytes"]))
    for key, label in (("single_row_ms", "latency 1 row (ms)"), ("batch_1000_rows_ms", "")):
        label = label or "latency per 1000 rows (ms)"
        t.add_row(label, fmt_value(left["latency"][key]), fmt_value(right["latency"][key]))
    console.print(t)


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS")],
    json: JsonOption = False,
) -> None:
    """Version -> training run -> dataset version -> source, and siblings on that data."""
    from forgeml import registry

    result = registry.lineage(ref, workspace=open_workspace(ctx))
    if json:
        print_json(result)
        return
    model = result["model"]
    console.print(f"model    {model['name']}@{model['version']} ({model['status']})", markup=False)
    run = result["run"]
    if run is None:
        console.print("run      not recorded")
    elif run.get("missing"):
        console.print(f"run      {run['run_id']} (no longer in the store)", markup=False)
    else:
        console.print(
            f"run      {run['run_id']} ({run['experiment']}/{run['name']}, {run['status']}, "
            f"code {run['code_revision'] or '-'})",
            markup=False,
        )
    data = result["dataset"]
    if data is None:
        console.print("dataset  not recorded")
    elif data.get("missing"):
        console.print(f"dataset  {data['ref']} (no longer in the store)", markup=False)
    else:
        console.print(
            f"dataset  {data['ref']} ({data['rows']} rows x {data['columns']} columns, "
            f"digest {data['digest'][:12]})",
            markup=False,
        )
        console.print(f"source   {data['source'] or '-'}", markup=False)
    if result.get("split"):
        console.print(
            f"split    {result['split']} (trained on its train part, tested on its test part)",
            markup=False,
        )
    siblings = result["trained_on_same_dataset"]
    if siblings:
        console.print(f"also trained on it: {', '.join(siblings)}", markup=False)


@app.command("card")
def card(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION|ALIAS")],
    html: Annotated[bool, typer.Option("--html", help="A standalone HTML page.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print (or write) the model card."""
    from forgeml import registry

    text = registry.card(ref, html=html, workspace=open_workspace(ctx))
    if output is not None:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}", markup=False)
        return
    typer.echo(text, nl=False)


@app.command("import-mlflow")
def import_mlflow(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An MLflow model directory (with MLmodel).")],
    name: Annotated[str, typer.Option("--name", "-n", help="The model's name here.")],
    trust: Annotated[
        bool,
        typer.Option(
            "--trust", help="Allow pickles from this directory (runs its code): yours only."
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Import a model saved by MLflow (sklearn, LightGBM or XGBoost flavor)."""
    from forgeml import registry

    context = open_context(ctx)
    record = registry.import_mlflow(
        path, name=name, trust=trust, workspace=context.workspace, actor=context.principal
    )
    if json:
        print_json(record.to_dict())
        return
    console.print(f"registered {record.ref} ({record.flavor})", markup=False)
