"""``forgeml evaluate MODEL[@V] --data DATASET[@V]``: a registered model on labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgeml.cli._common import console, fmt_value, open_context, print_json, table


def evaluate(
    ctx: typer.Context,
    model_ref: Annotated[
        str, typer.Argument(help="A registered model: NAME, NAME@VERSION or NAME@ALIAS.")
    ],
    data: Annotated[
        str, typer.Option("--data", "-d", help="A dataset with labels: NAME or NAME@VERSION.")
    ],
    part: Annotated[
        str | None,
        typer.Option(
            "--part",
            help="Only this part (train, validation, test) of a recorded split. Default: the "
            "model's own held-out rows on its training data, else every labelled row.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="The recorded split --part refers to (default: the model's own)."
        ),
    ] = None,
    allow_training_rows: Annotated[
        bool,
        typer.Option(
            "--allow-training-rows",
            help="Score rows the model was trained on (the report says so; scores are optimistic).",
        ),
    ] = False,
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="Sensitive column (default: the dataset's; repeatable)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the report files here.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and SHAP.")] = 0,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Load a model stored with joblib (pickle runs code when loaded).",
        ),
    ] = False,
    no_explain: Annotated[
        bool, typer.Option("--no-explain", help="Skip SHAP explanations (faster).")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Metrics with intervals, slices, fairness, explanations and an HTML report, as a run.

    States which rows were scored and how many of them the model was trained on; refuses
    training rows unless --allow-training-rows.
    """
    from forgeml.workflows import evaluate_model

    result = evaluate_model(
        open_context(ctx),
        model_ref,
        data,
        part=part,
        split=split,
        allow_training_rows=allow_training_rows,
        sensitive=sensitive,
        output_dir=output,
        seed=seed,
        explain=not no_explain,
        trust_pickle=trust_pickle,
    )
    if json:
        print_json(result.to_dict())
        return
    report, rows = result.report, result.rows
    shown = table("metric", "value", "95% interval", title=f"{result.model} on {rows.dataset}")
    for value in report.metrics.values:
        interval = (
            "-"
            if value.lower is None or value.upper is None
            else f"{fmt_value(value.lower)} .. {fmt_value(value.upper)}"
        )
        shown.add_row(value.name, fmt_value(value.value), interval)
    console.print(f"rows: {rows.describe()}", markup=False)
    console.print(shown)
    if report.threshold is not None:
        console.print(
            f"decision threshold: {report.threshold:.3g} on P({result.classes[1]})",
            markup=False,
        )
    if report.fairness is not None:
        console.print(f"fairness: {len(report.fairness.findings)} finding(s) over the thresholds")
        for finding in report.fairness.findings[:5]:
            console.print(f"  - {finding.message}", markup=False)
    if report.importance:
        top = ", ".join(f"{c} {v:.3g}" for c, v in report.importance[:5])
        console.print(f"most important (mean |SHAP|): {top}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    where = output if output is not None else "the run's evaluation artifact"
    console.print(f"report: {where}; run {result.run_id}", markup=False)
