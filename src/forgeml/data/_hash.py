"""Content hashes of tables.

The digest of a table is independent of the file it came from: a CSV and a Parquet file of the
same table, or the DataFrame itself, hash alike. Each column is hashed with pandas'
``hash_pandas_object`` (vectorised SipHash of every value; strings, categoricals and objects of
equal values hash alike), and the column digest is the sha256 of the column's name, its value
family (number, bool, datetime, text) and those 64-bit value hashes in row order. The table's
digest is the sha256 of the row count and the column digests in column order. Hashing runs at
memory speed, so re-adding a table is cheap, and the column digests let a diff name the columns
whose values changed even when their distribution did not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.util import hash_pandas_object

__all__ = ["TableHash", "hash_table", "value_family"]

_FORMAT = b"forgeml.table-hash/1"


def value_family(dtype: object) -> str:
    """The family a dtype belongs to for hashing: equal values in one family hash alike."""
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "text"


@dataclass(frozen=True, slots=True)
class TableHash:
    """The digest of a table, of each column, and a 64-bit hash per row (for duplicates)."""

    digest: str
    columns: dict[str, str]
    rows: np.ndarray


def hash_table(frame: pd.DataFrame) -> TableHash:
    """Hash a canonical table (see ``normalize_frame``: numbers are int64 or float64)."""
    n = len(frame)
    rows = np.zeros(n, dtype=np.uint64)
    table = hashlib.sha256(_FORMAT)
    table.update(str(n).encode())
    columns: dict[str, str] = {}
    for name, series in frame.items():
        hashed = hash_pandas_object(series, index=False, categorize=False).to_numpy()
        column = hashlib.sha256(_FORMAT)
        column.update(str(name).encode())
        column.update(b"\x00" + value_family(series.dtype).encode() + b"\x00")
        column.update(np.ascontiguousarray(hashed).data)
        columns[str(name)] = column.hexdigest()
        table.update(bytes.fromhex(columns[str(name)]))
        # mix each column into the row hash; the multiplier spreads bits (as in boost's
        # hash_combine) so that swapping two values between columns changes the row hash
        rows = (rows * np.uint64(0x100000001B3)) ^ hashed
    return TableHash(table.hexdigest(), columns, rows)
