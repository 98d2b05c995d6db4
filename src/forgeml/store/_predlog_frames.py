"""Logged prediction records expanded into one DataFrame row per predicted row.

Expanding 100,000 logged records creates millions of small Python lists when parsed with a
JSON library, and the cyclic garbage collector then dominates the time. The stored documents
are therefore parsed by Arrow's JSON reader into columns, without Python objects; irregular
logs (a column missing from some requests, a column whose values change type, classes that
differ between versions) fall back to a plain Python expansion of the part concerned.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

import orjson

from forgeml._json import dumps_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

__all__ = ["OWN_COLUMNS", "expand", "expand_arrow"]

# Columns of an expanded log that input columns must not shadow.
OWN_COLUMNS = ("request_id", "version", "time_ms", "latency_ms", "prediction", "label")


def expand(records: Sequence[Any]) -> pd.DataFrame:
    """One DataFrame row per predicted row of ``records`` (rows of the predictions query)."""
    import pandas as pd
    import pyarrow as pa

    columns = _columns(records)
    return pd.DataFrame(
        {
            name: values.to_pandas() if isinstance(values, pa.Array | pa.ChunkedArray) else values
            for name, values in columns.items()
        }
    )


def expand_arrow(records: Sequence[Any]) -> pa.Table:
    """One Arrow row per predicted row of ``records``, the columns of ``expand``.

    Missing values are nulls (a probability of a request that gave none, a label never sent).
    An input column whose values change type between requests holds their JSON text.
    """
    import numpy as np
    import pyarrow as pa

    columns = _columns(records)
    label = columns["label"]
    if isinstance(label, np.ndarray) and label.dtype.kind == "f" and np.isnan(label).all():
        # no feedback: null-typed, so that batches with and without labels concatenate
        columns["label"] = pa.nulls(len(label))
    return pa.table({name: _arrow(values) for name, values in columns.items()})


def _arrow(values: Any) -> pa.Array | pa.ChunkedArray:
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    if isinstance(values, np.ndarray) and values.dtype != object:
        return pa.array(values, from_pandas=True)
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array(
            [None if v is None else dumps_text(v, lenient=True) for v in values], pa.string()
        )


def _columns(records: Sequence[Any]) -> dict[str, Any]:
    """The expanded columns: NumPy arrays, Arrow arrays or lists, one value per row."""
    import numpy as np

    if not records:
        return {c: np.array([], dtype=_EMPTY_TYPES.get(c, object)) for c in OWN_COLUMNS}
    request_ids, versions, times, latencies, counts, inputs_texts, outputs_texts, labels_texts = (
        list(zip(*records, strict=True))[:8]
    )
    n_rows = np.asarray(counts, dtype=np.int64)
    total = int(n_rows.sum())

    def rows_of(values: Any) -> np.ndarray:
        return np.repeat(np.asarray(values), n_rows)

    columns: dict[str, Any] = {
        "request_id": rows_of(np.asarray(request_ids, dtype=object)),
        "version": rows_of(np.asarray(versions, dtype=np.int64)),
        "time_ms": rows_of(np.asarray(times, dtype=np.int64)),
        "latency_ms": rows_of(np.asarray(latencies, dtype=np.float64)),
    }
    for name, values in _input_columns(inputs_texts, counts, total).items():
        columns[f"input_{name}" if name in OWN_COLUMNS else name] = values
    predicted, probabilities = _output_columns(outputs_texts, n_rows, total)
    columns["prediction"] = predicted
    columns.update(probabilities)
    columns["label"] = _label_column(labels_texts, counts, total)
    return columns


_EMPTY_TYPES = {"version": "int64", "time_ms": "int64", "latency_ms": "float64"}


def _input_columns(texts: Sequence[str], counts: Sequence[int], total: int) -> dict[str, Any]:
    table = _read_json_lines(texts)
    if table is not None:
        flat = {name: _flat(table, name, total) for name in table.column_names}
        if all(values is not None for values in flat.values()):
            return flat
    inputs = _loads_all(texts)
    layouts = dict.fromkeys(tuple(d) for d in inputs)
    names = dict.fromkeys(chain.from_iterable(layouts))
    if len(layouts) == 1:  # every request has the same columns
        return {c: list(chain.from_iterable(d[c] for d in inputs)) for c in names}
    return {
        c: list(
            chain.from_iterable(
                d[c] if c in d else repeat(None, n) for d, n in zip(inputs, counts, strict=True)
            )
        )
        for c in names
    }


def _output_columns(
    texts: Sequence[str], n_rows: np.ndarray, total: int
) -> tuple[Any, dict[str, Any]]:
    """The ``prediction`` column and the ``proba_<class>`` columns."""
    table = _read_json_lines(texts)
    predicted = probabilities = None
    if table is not None and "predictions" in table.column_names:
        predicted = _flat(table, "predictions", total)
        probabilities = _arrow_probabilities(table, total)
    if predicted is not None and probabilities is not None:
        return predicted, probabilities
    outputs = _loads_all(texts)
    if predicted is None:
        predicted = list(chain.from_iterable(o["predictions"] for o in outputs))
    if probabilities is None:
        probabilities = _probability_columns(outputs, n_rows)
    return predicted, probabilities


def _label_column(texts: Sequence[str | None], counts: Sequence[int], total: int) -> Any:
    """The feedback labels, missing for requests without feedback."""
    import numpy as np

    if all(t is None for t in texts):
        return np.full(total, np.nan)
    missing: dict[int, str] = {}
    lines = [
        f'{{"l":{t}}}'
        if t is not None
        else missing.get(n) or missing.setdefault(n, '{"l":[' + ",".join(["null"] * n) + "]}")
        for t, n in zip(texts, counts, strict=True)
    ]
    table = _read_json_lines(lines)
    if table is not None:
        flat = _flat(table, "l", total)
        if flat is not None:
            return flat
    return list(
        chain.from_iterable(
            repeat(None, n) if t is None else orjson.loads(t)
            for t, n in zip(texts, counts, strict=True)
        )
    )


def _loads_all(texts: Sequence[str]) -> list[Any]:
    # One call for the whole batch: joining the documents is cheaper than a call per record.
    return orjson.loads("[" + ",".join(texts) + "]")  # type: ignore[no-any-return]


def _read_json_lines(lines: Sequence[str]) -> pa.Table | None:
    """The JSON objects ``lines`` as an Arrow table, ``None`` when Arrow cannot type them."""
    import pyarrow as pa
    from pyarrow import json as pa_json

    data = pa.py_buffer("\n".join(lines).encode())
    try:
        table = pa_json.read_json(pa.BufferReader(data))
        # Arrow reads ISO 8601 strings as timestamps; the logged values were strings and stay
        # strings (the Python expansion keeps them so too).
        schema = pa.schema([f.with_type(_strings_for_timestamps(f.type)) for f in table.schema])
        if not schema.equals(table.schema):
            table = pa_json.read_json(
                pa.BufferReader(data), parse_options=pa_json.ParseOptions(explicit_schema=schema)
            )
    except (pa.ArrowException, ValueError):
        return None
    if table.num_rows != len(lines):
        return None
    return table


def _strings_for_timestamps(kind: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_timestamp(kind):
        return pa.string()
    if pa.types.is_list(kind):
        return pa.list_(_strings_for_timestamps(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_strings_for_timestamps(f.type)) for f in kind])
    return kind


def _flat(table: pa.Table, name: str, total: int) -> pa.Array | None:
    """The list column ``name`` flattened to one value per row, ``None`` if a list is missing."""
    import pyarrow.compute as pc

    column = table.column(name)
    if column.null_count:
        return None
    flat = pc.list_flatten(column)
    if len(flat) != total:
        return None
    return flat


def _arrow_probabilities(table: pa.Table, total: int) -> dict[str, Any] | None:
    """``proba_<class>`` columns when every request has the same classes, else ``None``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    if "probabilities" not in names:
        return {}
    probabilities = table.column("probabilities")
    if probabilities.null_count == table.num_rows:
        return {}
    if probabilities.null_count or "classes" not in names:
        return None
    classes = table.column("classes")
    if classes.null_count:
        return None
    first = classes[0].as_py()
    k = len(first)
    if not k or pc.min_max(pc.list_value_length(classes)).as_py() != {"min": k, "max": k}:
        return None
    if not pc.all(pc.equal(pc.list_flatten(classes), pa.array(first * table.num_rows))).as_py():
        return None
    rows = pc.list_flatten(probabilities)
    if len(rows) != total or rows.null_count:
        return None
    if pc.min_max(pc.list_value_length(rows)).as_py() != {"min": k, "max": k}:
        return None
    values = pc.cast(pc.list_flatten(rows), pa.float64()).to_numpy(zero_copy_only=False)
    matrix = np.asarray(values, dtype=np.float64).reshape(total, k)
    return {f"proba_{label}": matrix[:, j] for j, label in enumerate(first)}


def _probability_columns(outputs: list[dict[str, Any]], n_rows: np.ndarray) -> dict[str, Any]:
    """``proba_<class>`` columns; rows of requests without probabilities hold NaN."""
    import numpy as np

    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, o in enumerate(outputs):
        if o.get("probabilities") is not None:
            groups.setdefault(tuple(o["classes"]), []).append(i)
    if not groups:
        return {}
    total = int(n_rows.sum())
    columns: dict[str, np.ndarray] = {}
    for classes, members in groups.items():
        values = np.asarray(
            list(chain.from_iterable(outputs[i]["probabilities"] for i in members)),
            dtype=np.float64,
        ).reshape(-1, len(classes))
        if len(members) == len(outputs):
            where: slice | np.ndarray = slice(None)
        else:
            chosen = np.zeros(len(outputs), dtype=bool)
            chosen[members] = True
            where = np.repeat(chosen, n_rows)
        for j, label in enumerate(classes):
            column = columns.setdefault(f"proba_{label}", np.full(total, np.nan))
            column[where] = values[:, j]
    return columns
