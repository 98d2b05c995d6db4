"""The scoring loop: read chunks, hand them to an executor, write the outcomes in input order.

``predict_file("churn@production", "in.parquet", "out.parquet")`` reads the input in chunks of
``chunk_rows`` rows and writes, in input order, the kept input columns, then ``prediction``,
then ``proba_<class>`` per class for classifiers. At most two chunks per worker are in flight,
so memory stays bounded by about ``(2 * jobs + 1) * chunk_rows`` rows.

Rows whose values the model cannot take stop the scoring with the first one named (row
number and column), or, with ``on_error="skip"``, are left out of the output and counted, or,
with ``on_error="quarantine"``, are also written with their reason to a quarantine file.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from forgeml.batch._events import (
    BatchResult,
    ChunkScored,
    EventHandler,
    ScoringFinished,
    ScoringStarted,
)
from forgeml.batch._executors import Executor, choose, died, plan
from forgeml.batch._scorer import BadRow, ScoredChunk, Scorer, empty_outputs, output_names
from forgeml.batch._source import (
    Source,
    cast_text,
    chunks,
    csv_column_types,
    format_of,
    open_source,
    quoted,
)
from forgeml.batch._writer import Writer
from forgeml.errors import InputError, NotFoundError, SchemaMismatchError

if TYPE_CHECKING:
    from forgeml.registry import LoadedModel
    from forgeml.store import Workspace

__all__ = ["ON_ERROR", "QUARANTINE_COLUMNS", "predict_file"]

ON_ERROR = ("fail", "skip", "quarantine")
QUARANTINE_COLUMNS = ("error_row", "error_column", "error_reason")
_IN_FLIGHT_PER_JOB = 2


def predict_file(
    model: str,
    input: str | Path,
    output: str | Path,
    *,
    workspace: Workspace | None = None,
    chunk_rows: int = 100_000,
    jobs: int | None = None,
    executor: str = "auto",
    probabilities: bool = True,
    keep: Sequence[str] | bool = True,
    on_error: str = "fail",
    quarantine: str | Path | None = None,
    on_event: EventHandler | None = None,
) -> BatchResult:
    """Score a CSV or Parquet file with a registered model, chunk by chunk.

    The output holds one row per scored input row, in input order: the ``keep`` columns of
    the input, ``prediction``, and for classifiers ``proba_<class>`` per class (unless
    ``probabilities=False``). Formats follow the extensions: ``.csv``, ``.csv.gz``,
    ``.parquet``, ``.pq``. Kept columns keep their types: Parquet's as stored; CSV's as text
    into CSV, and into Parquet as the integer, float, boolean, date-time or text type that
    every value of the column has (decided over the whole file, in one more pass). Outputs
    are written to temporary files renamed at the end, so a failure leaves no partial output.

    Args:
        model: ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS``; an alias is resolved once, so
            every chunk is scored by the same version.
        input: the file to score.
        output: the file to write (replaced if it exists).
        workspace: where the model is registered (default: the default workspace). Worker
            processes open their own workspace from its settings.
        chunk_rows: rows per chunk; memory holds about ``2 * jobs + 1`` chunks.
        jobs: workers (default: see ``executor``). With worker processes, a script that calls
            ``predict_file`` needs the ``if __name__ == "__main__":`` guard, as for any
            process pool: the workers import the script's main module.
        executor: what scores the chunks: ``auto`` (default: in this thread below four
            cores, else one process per core as long as each gets two chunks), ``local``,
            ``threads``, ``processes``; ``ray`` is planned.
        probabilities: write the class probabilities of classifiers.
        keep: input columns copied to the output: ``True`` all (default), ``False`` none, or
            the names of some (an id column, say).
        on_error: what a row the model cannot take (a value of the wrong type, an unknown
            category, a missing value the model never saw) does: ``fail`` (default) stops
            and names the first one; ``skip`` leaves it out of the output; ``quarantine``
            leaves it out and writes it, as read, to ``quarantine``.
        quarantine: the file the rows left out are written to (``.csv``, ``.csv.gz``,
            ``.parquet``, ``.pq``), with ``error_row`` (its row number in the input, from 1,
            the header not counted), ``error_column`` and ``error_reason`` first; only with
            ``on_error="quarantine"``.
        on_event: given a ``ScoringStarted``, a ``ChunkScored`` after every chunk and a
            ``ScoringFinished``, on the calling thread.

    Returns:
        The version used, rows read, scored and skipped, seconds and the output paths.

    Raises:
        NotFoundError: no input file, or no such model, version or alias.
        InputError: an unknown extension, an argument out of range, a column to keep that
            the input lacks, or an input that cannot be read.
        SchemaMismatchError: the input lacks a column the model takes, or (with
            ``on_error="fail"``) a row does not fit the model's signature: the message names
            the row, the column and the value.
    """
    started = time.perf_counter()
    source_path, target_path = Path(input).expanduser(), Path(output).expanduser()
    input_format = format_of(source_path, "input")
    output_format = format_of(target_path, "output")
    _check_count("chunk_rows", chunk_rows)
    if jobs is not None:
        _check_count("jobs", jobs)
    if on_error not in ON_ERROR:
        raise InputError(
            f"The `on_error` parameter must be one of {', '.join(ON_ERROR)}; got {on_error!r}"
        )
    quarantine_path = None if quarantine is None else Path(quarantine).expanduser()
    if (on_error == "quarantine") != (quarantine_path is not None):
        raise InputError(
            "A quarantine file is given with on_error='quarantine', and only then; got "
            f"on_error={on_error!r} and quarantine={quarantine!r}"
        )
    quarantine_format = None
    if quarantine_path is not None:
        quarantine_format = format_of(quarantine_path, "quarantine file")
        _check_target(quarantine_path, source_path, "quarantine file")
        if quarantine_path.resolve() == target_path.resolve():
            raise InputError("The quarantine file is the output; write it to another file")
    _check_target(target_path, source_path, "output")
    if not source_path.exists():
        raise NotFoundError(f"No file at {source_path}")

    from forgeml.registry import load

    ws = workspace if workspace is not None else _default_workspace()
    loaded = load(model, workspace=ws)
    ref = f"{loaded.name}@{loaded.version}"
    source = open_source(source_path, input_format)
    try:
        model_columns = list(loaded.signature.names)
        missing = [c for c in model_columns if c not in source.columns]
        if missing:
            raise SchemaMismatchError(
                f"{source_path.name} lacks the column{'s' if len(missing) > 1 else ''} "
                f"{quoted(missing)} that {ref} takes"
            )
        kept = _kept_columns(keep, source.columns, source_path)
        clash = [c for c in kept if c in output_names(loaded, probabilities)]
        if clash:
            raise InputError(
                f"The input column{'s' if len(clash) > 1 else ''} {quoted(clash)} would clash "
                "with the output column of the same name; keep only other input columns"
            )
        if quarantine_path is not None:
            clash = [c for c in source.columns if c in QUARANTINE_COLUMNS]
            if clash:
                raise InputError(
                    f"The input has the column {quoted(clash)} that a quarantine file adds; "
                    "rename it or use on_error='skip'"
                )
        kind, workers = plan(executor, jobs, source.estimated_rows, chunk_rows)
        types = None
        if input_format == "csv" and output_format == "parquet" and kept:
            numeric = [c.name for c in loaded.signature.inputs if c.kind in ("numeric", "integer")]
            types = csv_column_types(source, kept, numeric)
        if on_event is not None:
            on_event(
                ScoringStarted(
                    ref, source_path, source.total_rows, source.total_bytes, workers, kind
                )
            )
        scorer = Scorer(loaded, probabilities, find_all=on_error != "fail")
        loop = _Loop(
            source,
            kept,
            loaded,
            probabilities,
            Writer(target_path, output_format),
            None if quarantine_path is None else Writer(quarantine_path, str(quarantine_format)),
            types,
            on_event,
        )
        pool = choose(kind, workers, ref, ws.settings, scorer)
        try:
            loop.run(pool, chunk_rows, workers, on_error)
        finally:
            pool.close()
    finally:
        source.close()
    result = BatchResult(
        model=ref,
        input=source_path,
        rows=loop.written,
        skipped=loop.skipped,
        seconds=time.perf_counter() - started,
        output=target_path,
        jobs=workers,
        chunks=loop.chunks,
        executor=kind,
        quarantine=quarantine_path,
    )
    if on_event is not None:
        on_event(ScoringFinished(result))
    return result


class _Loop:
    """Reads, scores and writes every chunk; counts what it wrote and skipped."""

    def __init__(
        self,
        source: Source,
        kept: list[str],
        model: LoadedModel,
        probabilities: bool,
        writer: Writer,
        quarantine: Writer | None,
        types: dict[str, pa.DataType] | None,
        on_event: EventHandler | None,
    ) -> None:
        self.source = source
        self.kept = kept
        self.model = model
        self.probabilities = probabilities
        self.writer = writer
        self.quarantine = quarantine
        self.types = types
        self.on_event = on_event
        self.written = self.skipped = self.chunks = 0

    def run(self, executor: Executor, chunk_rows: int, jobs: int, on_error: str) -> None:
        model_columns = list(self.model.signature.names)
        wanted = set(self.kept) | set(model_columns)
        if self.quarantine is not None:
            wanted = set(self.source.columns)
        read = [c for c in self.source.columns if c in wanted]
        pending: deque[tuple[int, pa.Table, Future[ScoredChunk]]] = deque()
        writers = [w for w in (self.writer, self.quarantine) if w is not None]
        try:
            self._report()
            first = 0
            for chunk in chunks(
                self.source.batches(read, chunk_rows), chunk_rows, self.source.name
            ):
                future = executor.submit(chunk.select(model_columns))
                pending.append(
                    (first, chunk if self.quarantine else chunk.select(self.kept), future)
                )
                first += chunk.num_rows
                limit = _IN_FLIGHT_PER_JOB * jobs
                while pending and (len(pending) >= limit or pending[0][2].done()):
                    self._write(*pending.popleft(), on_error)
            while pending:
                self._write(*pending.popleft(), on_error)
            if not self.writer.started:
                self.writer.write(self._empty())
            if self.quarantine is not None and not self.quarantine.started:
                self.quarantine.write(
                    _quarantine_rows(self.source.schema(read).empty_table(), (), 0)
                )
            for writer in writers:
                writer.commit()
        except BaseException:
            for *_, future in pending:
                future.cancel()
            for writer in writers:
                writer.abort()
            raise

    def _write(
        self, first: int, chunk: pa.Table, future: Future[ScoredChunk], on_error: str
    ) -> None:
        scored = _outcome(future, first, chunk.num_rows, self.source.name)
        kept = chunk.select(self.kept)
        if scored.bad:
            if on_error == "fail":
                bad = scored.bad[0]
                raise SchemaMismatchError(
                    f"{self.source.name}, row {first + bad.position + 1:,}: {bad.reason}"
                )
            good = np.ones(chunk.num_rows, dtype=bool)
            good[[b.position for b in scored.bad]] = False
            kept = kept.filter(pa.array(good))
            if self.quarantine is not None:
                self.quarantine.write(_quarantine_rows(chunk, scored.bad, first))
            self.skipped += len(scored.bad)
        if scored.outputs is not None:
            kept = self._typed(kept)
            outputs = scored.outputs
            names = [*kept.column_names, *outputs.column_names]
            self.writer.write(pa.Table.from_arrays([*kept.columns, *outputs.columns], names=names))
            self.written += outputs.num_rows
        self.chunks += 1
        self._report()

    def _typed(self, kept: pa.Table) -> pa.Table:
        """Kept CSV columns in the types decided over the whole file."""
        if self.types is None:
            return kept
        columns = []
        for name in kept.column_names:
            try:
                columns.append(cast_text(kept.column(name), self.types[name]))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputError(
                    f"{self.source.name}: column {name!r} cannot be written as "
                    f"{self.types[name]}: {e}"
                ) from None
        return pa.Table.from_arrays(columns, names=kept.column_names)

    def _empty(self) -> pa.Table:
        schema = self.source.schema(self.kept)
        if self.types is not None:
            schema = pa.schema([(f.name, self.types[f.name]) for f in schema])
        fields = [*schema, *empty_outputs(self.model, self.probabilities)]
        return pa.schema(fields).empty_table()

    def _report(self) -> None:
        if self.on_event is None:
            return
        source = self.source
        self.on_event(
            ChunkScored(
                rows=self.written + self.skipped,
                written=self.written,
                skipped=self.skipped,
                total_rows=source.total_rows,
                bytes_read=source.bytes_read(),
                total_bytes=source.total_bytes,
            )
        )


def _quarantine_rows(chunk: pa.Table, bad: Sequence[BadRow], first: int) -> pa.Table:
    """The bad rows of a chunk as read, after their row number, column and reason."""
    positions = pa.array([b.position for b in bad], pa.int64())
    rows = chunk.take(positions)
    numbers = pa.array([first + b.position + 1 for b in bad], pa.int64())
    columns = pa.array([b.column for b in bad], pa.string())
    reasons = pa.array([b.reason for b in bad], pa.string())
    names = [*QUARANTINE_COLUMNS, *rows.column_names]
    return pa.Table.from_arrays([numbers, columns, reasons, *rows.columns], names=names)


def _outcome(future: Future[ScoredChunk], first: int, count: int, name: str) -> ScoredChunk:
    """The outcome of one chunk, a failure that is not about single rows named with the
    chunk's rows."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except SchemaMismatchError as e:
        where = f"{name}, rows {first + 1:,}-{first + count:,}"
        raise SchemaMismatchError(f"{where}: {e.message}") from None
    except BrokenProcessPool as e:
        raise died() from e


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"The `{name}` parameter must be a positive integer; got {value!r}")


def _check_target(target: Path, source: Path, role: str) -> None:
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise InputError(f"The {role} {target} is the input; write to another file")
    if not target.parent.is_dir():
        raise InputError(f"The {role}'s folder {target.parent} does not exist")


def _default_workspace() -> Workspace:
    from forgeml.tracking import default_workspace

    return default_workspace()


def _kept_columns(keep: Sequence[str] | bool, columns: list[str], path: Path) -> list[str]:
    if keep is True:
        return list(columns)
    if keep is False:
        return []
    wanted = [keep] if isinstance(keep, str) else [str(c) for c in keep]
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise InputError(
            f"{path.name} has no column{'s' if len(absent) > 1 else ''} {quoted(absent)} to "
            f"keep; its columns: {quoted(columns)}"
        )
    return list(dict.fromkeys(wanted))
