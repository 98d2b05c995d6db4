"""``forgeml quickstart``: the main job, end to end, on the embedded default workspace."""

from __future__ import annotations

from typing import Annotated

import typer

from forgeml.cli._common import console, open_context, print_json, styled
from forgeml.cli._live import training_view


def quickstart(
    ctx: typer.Context,
    time_budget: Annotated[
        float, typer.Option("--time-budget", help="Seconds of AutoML search.")
    ] = 30.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random step.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Walk the lifecycle on the shipped UCI Adult census data.

    Adds the data as a versioned, profiled dataset; searches models within the time budget
    (one tracked run, its hold-out recorded with the data); evaluates the best on those rows
    with intervals and a fairness audit by sex and race; registers it as a verified bundle;
    promotes it to ``production``; loads it back, predicts new rows, and serves it.
    """
    from forgeml.workflows import quickstart as run_quickstart

    def on_step(name: str, seconds: float) -> None:
        if not json:
            console.print(styled("✓", "green"), f"{name} ({seconds:.1f}s)")

    summary = run_quickstart(
        open_context(ctx),
        time_budget=time_budget,
        seed=seed,
        progress=training_view(ctx, not json and console.is_terminal) or False,
        on_step=on_step,
    )
    result_run = summary["run_id"]
    version_ref = summary["dataset"]["ref"]
    if json:
        print_json(summary)
        return
    auc = summary["evaluation"].get("roc_auc")
    console.print(
        "\n",
        styled("Quickstart done", "bold"),
        f" in {summary['seconds']}s, workspace {summary['workspace']}",
        sep="",
    )
    if auc:
        console.print(
            f"  test ROC AUC {auc['value']:.4f} (95% interval "
            f"{auc['lower']:.4f} .. {auc['upper']:.4f}), "
            f"{summary['evaluation']['fairness_findings']} fairness finding(s)"
        )
    console.print(f"  P(income > 50K) for 5 census rows: {summary['predictions']}")
    console.print("Next:")
    console.print(f"  forgeml runs show {result_run[:8]}")
    console.print("  forgeml models show adult-income@production")
    console.print(
        "  forgeml serve adult-income@production   # then open http://127.0.0.1:8000/docs"
    )
    console.print(f"  forgeml data report {version_ref} --html adult.html")
