"""``forgeml evaluate MODEL[@V] --data DATASET[@V]``: a registered model on labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgeml.cli._common import console, fmt_value, open_workspace, print_json, table


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
        typer.Option("--part", help="Only this part of the dataset's recorded split (e.g. test)."),
    ] = None,
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
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Metrics with intervals, slices, fairness, explanations and an HTML report, as a run."""
    from forgeml import data as datasets
    from forgeml.errors import InputError
    from forgeml.evaluate import evaluate as run_evaluation
    from forgeml.registry import load
    from forgeml.tracking import start_run

    workspace = open_workspace(ctx)
    model = load(model_ref, workspace=workspace, trust_pickle=trust_pickle)
    version = datasets.get(data, workspace=workspace)
    ref = f"{version.name}@{version.version}"
    if version.target is None:
        raise InputError(f"The dataset {ref} has no target column: add it with --target")
    frame = datasets.load(ref, part=part, workspace=workspace)
    columns = list(model.signature.names)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"The dataset {ref} lacks columns the model takes: {', '.join(missing)}")
    labelled = frame[frame[version.target].notna()]
    chosen = list(sensitive) if sensitive else [c for c in version.sensitive if c in columns]
    name = f"{model.metadata['name']}@{model.metadata['version']}"
    with start_run(
        "evaluate",
        name=f"evaluate-{name}",
        tags={"forgeml.kind": "evaluate", "forgeml.model": name},
        workspace=workspace,
    ) as run:
        run.log_params({"model": name, "dataset": ref, "part": part or "all", "seed": seed})
        report = run_evaluation(
            model,
            labelled[columns],
            labelled[version.target].to_numpy(),
            task=model.task,
            sensitive=chosen or None,
            run=run,
            output_dir=output,
            model_name=name,
            dataset_name=ref,
            seed=seed,
        )
    if json:
        print_json({"run_id": run.run_id, "model": name, "dataset": ref, **report.to_dict()})
        return
    shown = table(
        "metric", "value", "95% interval", title=f"{name} on {ref} ({len(labelled):,} rows)"
    )
    for value in report.metrics.values:
        interval = (
            "-"
            if value.lower is None or value.upper is None
            else f"{fmt_value(value.lower)} .. {fmt_value(value.upper)}"
        )
        shown.add_row(value.name, fmt_value(value.value), interval)
    console.print(shown)
    if report.threshold is not None:
        console.print(
            f"decision threshold: {report.threshold:.3g} on P({model.classes_[1]})",
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
    console.print(f"report: {where}; run {run.run_id}", markup=False)
