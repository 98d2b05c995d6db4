"""Writing tables of one schema to a Parquet or CSV file that appears whole or not at all.

Arrow's Parquet writer (one row group per table) or CSV writer (header once), into a temporary
file next to the target that ``commit`` renames over it: a failure leaves no partial output.
The first table's types fix the file's schema; later tables are cast to it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

import pyarrow as pa

from forgeml.errors import InputError

__all__ = ["Writer"]


class Writer:
    """Appends tables of one schema to ``path`` (``parquet`` or ``csv``, gzipped for ``.gz``).

    CSV values are written unquoted while no value needs quotes (Arrow quotes every text
    value otherwise, numbers read as text included); a table with a delimiter, quote or line
    break in a value switches to quoting text values for the rest of the file.
    """

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        self._format = fmt
        self._compressed = path.name.lower().endswith(".gz")
        self._schema: pa.Schema | None = None
        self._sink: pa.NativeFile | None = None
        self._parquet: Any = None
        self._quote = False

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (cast to the first table's schema).

        Raises:
            InputError: the table's columns do not fit the first table's types.
        """
        if self._schema is None:
            self._open(table.schema)
        elif not table.schema.equals(self._schema):
            try:
                table = table.cast(self._schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputError(
                    f"A chunk's columns do not fit the types of the first chunk's: {e}"
                ) from None
        if self._parquet is not None:
            self._parquet.write_table(table)
            return
        import pyarrow.csv as pcsv

        assert self._sink is not None
        buffer = pa.BufferOutputStream()
        if not self._quote:
            try:
                pcsv.write_csv(table, buffer, _csv_options("none"))
            except pa.ArrowInvalid:  # a value needs quotes
                self._quote = True
                buffer = pa.BufferOutputStream()
        if self._quote:
            pcsv.write_csv(table, buffer, _csv_options("needed"))
        self._sink.write(buffer.getvalue())

    @property
    def started(self) -> bool:
        """Whether a table was written."""
        return self._schema is not None

    def _open(self, schema: pa.Schema) -> None:
        self._schema = schema
        if self._format == "parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(str(self._partial), schema)
            return
        import csv
        import io

        self._sink = pa.output_stream(
            str(self._partial), compression="gzip" if self._compressed else None
        )
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(schema.names)
        self._sink.write(header.getvalue().encode("utf-8"))

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def commit(self) -> None:
        """Finish the file and rename it over the target."""
        self._close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Drop the partial file; the target is left as it was."""
        with contextlib.suppress(pa.ArrowException, OSError):
            self._close()
        self._partial.unlink(missing_ok=True)


def _csv_options(quoting: str) -> Any:
    import pyarrow.csv as pcsv

    return pcsv.WriteOptions(include_header=False, quoting_style=quoting)
