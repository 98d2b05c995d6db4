"""``forgeml data add | list | show | validate | diff | report | split``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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

if TYPE_CHECKING:
    from forgeml.data import DatasetVersion

app = typer.Typer(no_args_is_help=True, help="Versioned, profiled and validated datasets.")

_SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def _types(values: list[str] | None) -> dict[str, str]:
    types: dict[str, str] = {}
    for item in values or []:
        column, sep, kind = item.partition("=")
        if not sep or not column or not kind:
            raise InputError(f"--type takes COLUMN=KIND (e.g. zip=categorical); got {item!r}")
        types[column] = kind
    return types


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _sensitive(v: DatasetVersion, column: str) -> str:
    bins = v.schema[column].bins if column in v.schema else None
    return f"{column} (ranges cut at {', '.join(f'{b:g}' for b in bins)})" if bins else column


def _summary(v: DatasetVersion) -> None:
    roles = [
        f"{label} {value}"
        for label, value in (
            ("target", v.target),
            ("time", v.time_column),
            ("id", v.id_column),
            ("sensitive", ", ".join(_sensitive(v, c) for c in v.sensitive) or None),
        )
        if value
    ]
    console.print(styled(v.ref, "bold"), f" {v.n_rows:,} rows x {v.n_columns} columns")
    console.print(f"  digest   {v.digest}", markup=False)
    console.print(f"  source   {v.source or '-'}", markup=False)
    parent = f"  parent {v.name}@{v.parent_version}" if v.parent_version else ""
    console.print(
        f"  added    {fmt_ms(v.created_at)} by {v.created_by or '-'}{parent}", markup=False
    )
    if roles:
        console.print(f"  roles    {'; '.join(roles)}", markup=False)
    if v.quality is not None:
        counts = v.quality.counts()
        console.print(
            f"  quality  {counts['error']} errors, {counts['warning']} warnings, "
            f"{counts['info']} notes (forgeml data validate {v.ref})",
            markup=False,
        )


@app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A CSV (any delimiter, encoding) or Parquet file.")],
    name: Annotated[str, typer.Option("--name", "-n", help="The dataset's name.")],
    target: Annotated[str | None, typer.Option("--target", help="Column to predict.")] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="Column ordering rows in time.")
    ] = None,
    sensitive: Annotated[
        list[str] | None, typer.Option("--sensitive", help="A sensitive column (repeatable).")
    ] = None,
    id: Annotated[str | None, typer.Option("--id", help="Entity (group) column.")] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", help="Override a column's kind: COLUMN=KIND (repeatable)."),
    ] = None,
    bins: Annotated[
        list[str] | None,
        typer.Option(
            "--bins", help="Ranges of a numeric sensitive column: age=25,40,65 (repeatable)."
        ),
    ] = None,
    non_finite: Annotated[
        str,
        typer.Option(
            "--non-finite",
            help="What inf/-inf in a numeric column means: refuse (the default) or missing "
            "(read as missing values, reported in the quality findings).",
        ),
    ] = "refuse",
    pii: Annotated[
        list[str] | None,
        typer.Option(
            "--pii",
            help="PII policy of a column: COLUMN=hash|mask|keep (repeatable); other columns "
            "found to hold personal data by name or values are hashed.",
        ),
    ] = None,
    pii_default: Annotated[
        str,
        typer.Option("--pii-default", help="Action for detected PII columns: hash, mask, keep."),
    ] = "hash",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a table as a new version (identical content returns the existing version)."""
    from forgeml.cli._train import parse_bins
    from forgeml.security import parse_pii_options
    from forgeml.workflows import add_data

    added = add_data(
        open_context(ctx),
        path,
        name=name,
        target=target,
        time=time,
        sensitive=tuple(sensitive or ()),
        id=id,
        types=_types(type_),
        bins=parse_bins(bins),
        non_finite=non_finite,
        pii=parse_pii_options(pii or ()),
        pii_default=pii_default,
    )
    version, created = added.version, added.created
    if json:
        print_json({"created": created, **version.to_dict(details=False)})
        return
    if created:
        console.print(f"Added {version.ref}", markup=False)
    else:
        console.print(f"Unchanged: identical to {version.ref}", markup=False)
    _summary(version)
    for line in version.pii.describe():
        console.print(f"  PII {line}", markup=False)
    for finding in version.quality.findings if version.quality is not None else ():
        if finding.severity.value == "error" or finding.check == "non_finite":
            where = f" {finding.column!r}" if finding.column else ""
            console.print(f"  {finding.check}{where}: {finding.message}")


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="List this dataset's versions.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List datasets, or the versions of one dataset."""
    from forgeml import data

    workspace = open_workspace(ctx)
    if name is None:
        datasets = data.list_datasets(workspace=workspace)
        if json:
            print_json(
                [
                    {
                        "name": d.name,
                        "latest_version": d.latest_version,
                        "created_at": d.created_at,
                        "updated_at": d.updated_at,
                        "created_by": d.created_by,
                    }
                    for d in datasets
                ]
            )
            return
        if not datasets:
            console.print("No datasets. Add one: forgeml data add PATH --name NAME", markup=False)
            return
        t = table("name", "versions", "updated", "created by")
        for d in datasets:
            t.add_row(
                d.name,
                str(d.latest_version),
                fmt_ms(d.updated_at),
                d.created_by or "-",
            )
        console.print(t)
        return
    versions = data.list_versions(name, workspace=workspace)
    if json:
        print_json([v.to_dict(details=False) for v in versions])
        return
    t = table("version", "rows", "columns", "digest", "target", "added", "by", "source")
    for v in versions:
        t.add_row(
            str(v.version),
            f"{v.n_rows:,}",
            str(v.n_columns),
            v.digest[:12],
            v.target or "-",
            fmt_ms(v.created_at),
            v.created_by or "-",
            v.source or "-",
        )
    console.print(t)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@latest.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON (schema, profile...).")] = False,
) -> None:
    """Show a version: lineage, schema and profile."""
    from forgeml import data

    version = data.get(ref, workspace=open_workspace(ctx))
    if json:
        print_json(version.to_dict())
        return
    _summary(version)
    profile = version.profile
    assert profile is not None
    with_target = profile.task is not None
    columns = ["column", "kind", "missing", "distinct", "min", "mean", "max", "top"]
    t = table(*columns, *(["assoc."] if with_target else []))
    for c in version.schema:
        p = profile[c.name]
        top = ", ".join(f"{v} ({n:,})" for v, n in p.top[:3]) if p.top else "-"
        row = [
            c.name + (" *" if c.name == version.target else ""),
            c.kind.value + (" (set)" if c.overridden else ""),
            f"{100 * p.missing_share:.1f}%" if p.missing else "-",
            f"{p.distinct:,}",
            fmt_value(p.min),
            fmt_value(p.mean),
            fmt_value(p.max),
            top[:60],
        ]
        if with_target:
            row.append(fmt_value(p.association))
        t.add_row(*row)
    console.print(t)
    for s in version.splits:
        counts = ", ".join(f"{k} {v:,}" for k, v in s.counts.items())
        console.print(f"  split {s.name}: {s.strategy}, seed {s.seed}: {counts}", markup=False)


@app.command("validate")
def validate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@latest.")],
    expectations: Annotated[
        Path | None, typer.Option("--expectations", "-e", help="A YAML file of rules.")
    ] = None,
    fail_on: Annotated[
        str, typer.Option("--fail-on", help="Exit 1 on findings this serious: error|warning|never.")
    ] = "error",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Quality checks and expectations; exits 1 when an error-level check fails."""
    from forgeml import data

    if fail_on not in ("error", "warning", "info", "never"):
        raise InputError(f"--fail-on is error, warning, info or never; got {fail_on!r}")
    result = data.validate(ref, expectations=expectations, workspace=open_workspace(ctx))
    failed = fail_on != "never" and result.failed(fail_on)
    if json:
        print_json({**result.to_dict(), "failed": failed})
    else:
        findings = result.quality.findings
        if findings:
            t = table("severity", "check", "column", "finding", title=f"Quality of {result.ref}")
            for f in findings:
                style = _SEVERITY_STYLE[f.severity.value]
                t.add_row(
                    styled(f.severity.value, style),
                    f.check,
                    f.column or "",
                    f.message,
                )
            console.print(t)
        else:
            console.print(f"Quality of {result.ref}: no findings", markup=False)
        if result.expectations:
            t = table("result", "severity", "rule", "detail", title="Expectations")
            for r in result.expectations:
                mark = styled("pass", "green") if r.passed else styled("FAIL", "red")
                t.add_row(
                    mark,
                    r.expectation.severity.value,
                    r.expectation.label,
                    r.message,
                )
            console.print(t)
        counts = result.quality.counts()
        failed_rules = sum(not r.passed for r in result.expectations)
        verdict = "FAILED" if failed else "passed"
        console.print(
            f"{verdict}: {counts['error']} errors, {counts['warning']} warnings, "
            f"{failed_rules} of {len(result.expectations)} expectations failed",
            markup=False,
        )
    if failed:
        raise typer.Exit(1)


@app.command("diff")
def diff(
    ctx: typer.Context,
    before: Annotated[str, typer.Argument(help="NAME@V of the older version.")],
    after: Annotated[str, typer.Argument(help="NAME@V of the newer version.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Schema changes, rows added and removed, and per-column changes between two versions."""
    from forgeml import data

    result = data.diff(before, after, workspace=open_workspace(ctx))
    if json:
        print_json(result.to_dict())
        return
    console.print(
        f"{result.before} -> {result.after}: rows {result.rows_before:,} -> "
        f"{result.rows_after:,} (+{result.rows_added:,} / -{result.rows_removed:,})",
        markup=False,
    )
    for change in result.schema_changes:
        console.print(f"  schema: {change}", markup=False)
    t = table("column", "status", "kind", "cells changed", "distribution change", "missing")
    for c in result.columns:
        kind = c.kind_after or c.kind_before or "-"
        if c.kind_before and c.kind_after and c.kind_before != c.kind_after:
            kind = f"{c.kind_before} -> {c.kind_after}"
        stat = f"{c.statistic_name} {c.statistic:.4f}" if c.statistic is not None else "-"
        missing = "-"
        if c.missing_before is not None and c.missing_after is not None:
            missing = f"{100 * c.missing_before:.1f}% -> {100 * c.missing_after:.1f}%"
        cells = "-" if c.cells_changed is None else f"{c.cells_changed:,}"
        style = "yellow" if c.status != "unchanged" else "white"
        t.add_row(c.name, styled(c.status, style), kind, cells, stat, missing)
    console.print(t)
    if result.identical:
        console.print("No changes.", markup=False)


@app.command("report")
def report(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@latest.")],
    html: Annotated[Path, typer.Option("--html", help="Where to write the HTML page.")],
) -> None:
    """Write a self-contained HTML report (distributions, quality findings, schema)."""
    from forgeml import data

    path = data.report(ref, html, workspace=open_workspace(ctx))
    console.print(f"Wrote {path}", markup=False)


@app.command("split")
def split(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@latest.")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="auto|stratified|time|group|random.")
    ] = "auto",
    fractions: Annotated[
        str, typer.Option("--fractions", help="train,validation,test (or train,test).")
    ] = "0.7,0.15,0.15",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random permutation.")] = 0,
    name: Annotated[str, typer.Option("--name", help="The split's name.")] = "default",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Draw a reproducible train/validation/test split and record it with the version."""
    from forgeml.workflows import split_data

    try:
        parts = [float(x) for x in fractions.split(",")]
    except ValueError:
        raise InputError(
            f"--fractions takes numbers like 0.7,0.15,0.15; got {fractions!r}"
        ) from None
    info = split_data(
        open_context(ctx), ref, strategy=strategy, fractions=parts, seed=seed, name=name
    )
    if json:
        print_json(info.to_dict())
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in info.counts.items())
    extra: Any = info.params.get("column")
    by = f" by {extra}" if extra else ""
    console.print(
        f"Split {info.name!r} of {ref}: {info.strategy}{by}, seed {info.seed}: {counts}",
        markup=False,
    )
