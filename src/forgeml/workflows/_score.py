"""Use case: score a file with a registered model (batch scoring)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from forgeml.workflows._context import Context, use_case

if TYPE_CHECKING:
    from forgeml.batch import BatchResult, EventHandler

__all__ = ["score_file"]


@use_case("predict")
def score_file(
    ctx: Context,
    model: str,
    input: str | Path,
    output: str | Path,
    *,
    chunk_rows: int = 100_000,
    jobs: int | None = None,
    executor: str = "auto",
    probabilities: bool = True,
    keep: Sequence[str] | bool = True,
    on_error: str = "fail",
    quarantine: str | Path | None = None,
    on_event: EventHandler | None = None,
) -> BatchResult:
    """Score ``input`` into ``output`` with ``model`` registered in ``ctx.workspace``.

    The arguments after ``output`` are ``forgeml.batch.predict_file``'s: chunk size, workers
    and executor, probabilities, kept columns, what a bad row does (``fail``, ``skip``,
    ``quarantine`` into ``quarantine``) and the event handler that shows progress.

    Returns:
        The version used, rows read, scored and skipped, seconds and the output paths.

    Raises:
        NotFoundError: no input file, or no such model, version or alias.
        InputError: an argument or input that cannot be used (the message says which).
        SchemaMismatchError: the input does not fit the model (the message names the row,
            column and value).
    """
    from forgeml.batch import predict_file

    return predict_file(
        model,
        input,
        output,
        workspace=ctx.workspace,
        chunk_rows=chunk_rows,
        jobs=jobs,
        executor=executor,
        probabilities=probabilities,
        keep=keep,
        on_error=on_error,
        quarantine=quarantine,
        on_event=on_event,
    )
