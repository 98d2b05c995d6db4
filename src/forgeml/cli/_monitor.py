"""``forgeml monitor``: data drift between two tables (``drift``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from forgeml.cli._common import console, get_settings, print_json, styled, table

app = typer.Typer(no_args_is_help=True, help="Monitor data and models: drift, reports.")


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if 0 < value < 1e-300:
        return "<1e-300"
    return f"{value:.3g}"


@app.command("drift")
def drift(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Argument(help="Reference table: CSV or Parquet file, or dataset NAME@V.")
    ],
    current: Annotated[
        str, typer.Argument(help="Current table: CSV or Parquet file, or dataset NAME@V.")
    ],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    columns: Annotated[
        list[str] | None,
        typer.Option("--column", "-c", help="Compare only this column (repeatable)."),
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option("--categorical", help="Compare this numeric column as categories."),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Family-wise false-alarm level of the decision.")
    ] = 0.05,
    min_effect: Annotated[
        float, typer.Option("--min-effect", help="Smallest effect size that counts as drift.")
    ] = 0.1,
    multivariate: Annotated[
        str, typer.Option("--multivariate", help="Domain classifier: auto, yes or no.")
    ] = "auto",
    numeric_test: Annotated[
        str, typer.Option("--numeric-test", help="Effect size for numbers: ks or psi.")
    ] = "ks",
    categorical_test: Annotated[
        str,
        typer.Option("--categorical-test", help="For categories: jensen_shannon or psi."),
    ] = "jensen_shannon",
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
) -> None:
    """Compare CURRENT with REFERENCE column by column and as a whole; exit 0 either way."""
    from forgeml.errors import InputError
    from forgeml.monitor import drift as compute
    from forgeml.monitor import write_html
    from forgeml.store import Workspace

    choice = {"auto": "auto", "yes": True, "no": False}.get(multivariate.lower())
    if choice is None:
        raise InputError(f"--multivariate must be auto, yes or no; got {multivariate!r}")
    workspace = None
    if any("@" in s and not Path(s).exists() for s in (reference, current)):
        workspace = Workspace(get_settings(ctx))
        ctx.call_on_close(workspace.close)
    report = compute(
        reference,
        current,
        workspace=workspace,
        columns=columns or None,
        categorical=categorical or None,
        alpha=alpha,
        min_effect=min_effect,
        multivariate=choice,
        numeric_test=numeric_test,
        categorical_test=categorical_test,
        random_state=seed,
    )
    if html is not None:
        write_html(report, html)
    if json:
        print_json(report.to_dict(histograms=False) | ({"html": str(html)} if html else {}))
        return
    t = table(
        "column",
        "kind",
        "test",
        "effect",
        "threshold",
        "p-value",
        "drift",
        "missing ref→cur",
        "out of range / unseen",
        title=(
            f"{report.current} ({report.n_current:,} rows) against {report.reference} "
            f"({report.n_reference:,} rows)"
        ),
    )
    for c in report.columns:
        odd = (
            f"{c.out_of_range_share:.1%} out of range"
            if c.out_of_range_share is not None
            else f"{c.unseen_share or 0:.1%} unseen"
        )
        t.add_row(
            (c.column),
            c.kind,
            c.test,
            _num(c.effect_size),
            _num(c.threshold),
            _num(c.p_value),
            styled("yes", "bold red") if c.drifted else "no",
            f"{c.missing_rate_ref:.1%} → {c.missing_rate_cur:.1%}",
            odd,
        )
    console.print(t)
    mv = report.multivariate
    if mv is not None and mv.skipped is None and mv.auc is not None:
        top = ", ".join(f"{name} {share:.0%}" for name, share in mv.top_columns)
        line = Text(
            f"domain classifier: AUC {mv.auc:.3f} against threshold {mv.threshold:.3f} "
            f"({mv.folds}-fold, {mv.n_reference:,} + {mv.n_current:,} rows): "
        )
        line.append_text(styled("drift", "bold red") if mv.drifted else Text("no drift"))
        line.append(f"; relies on {top}" if top else "")
        console.print(line)
    elif mv is not None and mv.skipped:
        console.print(f"domain classifier not run: {mv.skipped}")
    for name, why in report.skipped:
        console.print(f"not compared: {name} ({why})")
    line = Text("table: ")
    line.append_text(
        styled("DRIFT", "bold red") if report.drifted else styled("no drift", "bold green")
    )
    drifted = ", ".join(report.drifted_columns)
    if drifted:
        line.append(
            f" in {len(report.drifted_columns)} of {len(report.columns)} columns ({drifted})"
        )
    console.print(line)
    console.print(report.rule, style="dim")
    if html is not None:
        console.print(f"report written to {html}")
