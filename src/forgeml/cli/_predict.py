"""``forgeml predict NAME[@ALIAS|@VERSION] --input FILE --output FILE``: batch scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forgeml.cli._common import console, err_console, open_workspace, print_json, require_positive
from forgeml.errors import InputError


def predict(
    ctx: typer.Context,
    model_ref: Annotated[
        str, typer.Argument(help="A registered model: NAME, NAME@VERSION or NAME@ALIAS.")
    ],
    input: Annotated[
        Path,
        typer.Option("--input", "-i", help="The file to score: .csv, .csv.gz, .parquet or .pq."),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The file to write (.csv, .csv.gz, .parquet, .pq)."),
    ],
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", help="Rows per chunk (memory holds a few chunks).")
    ] = 100_000,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", help="Scoring processes (default: 1 below 4 cores, else one per core)."
        ),
    ] = None,
    no_probabilities: Annotated[
        bool,
        typer.Option("--no-probabilities", help="Write no proba_<class> columns."),
    ] = False,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            "-k",
            help="Copy only this input column to the output (repeatable; default: all).",
        ),
    ] = None,
    predictions_only: Annotated[
        bool, typer.Option("--predictions-only", help="Copy no input column to the output.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score a CSV or Parquet file with a registered model, in chunks, on every core.

    The output has the input's rows in their order: the kept input columns, then
    prediction, then proba_<class> per class for classifiers.
    """
    from forgeml.serve._batch import predict_file

    if keep and predictions_only:
        raise InputError("--keep and --predictions-only exclude each other; give one")
    require_positive("chunk-rows", chunk_rows)
    if jobs is not None:
        require_positive("jobs", jobs)
    workspace = open_workspace(ctx)
    result = predict_file(
        model_ref,
        input,
        output,
        workspace=workspace,
        chunk_rows=chunk_rows,
        jobs=jobs,
        probabilities=not no_probabilities,
        keep=False if predictions_only else (list(keep) if keep else True),
        progress=err_console.is_terminal and not json,
    )
    if json:
        print_json(result.to_dict())
        return
    console.print(
        f"{result.rows:,} rows scored by {result.model} in {result.seconds:.2f} s "
        f"({result.rows_per_second:,.0f} rows/s, {result.jobs} "
        f"process{'es' if result.jobs > 1 else ''}) -> {result.output}",
        markup=False,
    )
