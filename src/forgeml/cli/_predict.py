"""``forgeml predict NAME[@ALIAS|@VERSION] --input FILE --output FILE``: batch scoring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forgeml.cli._common import console, err_console, open_context, print_json, require_positive
from forgeml.errors import InputError

if TYPE_CHECKING:
    from forgeml.batch import BatchEvent, BatchResult


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
            "--jobs", "-j", help="Scoring workers (default: 1 below 4 cores, else one per core)."
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="What scores the chunks: auto, local, threads or processes (ray: planned).",
        ),
    ] = "auto",
    on_error: Annotated[
        str | None,
        typer.Option(
            "--on-error",
            help="A row the model cannot take: fail (default: stop, naming it), skip, or "
            "quarantine (with --quarantine FILE).",
        ),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            "--quarantine",
            help="Write the rows left out, with their reason, to this file (implies "
            "--on-error quarantine).",
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

    The output has the scored input rows in their order: the kept input columns, then
    prediction, then proba_<class> per class for classifiers.
    """
    from forgeml.workflows import score_file

    if keep and predictions_only:
        raise InputError("--keep and --predictions-only exclude each other; give one")
    require_positive("chunk-rows", chunk_rows)
    if jobs is not None:
        require_positive("jobs", jobs)
    policy = on_error if on_error is not None else "quarantine" if quarantine else "fail"
    if policy not in ("fail", "skip", "quarantine"):
        raise InputError(f"--on-error takes fail, skip or quarantine; got {policy!r}")
    if (policy == "quarantine") != (quarantine is not None):
        raise InputError(
            "--on-error quarantine needs --quarantine FILE"
            if quarantine is None
            else f"--quarantine goes with --on-error quarantine, not {policy}"
        )
    context = open_context(ctx)
    view = _ProgressView() if err_console.is_terminal and not json else None
    try:
        result = score_file(
            context,
            model_ref,
            input,
            output,
            chunk_rows=chunk_rows,
            jobs=jobs,
            executor=executor,
            probabilities=not no_probabilities,
            keep=False if predictions_only else (list(keep) if keep else True),
            on_error=policy,
            quarantine=quarantine,
            on_event=view,
        )
    finally:
        if view is not None:
            view.close()
    if json:
        print_json(result.to_dict())
        return
    console.print(_summary(result), markup=False, soft_wrap=True)


def _summary(result: BatchResult) -> str:
    """One line: rows read from the input, scored, skipped, speed and where they went."""
    n = result.jobs
    workers = {
        "local": "in this process",
        "threads": f"{n} thread{'s' if n > 1 else ''}",
        "processes": f"{n} process{'es' if n > 1 else ''}",
    }.get(result.executor, f"{n} {result.executor}")
    text = (
        f"{result.rows:,} of {result.rows_read:,} rows of {result.input.name} scored by "
        f"{result.model} in {result.seconds:.2f} s ({result.rows_per_second:,.0f} rows/s, "
        f"{workers}) -> {result.output}"
    )
    if result.skipped or result.quarantine is not None:
        text += f"; {result.skipped:,} rows skipped (values the model cannot take)"
        if result.quarantine is not None:
            text += f", written with their reasons to {result.quarantine}"
    return text


class _ProgressView:
    """A Rich progress bar on standard error fed by batch scoring's events: rows of a known
    total, else bytes of the file."""

    def __init__(self, console: Any = None) -> None:
        self._console = console if console is not None else err_console
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, event: BatchEvent) -> None:
        from forgeml.batch import ChunkScored, ScoringStarted

        if isinstance(event, ScoringStarted):
            self._start(f"scoring {event.input.name} with {event.model}")
        elif isinstance(event, ChunkScored) and self._progress is not None:
            total: int | None
            if event.total_rows is not None:
                done, total = event.rows, event.total_rows
            else:
                done, total = event.bytes_read or 0, event.total_bytes
            self._progress.update(
                self._task, completed=done, total=total, rows=event.rows, skipped=event.skipped
            )

    def _start(self, description: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}", markup=False),  # a file name is not markup
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rows]:,} rows ({task.fields[skipped]:,} skipped)"),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._task = self._progress.add_task(description, total=None, rows=0, skipped=0)
        self._progress.start()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
