"""Reading tables (CSV with delimiter and encoding detected, Parquet, DataFrames) and the
canonical form in which a table is hashed and stored."""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError, NotFoundError

__all__ = ["from_parquet_bytes", "normalize_frame", "read_table", "to_parquet_bytes"]

_SAMPLE_BYTES = 256 * 1024
_DELIMITERS = ",;\t|"
_PARQUET_MAGIC = b"PAR1"
_ENCODINGS = ("utf-8", "cp1252", "latin-1")


def read_table(source: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, str]:
    """Read ``source`` into a canonical DataFrame; return it and a description of the source.

    Raises:
        InputError: the source is empty, not a table, or has unusable column names.
        NotFoundError: there is no file at the path.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
        description = f"pandas.DataFrame ({source.shape[0]} x {source.shape[1]})"
    elif isinstance(source, str | Path):
        path = Path(source).expanduser()
        if not path.exists():
            raise NotFoundError(f"No file at {path}")
        if not path.is_file():
            raise InputError(f"{path} is not a file")
        frame = _read_file(path)
        description = str(path.resolve())
    else:
        raise InputError(
            "A dataset source must be a pandas DataFrame or a file path; "
            f"got {type(source).__name__}"
        )
    return normalize_frame(frame, where=description), description


def _read_file(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == _PARQUET_MAGIC:
        return _read_parquet(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        raise InputError(f"{path} is not a Parquet file (no PAR1 header)")
    return _read_csv(path)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several unrelated types for damaged files
        raise InputError(f"{path} is not a readable Parquet file: {e}") from e


def _open_text_sample(path: Path) -> tuple[bytes, str | None]:
    """The first bytes of the file, decompressed, and the compression pandas should use."""
    suffix = path.suffix.lower()
    openers: dict[str, Any] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener: Any
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        opener, compression = gzip.open, "gzip"
    elif magic[:3] == b"BZh":
        opener, compression = bz2.open, "bz2"
    elif magic[:6] == b"\xfd7zXZ\x00":
        opener, compression = lzma.open, "xz"
    elif magic[:4] == b"PK\x03\x04":
        return _zip_sample(path), "zip"
    else:
        opener, compression = openers.get(suffix, open), None
    try:
        with opener(path, "rb") as f:
            return f.read(_SAMPLE_BYTES), compression
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise InputError(f"{path} cannot be decompressed: {e}") from e


def _zip_sample(path: Path) -> bytes:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise InputError(f"{path} is a zip archive with {len(names)} files; expected one")
            with archive.open(names[0]) as f:
                return f.read(_SAMPLE_BYTES)
    except zipfile.BadZipFile as e:
        raise InputError(f"{path} is not a readable zip archive: {e}") from e


def detect_encoding(sample: bytes) -> str:
    """The first of UTF-8 (with or without BOM), cp1252 and Latin-1 that decodes ``sample``."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in _ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            decoder.decode(sample, final=False)  # a character cut at the sample's end is fine
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"  # pragma: no cover - latin-1 decodes every byte


def detect_delimiter(text: str) -> str:
    """The delimiter of a CSV sample: the candidate found equally often on most lines."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS)
        return dialect.delimiter
    except csv.Error:
        pass
    best, best_score = ",", 0.0
    for delimiter in _DELIMITERS:
        counts = [line.count(delimiter) for line in lines]
        if not counts or counts[0] == 0:
            continue
        agreeing = sum(c == counts[0] for c in counts) / len(counts)
        if agreeing > best_score:
            best, best_score = delimiter, agreeing
    return best


def _read_csv(path: Path) -> pd.DataFrame:
    sample, compression = _open_text_sample(path)
    if not sample.strip():
        raise InputError(f"{path} is empty")
    if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{path} is not a table: it holds binary data, not CSV text")
    encoding = detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    delimiter = detect_delimiter(text)
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            encoding=encoding,
            compression=compression,
            low_memory=False,
            skipinitialspace=False,
        )
    except pd.errors.EmptyDataError as e:
        raise InputError(f"{path} is empty: {e}") from e
    except pd.errors.ParserError as e:
        reason = str(e).strip().splitlines()[-1]
        raise InputError(f"{path} is not a table (delimiter {delimiter!r}): {reason}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not text in {encoding}: {e.reason}") from e
    _refuse_repeated_header(path, delimiter, encoding, compression)
    return frame


def _refuse_repeated_header(
    path: Path, delimiter: str, encoding: str, compression: str | None
) -> None:
    """Refuse a header that names a column twice: pandas would silently rename the second
    ``a`` to ``a.1``, and the table would no longer be the file."""
    header = pd.read_csv(
        path,
        sep=delimiter,
        encoding=encoding,
        compression=compression,
        header=None,
        nrows=1,
        dtype=str,
        keep_default_na=False,
    )
    names = [str(v) for v in header.iloc[0].tolist()] if len(header) else []
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(i)
    repeated = {n: p for n, p in positions.items() if len(p) > 1}
    if repeated:
        shown = "; ".join(
            f"{name!r} (columns {', '.join(map(str, where))})"
            for name, where in list(repeated.items())[:5]
        )
        raise InputError(
            f"{path} names a column more than once: {shown}; rename them so that every "
            "column has its own name"
        )


def normalize_frame(frame: pd.DataFrame, *, where: str = "the table") -> pd.DataFrame:
    """The canonical form of a table: string column names, a default index, no Python objects.

    A named index becomes a column. Columns of Python objects become strings (missing values
    kept), so that a column mixing numbers and words is stored, hashed and checked as text.

    Raises:
        InputError: the table has no columns or no rows, or column names repeat.
    """
    if frame.shape[1] == 0:
        raise InputError(f"{where} has no columns")
    if frame.shape[0] == 0:
        raise InputError(f"{where} has no rows")
    if not isinstance(frame.index, pd.RangeIndex) and any(n is not None for n in frame.index.names):
        frame = frame.reset_index()
    names = [str(c) for c in frame.columns]
    seen: set[str] = set()
    repeated = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if repeated:
        raise InputError(f"{where} has repeated column names: {', '.join(repeated[:5])}")
    if any(not n.strip() for n in names):
        raise InputError(f"{where} has a column with an empty name")
    columns: dict[str, Any] = {}
    changed = not _is_default_index(frame.index) or names != list(frame.columns)
    for name, (_, series) in zip(names, frame.items(), strict=True):
        canonical = _canonical_column(series)
        changed = changed or canonical is not None
        columns[name] = series.array if canonical is None else canonical
    if not changed:
        return frame  # already canonical: no copy of a large table
    return pd.DataFrame(columns, index=pd.RangeIndex(frame.shape[0]), copy=False)


def _is_default_index(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _canonical_column(series: pd.Series) -> Any:
    """The column's values in canonical form, or ``None`` when they already are."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # categories are a storage detail: keep the values
        values = series.to_numpy()
        return _from_objects(pd.Series(values, dtype=object)) if values.dtype == object else values
    if dtype == np.dtype(object):
        return _from_objects(series)
    if pd.api.types.is_extension_array_dtype(dtype) and not pd.api.types.is_string_dtype(dtype):
        # nullable integers and booleans: numpy when nothing is missing, else floats / booleans
        if isinstance(dtype, pd.DatetimeTZDtype):
            return _widen(series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())
        if series.isna().any():
            if pd.api.types.is_bool_dtype(dtype):
                return (
                    None if isinstance(dtype, pd.BooleanDtype) else series.astype("boolean").array
                )
            return series.astype("float64").to_numpy()
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        values = (
            series.to_numpy(dtype=numpy_dtype) if numpy_dtype is not None else series.to_numpy()
        )
        if values.dtype == object:
            return _from_objects(pd.Series(values, dtype=object))
        return _widen(values)
    if pd.api.types.is_string_dtype(dtype):
        return None if dtype == "str" else series.astype("str").array
    widened = _widen(series.to_numpy())
    return None if widened.dtype == dtype else widened


def _from_objects(series: pd.Series) -> Any:
    values = series.to_numpy()
    mask = pd.isna(values)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "boolean" and not mask.any():
        return values.astype(bool)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        try:
            return _widen(pd.to_numeric(series).to_numpy())
        except (ValueError, TypeError):
            pass
    if inferred in ("datetime", "datetime64", "date"):
        try:
            return _widen(pd.to_datetime(series).to_numpy())
        except (ValueError, TypeError):
            pass
    as_text = np.where(mask, None, values.astype(str))
    return pd.array(as_text, dtype="str")


def _widen(values: np.ndarray) -> np.ndarray:
    """One width per number family, so that a table hashes alike whatever file it came from."""
    kind = values.dtype.kind
    if kind == "f" and values.dtype != np.float64:
        return values.astype(np.float64)
    if kind == "i" and values.dtype != np.int64:
        return values.astype(np.int64)
    if kind == "u" and (len(values) == 0 or values.max() < 2**63):
        return values.astype(np.int64)
    if kind == "M" and values.dtype != "datetime64[ns]":
        present = values[~np.isnat(values)]
        in_range = present.size == 0 or (
            present.min() >= np.datetime64("1678-01-01")
            and present.max() <= np.datetime64("2261-12-31")
        )
        return values.astype("datetime64[ns]") if in_range else values  # ns cannot hold 1500 AD
    return values


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The table as Parquet (zstd), without the index."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def from_parquet_bytes(data: bytes) -> pd.DataFrame:
    """A table written by ``to_parquet_bytes``."""
    return pd.read_parquet(io.BytesIO(data))
