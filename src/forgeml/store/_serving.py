"""The serving store: logged predictions, the feedback (ground truth) sent for them, routes.

A prediction is logged as one record per request and answering version: the request's input
columns and the model's outputs as compact JSON, column-oriented. Reading expands the records
back into one DataFrame row per predicted row, which is what drift and performance monitoring
consume. Routes are the traffic configuration of a served model (which versions answer, which
shadow), versioned by a revision number the server polls.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeml.errors import InputError, NotFoundError
from forgeml.store._db import Database, now_ms
from forgeml.store._registry import check_model_name
from forgeml.store._schema import prediction_feedback, predictions, serving_routes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

__all__ = ["PREDICTION_ROLES", "PredictionRecord", "ServingStore"]

PREDICTION_ROLES = frozenset({"primary", "shadow"})
_ID_LENGTH = 36
_NAME_LENGTH = 256
_PROTOCOL_LENGTH = 16
# Keeps every IN list under SQLite's and psycopg's bound-parameter limits.
_CHUNK = 5_000
_SHOWN = 10
_JSON = orjson.OPT_SERIALIZE_NUMPY
# Columns of ``ServingStore.predictions`` that input columns must not shadow.
_OWN_COLUMNS = ("request_id", "version", "time_ms", "latency_ms", "prediction", "label")


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One request answered by one model version, as logged.

    Attributes:
        request_id: the request's id (at most 36 characters, a UUID string).
        model: the served model's name.
        version: the version that answered.
        role: ``primary`` (its answer went to the caller) or ``shadow`` (it saw the request
            and its answer was only logged).
        time_ms: when the request arrived, milliseconds since the epoch.
        latency_ms: how long this version took to answer, in milliseconds.
        n_rows: the number of rows predicted (at least 1).
        inputs: input column name -> one value per row (JSON-like values or NumPy arrays).
        outputs: ``{"predictions": [one per row], "probabilities": [[one per class] per row]
            or None, "classes": [class labels] or None}``.
        protocol: the request protocol the caller used (``json``, ``v2``...).
    """

    request_id: str
    model: str
    version: int
    role: str
    time_ms: int
    latency_ms: float
    n_rows: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protocol: str


class ServingStore:
    """Logged predictions, feedback and serving routes in the metadata store.

    Contract:
        * Thread safe and process safe: every method is one transaction.
        * ``write_predictions`` is idempotent per ``(request_id, role)``: writing a record
          again (a retried batch) keeps the first copy and adds no row.
        * Feedback is written all or nothing: an unknown request id raises ``NotFoundError``
          and a label count that differs from the request's rows raises ``InputError``;
          nothing is written in either case. Sending feedback again for a request replaces it.
        * A route's revision increases by one on every change, clearing included, and never
          goes back (a cleared route that is set again continues from its last revision).
        * Returned values are fresh copies; the store never changes them afterwards.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- predictions ------------------------------------------------------------------------

    def write_predictions(
        self,
        records: Sequence[PredictionRecord],
        *,
        on_invalid: Literal["raise", "skip"] = "raise",
    ) -> int:
        """Store prediction records in one transaction.

        A record already stored under the same ``(request_id, role)`` is left as it is, so
        writing a batch again after an uncertain failure neither fails nor duplicates rows.

        Args:
            records: the records to store.
            on_invalid: what to do with a record that cannot be stored (a request id longer
                than 36 characters, an unknown role, list lengths that differ from
                ``n_rows``, values that are not JSON-serializable...): ``raise`` refuses the
                whole batch, ``skip`` stores the others.

        Returns:
            The number of records accepted (stored now or already stored); with
            ``on_invalid="skip"``, ``len(records)`` minus the invalid ones.

        Raises:
            InputError: a record is invalid and ``on_invalid`` is ``raise``; the message names
                its request id and what is wrong.
            StoreError: the database failed; nothing was written.
        """
        if on_invalid not in ("raise", "skip"):
            raise InputError(
                f"The `on_invalid` parameter of write_predictions must be 'raise' or 'skip'; "
                f"got {on_invalid!r}"
            )
        rows: list[tuple[Any, ...]] = []
        for record in records:
            try:
                rows.append(_prediction_row(record))
            except InputError:
                if on_invalid == "raise":
                    raise
        if rows:
            with self._db.transaction() as conn:
                conn.exec_driver_sql(self._insert_predictions_sql(), rows)
        return len(rows)

    def _insert_predictions_sql(self) -> str:
        # The driver's own executemany: the rows are already plain tuples, and skipping the
        # per-row parameter processing of a Core statement makes a batch several times faster.
        columns = ", ".join(_PREDICTION_COLUMNS)
        marks = ", ".join(
            ["?" if self._db.dialect == "sqlite" else "%s"] * len(_PREDICTION_COLUMNS)
        )
        return (
            f"INSERT INTO predictions ({columns}) VALUES ({marks}) "
            "ON CONFLICT (request_id, role) DO NOTHING"
        )

    def known_requests(self, request_ids: Sequence[str]) -> set[str]:
        """The ids among ``request_ids`` that have a logged primary prediction."""
        ids = list(dict.fromkeys(request_ids))
        with self._db.transaction(write=False) as conn:
            return set(self._primary_rows(conn, ids))

    def count_predictions(self, model: str | None = None) -> int:
        """The number of logged records (one per request and answering version).

        Args:
            model: count only this model's records; ``None`` counts every model's.
        """
        query = sa.select(sa.func.count()).select_from(predictions)
        if model is not None:
            query = query.where(predictions.c.model == model)
        with self._db.transaction(write=False) as conn:
            return int(conn.execute(query).scalar_one())

    def predictions(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The logged predictions of ``model``, one row per predicted row, oldest first.

        Args:
            model: the model.
            version: only this version's predictions; ``None`` for every version.
            since_ms: only requests at or after this time (ms since the epoch).
            until_ms: only requests before this time.
            role: ``primary`` (what callers got) or ``shadow``.
            limit: at most this many rows, the most recent ones.

        Returns:
            A DataFrame with the columns ``request_id``, ``version``, ``time_ms``,
            ``latency_ms``, then the input columns in the order they were logged, then
            ``prediction``, ``proba_<class>`` for each class when the model gave
            probabilities, and ``label`` (the feedback; missing when none was sent). An input
            column named like one of these is renamed ``input_<name>``. A row of a request
            that lacks an input column other requests have holds a missing value there.

        Raises:
            InputError: ``role`` or ``limit`` is not valid.
        """
        if role not in PREDICTION_ROLES:
            raise InputError(f"A prediction role is 'primary' or 'shadow'; got {role!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InputError(f"The `limit` parameter must be a non-negative integer; got {limit!r}")
        p, f = predictions.c, prediction_feedback.c
        query = (
            sa.select(
                p.request_id,
                p.version,
                p.time_ms,
                p.latency_ms,
                p.n_rows,
                p.inputs,
                p.outputs,
                f.labels,
            )
            .select_from(predictions.outerjoin(prediction_feedback, f.request_id == p.request_id))
            .where(p.model == model, p.role == role)
        )
        if version is not None:
            query = query.where(p.version == version)
        if since_ms is not None:
            query = query.where(p.time_ms >= since_ms)
        if until_ms is not None:
            query = query.where(p.time_ms < until_ms)
        if limit is None:
            query = query.order_by(p.time_ms, p.id)
        else:
            # every record has at least one row, so the last ``limit`` records hold the last
            # ``limit`` rows
            query = query.order_by(p.time_ms.desc(), p.id.desc()).limit(limit)
        with self._db.transaction(write=False) as conn:
            records = conn.execute(query).all()
        frame = _expand(records if limit is None else records[::-1])
        if limit is not None and len(frame) > limit:
            frame = frame.iloc[len(frame) - limit :].reset_index(drop=True)
        return frame

    # -- feedback ---------------------------------------------------------------------------

    def add_feedback(
        self,
        request_id_to_labels: Mapping[str, Sequence[Any]],
        *,
        user: str | None = None,
    ) -> None:
        """Record the true labels of logged requests (one label per predicted row).

        Feedback sent again for a request replaces what was recorded before.

        Args:
            request_id_to_labels: request id -> its labels, in the order of its rows.
            user: who sent them.

        Raises:
            NotFoundError: some request ids have no logged primary prediction (the message
                names up to 10 of them); nothing is written.
            InputError: a request's label count differs from its number of rows, or labels
                are not a list of JSON-serializable values; nothing is written.
            StoreError: the database failed; nothing was written.
        """
        labels: dict[str, Sequence[Any]] = {}
        for request_id, values in request_id_to_labels.items():
            if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
                raise InputError(
                    f"The labels of request {request_id!r} must be a list with one label per "
                    f"row; got {type(values).__name__}"
                )
            labels[request_id] = values
        if not labels:
            return
        now = now_ms()
        with self._db.transaction() as conn:
            n_rows = self._primary_rows(conn, list(labels))
            unknown = [r for r in labels if r not in n_rows]
            if unknown:
                shown = ", ".join(repr(r) for r in unknown[:_SHOWN])
                more = f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
                raise NotFoundError(
                    f"No logged prediction for {len(unknown)} request id(s): {shown}{more}"
                )
            rows = []
            for request_id, values in labels.items():
                if len(values) != n_rows[request_id]:
                    raise InputError(
                        f"Request {request_id!r} predicted {n_rows[request_id]} row(s); got "
                        f"{len(values)} label(s)"
                    )
                try:
                    text = _dumps(values)
                except TypeError as e:
                    raise InputError(
                        f"The labels of request {request_id!r} are not JSON-serializable: {e}"
                    ) from e
                rows.append(
                    {"request_id": request_id, "labels": text, "time_ms": now, "created_by": user}
                )
            stmt = self._db.insert(prediction_feedback)
            stmt = stmt.on_conflict_do_update(
                index_elements=["request_id"],
                set_={c: stmt.excluded[c] for c in ("labels", "time_ms", "created_by")},
            )
            conn.execute(stmt, rows)

    def _primary_rows(self, conn: Connection, request_ids: list[str]) -> dict[str, int]:
        """request id -> n_rows of its primary prediction, for the ids that have one."""
        found: dict[str, int] = {}
        p = predictions.c
        for start in range(0, len(request_ids), _CHUNK):
            chunk = request_ids[start : start + _CHUNK]
            rows = conn.execute(
                sa.select(p.request_id, p.n_rows).where(
                    p.request_id.in_(chunk), p.role == "primary"
                )
            )
            found.update((request_id, n) for request_id, n in rows)
        return found

    # -- routes -----------------------------------------------------------------------------

    def set_route(self, model: str, config: Mapping[str, Any], *, user: str | None = None) -> int:
        """Set the traffic route of ``model`` (replacing the current one).

        Args:
            model: the served model's name.
            config: the route, a JSON-serializable mapping; its meaning belongs to the server.
            user: who changes it.

        Returns:
            The route's new revision: 1 for a model's first route, one more on every change.

        Raises:
            InputError: the model name is invalid or the config is not a JSON-serializable
                mapping.
        """
        check_model_name(model)
        if not isinstance(config, Mapping):
            raise InputError(f"A route config must be a mapping; got {type(config).__name__}")
        try:
            text = _dumps(dict(config))
        except TypeError as e:
            raise InputError(f"The route config of {model!r} is not JSON-serializable: {e}") from e
        stmt = self._db.insert(serving_routes).values(
            model=model, config=text, updated_at=now_ms(), updated_by=user, revision=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["model"],
            set_={
                "config": stmt.excluded.config,
                "updated_at": stmt.excluded.updated_at,
                "updated_by": stmt.excluded.updated_by,
                "revision": serving_routes.c.revision + 1,
            },
        ).returning(serving_routes.c.revision)
        with self._db.transaction() as conn:
            return int(conn.execute(stmt).scalar_one())

    def clear_route(self, model: str, *, user: str | None = None) -> int:
        """Remove the route of ``model`` (the server falls back to its default).

        Args:
            model: the served model's name.
            user: who changes it.

        Returns:
            The route's new revision.

        Raises:
            NotFoundError: ``model`` has no route.
        """
        r = serving_routes.c
        with self._db.transaction() as conn:
            revision = conn.execute(
                serving_routes.update()
                .where(r.model == model, r.config.is_not(None))
                .values(config=None, updated_at=now_ms(), updated_by=user, revision=r.revision + 1)
                .returning(r.revision)
            ).scalar()
        if revision is None:
            raise NotFoundError(f"Model {model!r} has no route")
        return int(revision)

    def route(self, model: str) -> tuple[dict[str, Any], int] | None:
        """The route of ``model`` and its revision, ``None`` when it has none."""
        r = serving_routes.c
        with self._db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(r.config, r.revision).where(r.model == model, r.config.is_not(None))
            ).first()
        return None if row is None else (orjson.loads(row.config), int(row.revision))

    def routes(self) -> dict[str, tuple[dict[str, Any], int]]:
        """Every model's route: model -> (config, revision)."""
        r = serving_routes.c
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(r.model, r.config, r.revision)
                .where(r.config.is_not(None))
                .order_by(r.model)
            ).all()
        return {row.model: (orjson.loads(row.config), int(row.revision)) for row in rows}


# -- writing ---------------------------------------------------------------------------------

_PREDICTION_COLUMNS = (
    "request_id",
    "model",
    "version",
    "role",
    "time_ms",
    "latency_ms",
    "n_rows",
    "inputs",
    "outputs",
    "protocol",
)


def _json_default(value: Any) -> Any:
    """Values orjson leaves to the caller: object arrays, NumPy scalars, pandas' missing values."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_json_default, option=_JSON).decode()


def _prediction_row(r: PredictionRecord) -> tuple[Any, ...]:
    """The stored values of a record in ``_PREDICTION_COLUMNS`` order, checked."""
    request_id, n = r.request_id, r.n_rows
    if not isinstance(request_id, str) or not 0 < len(request_id) <= _ID_LENGTH:
        raise InputError(
            f"A request id is a string of 1 to {_ID_LENGTH} characters; got {str(request_id)!r:.60}"
        )
    if not isinstance(r.model, str) or not 0 < len(r.model) <= _NAME_LENGTH:
        raise InputError(f"Request {request_id}: the model name must be 1 to 256 characters")
    if r.role not in PREDICTION_ROLES:
        raise InputError(f"Request {request_id}: the role must be 'primary' or 'shadow'")
    if not isinstance(r.protocol, str) or len(r.protocol) > _PROTOCOL_LENGTH:
        raise InputError(f"Request {request_id}: the protocol must be at most 16 characters")
    try:
        n = operator.index(n)
    except TypeError:
        n = 0
    if n < 1:
        raise InputError(
            f"Request {request_id}: n_rows must be a positive integer; got {r.n_rows!r}"
        )
    latency = float(r.latency_ms)
    if not math.isfinite(latency):
        raise InputError(f"Request {request_id}: latency_ms must be finite; got {latency}")
    for column, values in r.inputs.items():
        if len(values) != n:
            raise InputError(
                f"Request {request_id}: input column {column!r} has {len(values)} values for "
                f"{n} rows"
            )
    outputs = r.outputs
    predicted = outputs.get("predictions")
    if predicted is None or len(predicted) != n:
        raise InputError(f"Request {request_id}: outputs must hold one prediction per row")
    probabilities = outputs.get("probabilities")
    if probabilities is not None and (len(probabilities) != n or outputs.get("classes") is None):
        raise InputError(
            f"Request {request_id}: outputs must hold one probability list per row, and classes"
        )
    try:
        inputs_text = _dumps(r.inputs)
        outputs_text = _dumps(outputs)
    except TypeError as e:
        raise InputError(f"Request {request_id}: a value is not JSON-serializable: {e}") from e
    return (
        request_id,
        r.model,
        int(r.version),
        r.role,
        int(r.time_ms),
        latency,
        n,
        inputs_text,
        outputs_text,
        r.protocol,
    )


# -- reading ---------------------------------------------------------------------------------
#
# Expanding 100,000 logged records creates millions of small Python lists when parsed with a
# JSON library, and the cyclic garbage collector then dominates the time. The stored documents
# are therefore parsed by Arrow's JSON reader into columns, without Python objects; irregular
# logs (a column missing from some requests, a column whose values change type, classes that
# differ between versions) fall back to a plain Python expansion of the part concerned.


def _expand(records: Sequence[Any]) -> pd.DataFrame:
    """One DataFrame row per predicted row of ``records`` (rows of the predictions query)."""
    import numpy as np
    import pandas as pd

    if not records:
        return pd.DataFrame({c: [] for c in _OWN_COLUMNS})
    request_ids, versions, times, latencies, counts, inputs_texts, outputs_texts, labels_texts = (
        zip(*records, strict=True)
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
        columns[f"input_{name}" if name in _OWN_COLUMNS else name] = values
    predicted, probabilities = _output_columns(outputs_texts, n_rows, total)
    columns["prediction"] = predicted
    columns.update(probabilities)
    columns["label"] = _label_column(labels_texts, counts, total)
    return pd.DataFrame(columns)


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


def _flat(table: pa.Table, name: str, total: int) -> pd.Series | None:
    """The list column ``name`` flattened to one value per row, ``None`` if a list is missing."""
    import pyarrow.compute as pc

    column = table.column(name)
    if column.null_count:
        return None
    flat = pc.list_flatten(column)
    if len(flat) != total:
        return None
    return flat.to_pandas()


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
