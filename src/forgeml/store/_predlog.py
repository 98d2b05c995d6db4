"""The prediction log: logged predictions and the feedback (ground truth) sent for them.

A prediction is logged as one record per request and answering version: the request's input
columns and the model's outputs as compact JSON, column-oriented. Reading expands the records
back into one DataFrame row per predicted row, which is what drift and performance monitoring
consume.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeml._json import dumps_text as dumps_json
from forgeml.errors import ConflictError, InputError, NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._encryption import PAYLOAD_PREFIX, PayloadCipher, open_payload
from forgeml.store._predlog_api import (
    PredictionLogReader,
    PredictionLogWriter,
    PredictionRecord,
    WindowStats,
)
from forgeml.store._predlog_frames import expand, expand_arrow
from forgeml.store._schema import feedback_revisions, prediction_feedback, predictions

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "PREDICTION_ROLES",
    "LabelRevision",
    "PredictionLogStore",
    "PredictionRecord",
    "WindowStats",
]

PREDICTION_ROLES = frozenset({"primary", "shadow"})
_ID_LENGTH = 36
_NAME_LENGTH = 256
_PROTOCOL_LENGTH = 16
_ERROR_LENGTH = 64
# Keeps every IN list under SQLite's and psycopg's bound-parameter limits.
_CHUNK = 5_000
_SHOWN = 10
_PAGE = 10_000
_HOUR_MS = 3_600_000
_REASON_LENGTH = 1000


class PredictionLogStore:
    """Logged predictions and their feedback in the metadata store.

    Contract:
        * Thread safe and process safe: every method is one transaction, which joins the
          caller's open transaction (a unit of work, ``Database.transaction``) if there is one.
        * ``write_predictions`` is idempotent per ``(request_id, role)``: writing a record
          again (a retried batch) keeps the first copy and adds no row.
        * Feedback is written all or nothing: an unknown request id raises ``NotFoundError``
          and a label count that differs from the request's rows raises ``InputError``;
          nothing is written in either case. Sending feedback again for a request replaces it.
        * Returned values are fresh copies; the store never changes them afterwards.
    """

    def __init__(self, db: Database, cipher: PayloadCipher | None = None) -> None:
        self._db = db
        #: seals the stored payloads (inputs, outputs, labels) when the workspace has an
        #: encryption key; reading opens them (payloads stored before read as they are)
        self.cipher = cipher

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
        cipher = self.cipher
        for record in records:
            try:
                row = _prediction_row(record)
            except InputError:
                if on_invalid == "raise":
                    raise
                continue
            if cipher is not None:
                rid = row[0].encode()
                row = (
                    *row[:7],
                    cipher.seal(row[7], b"predictions.inputs:" + rid),
                    cipher.seal(row[8], b"predictions.outputs:" + rid),
                    *row[9:],
                )
            rows.append(row)
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
        _check_role(role)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InputError(f"The `limit` parameter must be a non-negative integer; got {limit!r}")
        p = predictions.c
        query = _rows_query(model, role, version, since_ms, until_ms)
        if limit is None:
            query = query.order_by(p.time_ms, p.id)
        else:
            # every record has at least one row, so the last ``limit`` records hold the last
            # ``limit`` rows
            query = query.order_by(p.time_ms.desc(), p.id.desc()).limit(limit)
        with self._db.transaction(write=False) as conn:
            records = self._opened(conn.execute(query).all())
        frame = expand(records if limit is None else records[::-1])
        if limit is not None and len(frame) > limit:
            frame = frame.iloc[len(frame) - limit :].reset_index(drop=True)
        return frame

    def batches(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        page_size: int = _PAGE,
        output: Literal["arrow", "pandas"] = "arrow",
    ) -> Iterator[pa.Table | pd.DataFrame]:
        """The logged predictions of ``model`` as consecutive batches, oldest first.

        Pages are read by keyset on ``(time_ms, id)``, each in its own short read
        transaction: memory holds one page, however long the period, and a record logged
        meanwhile after the last page read is included.

        Args:
            model: the model.
            version: only this version's predictions; ``None`` for every version.
            since_ms: only requests at or after this time (ms since the epoch).
            until_ms: only requests before this time.
            role: ``primary`` or ``shadow``.
            page_size: records (requests) per batch, at least 1.
            output: ``arrow`` for ``pyarrow.Table`` batches, ``pandas`` for DataFrames.

        Yields:
            One batch per page, with the columns of ``predictions`` (Arrow batches hold nulls
            where a DataFrame holds missing values). Failed requests are not in them.

        Raises:
            InputError: ``role``, ``page_size`` or ``output`` is not valid.
        """
        convert = _converter(output)
        for page in self._pages(model, version, since_ms, until_ms, role, page_size):
            yield convert(page)

    def windows(
        self,
        model: str,
        *,
        every_ms: int = _HOUR_MS,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        page_size: int = _PAGE,
        output: Literal["arrow", "pandas"] = "arrow",
    ) -> Iterator[tuple[int, pa.Table | pd.DataFrame]]:
        """The logged predictions of ``model``, one table per time window, oldest first.

        Windows are aligned on multiples of ``every_ms`` since the epoch (whole UTC hours by
        default); windows without predictions are skipped. Records are read by keyset pages
        (see ``batches``), so memory holds one window and one page, never the whole period.

        Args:
            model: the model.
            every_ms: the window length in milliseconds, at least 1.
            version: only this version's predictions; ``None`` for every version.
            since_ms: only requests at or after this time.
            until_ms: only requests before this time.
            role: ``primary`` or ``shadow``.
            page_size: records read per query, at least 1.
            output: ``arrow`` for ``pyarrow.Table``, ``pandas`` for DataFrames.

        Yields:
            ``(window_start_ms, table)`` for each window holding predictions; the table has
            the columns of ``predictions``.

        Raises:
            InputError: an argument is not valid.
        """
        import numpy as np

        every = _positive("every_ms", every_ms)
        convert = _converter(output)
        current: int | None = None
        held: list[Any] = []
        for page in self._pages(model, version, since_ms, until_ms, role, page_size):
            times = np.fromiter((row[2] for row in page), dtype=np.int64, count=len(page))
            buckets = times // every
            cuts = [0, *(np.flatnonzero(np.diff(buckets)) + 1).tolist(), len(page)]
            for start, end in itertools.pairwise(cuts):
                bucket = int(buckets[start])
                if bucket != current:
                    if held:
                        yield current * every, convert(held)  # type: ignore[operator]
                    current, held = bucket, []
                held.extend(page[start:end])
        if held:
            yield current * every, convert(held)  # type: ignore[operator]

    def window_stats(
        self,
        model: str,
        *,
        every_ms: int = _HOUR_MS,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        role: str = "primary",
        percentiles: Sequence[float] = (50, 90, 99),
    ) -> list[WindowStats]:
        """Per-window aggregates of ``model``'s log, computed in one SQL query.

        Counts are of requests (logged records), failed ones included; latency percentiles
        are nearest-rank (the smallest logged latency at or above that share of the
        window's requests, failed ones included), so SQLite and PostgreSQL give the same
        numbers.

        Args:
            model: the model.
            every_ms: the window length in milliseconds, aligned on multiples of it since the
                epoch (whole UTC hours by default).
            version: only this version's requests; ``None`` for every version.
            since_ms: only requests at or after this time.
            until_ms: only requests before this time.
            role: ``primary`` or ``shadow``.
            percentiles: the latency percentiles wanted, each in (0, 100], at most two
                decimals.

        Returns:
            One ``WindowStats`` per window holding requests, oldest first.

        Raises:
            InputError: an argument is not valid.
        """
        every = _positive("every_ms", every_ms)
        _check_role(role)
        wanted = _percentiles(percentiles)
        where = ["model = :model", "role = :role"]
        params: dict[str, Any] = {"model": model, "role": role, "every": every}
        for clause, name, value in (
            ("version = :version", "version", version),
            ("time_ms >= :since", "since", since_ms),
            ("time_ms < :until", "until", until_ms),
        ):
            if value is not None:
                where.append(clause)
                params[name] = int(value)
        # nearest rank of percentile q (in hundredths of a percent): ceil(q * n / 10000)
        ranks = ", ".join(
            f"MAX(CASE WHEN rank_ = ({q} * n_ + 9999) / 10000 THEN latency_ms END) AS p{i}"
            for i, q in enumerate(wanted)
        )
        sql = f"""
            WITH ranked AS (
                SELECT time_ms / CAST(:every AS BIGINT) AS bucket, latency_ms, n_rows,
                       CASE WHEN error IS NULL THEN 0 ELSE 1 END AS failed,
                       ROW_NUMBER() OVER (
                           PARTITION BY time_ms / CAST(:every AS BIGINT) ORDER BY latency_ms
                       ) AS rank_,
                       COUNT(*) OVER (PARTITION BY time_ms / CAST(:every AS BIGINT)) AS n_
                FROM predictions
                WHERE {" AND ".join(where)}
            )
            SELECT bucket, COUNT(*) AS requests,
                   SUM(CASE WHEN failed = 0 THEN n_rows ELSE 0 END) AS rows_,
                   SUM(failed) AS errors, {ranks}
            FROM ranked GROUP BY bucket ORDER BY bucket
        """
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(sa.text(sql), params).all()
        return [
            WindowStats(
                start_ms=int(row.bucket) * every,
                end_ms=(int(row.bucket) + 1) * every,
                requests=int(row.requests),
                rows=int(row.rows_),
                errors=int(row.errors),
                latency_ms={q / 100: float(getattr(row, f"p{i}")) for i, q in enumerate(wanted)},
            )
            for row in rows
        ]

    def _pages(
        self,
        model: str,
        version: int | None,
        since_ms: int | None,
        until_ms: int | None,
        role: str,
        page_size: int,
    ) -> Iterator[Sequence[Any]]:
        """Pages of predictions-query rows (plus ``id`` last), by keyset on (time_ms, id)."""
        _check_role(role)
        size = _positive("page_size", page_size)
        p = predictions.c
        query = (
            _rows_query(model, role, version, since_ms, until_ms)
            .add_columns(p.id)
            .order_by(p.time_ms, p.id)
            .limit(size)
        )
        page_query = query
        while True:
            # no transaction stays open while the caller holds a page
            with self._db.transaction(write=False) as conn:
                page = self._opened(conn.execute(page_query).all())
            if not page:
                return
            yield page
            if len(page) < size:
                return
            last_time, last_id = page[-1][2], page[-1][-1]
            # the redundant lower bound lets the (model, time_ms) index start at the page
            page_query = query.where(
                p.time_ms >= last_time,
                sa.or_(p.time_ms > last_time, sa.and_(p.time_ms == last_time, p.id > last_id)),
            )

    def _opened(self, rows: Sequence[Any]) -> Sequence[Any]:
        """Rows of ``_rows_query`` with their payloads opened (inputs, outputs, labels)."""
        cipher = self.cipher
        if cipher is None and not any(
            isinstance(text, str) and text.startswith(PAYLOAD_PREFIX)
            for row in rows
            for text in row[5:8]
        ):
            return rows
        out = []
        for row in rows:
            rid = str(row[0])
            where = f"The logged payload of request {rid}"
            out.append(
                (
                    *row[:5],
                    open_payload(cipher, row[5], b"predictions.inputs:" + rid.encode(), where),
                    open_payload(cipher, row[6], b"predictions.outputs:" + rid.encode(), where),
                    open_payload(cipher, row[7], _labels_aad(rid), where),
                    *row[8:],
                )
            )
        return out

    def _sealed(self, texts: Mapping[str, str]) -> dict[str, str]:
        """Labels as stored: sealed when the workspace encrypts payloads."""
        cipher = self.cipher
        if cipher is None:
            return dict(texts)
        return {r: cipher.seal(t, _labels_aad(r)) for r, t in texts.items()}

    def _audited(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """Labels as the audit log keeps them: in clear, or, when the workspace encrypts
        payloads, only how many each request has (the hash-chained log is never re-encrypted,
        so a payload the workspace seals never enters it)."""
        if self.cipher is None:
            return {r: orjson.loads(t) for r, t in texts.items()}
        return {r: {"sealed_labels": len(orjson.loads(t))} for r, t in texts.items()}

    def _open_labels(self, request_id: str, text: str) -> str:
        return str(
            open_payload(self.cipher, text, _labels_aad(request_id), f"The labels of {request_id}")
        )

    def reencrypt(self, cipher: PayloadCipher, *, page: int = 2_000) -> int:
        """Seal every stored payload not sealed with ``cipher``'s current key (plaintext ones
        and those of its old keys) with it, page by page, each page in one transaction.

        Returns:
            The number of rows rewritten (predictions, feedback and label revisions).
        """
        changed = 0
        p, f, v = predictions.c, prediction_feedback.c, feedback_revisions.c
        last = -1
        while True:
            with self._db.transaction() as conn:
                rows = conn.execute(
                    sa.select(p.id, p.request_id, p.inputs, p.outputs)
                    .where(p.id > last)
                    .order_by(p.id)
                    .limit(page)
                ).all()
                for id_, rid, inputs, outputs in rows:
                    if cipher.is_current(inputs) and cipher.is_current(outputs):
                        continue
                    where = f"The logged payload of request {rid}"
                    values = {}
                    for name, text in (("inputs", inputs), ("outputs", outputs)):
                        aad = f"predictions.{name}:{rid}".encode()
                        values[name] = cipher.seal(cipher.open(text, aad, where), aad)
                    conn.execute(sa.update(predictions).where(p.id == id_).values(**values))
                    changed += 1
            if len(rows) < page:
                break
            last = rows[-1][0]
        for table, key in (
            (prediction_feedback, (f.request_id,)),
            (feedback_revisions, (v.request_id, v.revision)),
        ):
            changed += self._reencrypt_labels(cipher, table, key, page)
        return changed

    def _reencrypt_labels(
        self, cipher: PayloadCipher, table: sa.Table, key: tuple[Any, ...], page: int
    ) -> int:
        changed, offset = 0, 0
        while True:
            with self._db.transaction() as conn:
                labelled = conn.execute(
                    sa.select(*key, table.c.labels).order_by(*key).offset(offset).limit(page)
                ).all()
                for row in labelled:
                    rid, text = row[0], row[-1]
                    if cipher.is_current(text):
                        continue
                    aad = _labels_aad(rid)
                    sealed = cipher.seal(cipher.open(text, aad, f"The labels of {rid}"), aad)
                    where = [c == value for c, value in zip(key, row[:-1], strict=True)]
                    conn.execute(sa.update(table).where(*where).values(labels=sealed))
                    changed += 1
            if len(labelled) < page:
                return changed
            offset += page

    # -- feedback ---------------------------------------------------------------------------

    def add_feedback(
        self,
        request_id_to_labels: Mapping[str, Sequence[Any]],
        *,
        user: str | None = None,
        correct: bool = False,
    ) -> None:
        """Record the true labels of logged requests (one label per predicted row).

        Labels are written once: feedback sent again for a labelled request is refused. A
        correction is a new entry (``correct_feedback``; ``correct=True`` here is the same
        without a reason).

        Args:
            request_id_to_labels: request id -> its labels, in the order of its rows.
            user: who sent them.
            correct: the labels correct labels already recorded (``correct_feedback``).

        Raises:
            NotFoundError: some request ids have no logged primary prediction (the message
                names up to 10 of them); nothing is written.
            InputError: a request's label count differs from its number of rows, or labels
                are not a list of JSON-serializable values; nothing is written.
            ConflictError: some requests already have labels (and this is no correction);
                nothing is written.
            StoreError: the database failed; nothing was written.
        """
        if correct:
            self.correct_feedback(request_id_to_labels, user=user)
            return
        labels = _labels_of(request_id_to_labels)
        if not labels:
            return
        now = now_ms()
        with self._db.transaction() as conn:
            texts = self._checked_labels(conn, labels)
            f = prediction_feedback.c
            before = [
                r
                for (r,) in conn.execute(
                    sa.select(f.request_id).where(f.request_id.in_(list(labels)))
                )
            ]
            if before:
                shown = ", ".join(repr(r) for r in before[:_SHOWN])
                raise ConflictError(
                    f"Request(s) {shown} already have labels; labels are written once "
                    "(send a correction to replace them)"
                )
            rows = [
                {"request_id": r, "labels": t, "time_ms": now, "created_by": user}
                for r, t in self._sealed(texts).items()
            ]
            conn.execute(prediction_feedback.insert(), rows)
            first = [{**row, "revision": 1, "reason": None} for row in rows]
            conn.execute(feedback_revisions.insert(), first)
            record_change(
                self._db,
                "feedback.add",
                _feedback_object(texts),
                user,
                after=self._audited(texts),
            )

    def correct_feedback(
        self,
        request_id_to_labels: Mapping[str, Sequence[Any]],
        *,
        user: str | None = None,
        reason: str | None = None,
    ) -> dict[str, int]:
        """Correct the labels of labelled requests: a new revision of each, audited.

        The correction becomes the request's effective labels (what ``predictions``,
        ``windows`` and so monitoring and the loop read: the latest correction wins); every
        earlier labelling stays in its history (``feedback_history``). One audit entry
        (``feedback.correct``) records who, when, the labels before and after and the reason.

        Args:
            request_id_to_labels: request id -> its corrected labels, one per row.
            user: who corrects them.
            reason: why (kept with each revision and in the audit entry; at most 1,000
                characters).

        Returns:
            request id -> the revision its corrected labels are (2 for a first correction).

        Raises:
            NotFoundError: some request ids have no logged primary prediction.
            InputError: a label count differs from the request's rows, labels are not JSON
                values, or the reason is not text of at most 1,000 characters.
            ConflictError: some requests have no labels yet (send them as feedback first);
                nothing is written.
            StoreError: the database failed; nothing was written.
        """
        if reason is not None and (not isinstance(reason, str) or len(reason) > _REASON_LENGTH):
            raise InputError(
                f"The reason of a correction is text of at most {_REASON_LENGTH} characters"
            )
        labels = _labels_of(request_id_to_labels)
        if not labels:
            return {}
        now = now_ms()
        with self._db.transaction() as conn:
            texts = self._checked_labels(conn, labels)
            f, v = prediction_feedback.c, feedback_revisions.c
            before = {
                r: self._open_labels(r, t)
                for r, t in conn.execute(
                    sa.select(f.request_id, f.labels).where(f.request_id.in_(list(texts)))
                ).all()
            }
            sealed = self._sealed(texts)
            missing = [r for r in texts if r not in before]
            if missing:
                shown = ", ".join(repr(r) for r in missing[:_SHOWN])
                raise ConflictError(
                    f"Request(s) {shown} have no labels to correct; send them as feedback first"
                )
            latest = dict(
                conn.execute(
                    sa.select(v.request_id, sa.func.max(v.revision))
                    .where(v.request_id.in_(list(texts)))
                    .group_by(v.request_id)
                ).all()
            )
            # labels recorded before revisions were kept count as revision 1
            revisions = {r: int(latest.get(r) or 1) + 1 for r in texts}
            conn.execute(
                feedback_revisions.insert(),
                [
                    {
                        "request_id": r,
                        "revision": revisions[r],
                        "labels": t,
                        "time_ms": now,
                        "created_by": user,
                        "reason": reason,
                    }
                    for r, t in sealed.items()
                ],
            )
            stmt = self._db.insert(prediction_feedback)
            stmt = stmt.on_conflict_do_update(
                index_elements=["request_id"],
                set_={c: stmt.excluded[c] for c in ("labels", "time_ms", "created_by")},
            )
            conn.execute(
                stmt,
                [
                    {"request_id": r, "labels": t, "time_ms": now, "created_by": user}
                    for r, t in sealed.items()
                ],
            )
            record_change(
                self._db,
                "feedback.correct",
                _feedback_object(texts),
                user,
                before={"labels": self._audited(before)},
                after={
                    "labels": self._audited(texts),
                    "revisions": revisions,
                    "reason": reason,
                },
            )
        return revisions

    def feedback_history(self, request_id: str) -> list[LabelRevision]:
        """Every labelling of a request, oldest first: its first feedback, then each correction.

        Returns:
            The revisions (empty when the request has no labels); the last one is the
            effective labels.
        """
        v = feedback_revisions.c
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(v.revision, v.labels, v.time_ms, v.created_by, v.reason)
                .where(v.request_id == request_id)
                .order_by(v.revision)
            ).all()
        return [
            LabelRevision(
                request_id=request_id,
                revision=int(r.revision),
                labels=orjson.loads(self._open_labels(request_id, r.labels)),
                time_ms=int(r.time_ms),
                created_by=r.created_by,
                reason=r.reason,
            )
            for r in rows
        ]

    def _checked_labels(
        self, conn: Connection, labels: Mapping[str, Sequence[Any]]
    ) -> dict[str, str]:
        """request id -> its labels as JSON text, checked against the logged predictions."""
        n_rows = self._primary_rows(conn, list(labels))
        unknown = [r for r in labels if r not in n_rows]
        if unknown:
            shown = ", ".join(repr(r) for r in unknown[:_SHOWN])
            more = f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
            raise NotFoundError(
                f"No logged prediction for {len(unknown)} request id(s): {shown}{more}"
            )
        texts: dict[str, str] = {}
        for request_id, values in labels.items():
            if len(values) != n_rows[request_id]:
                raise InputError(
                    f"Request {request_id!r} predicted {n_rows[request_id]} row(s); got "
                    f"{len(values)} label(s)"
                )
            try:
                texts[request_id] = dumps_json(values)
            except TypeError as e:
                raise InputError(
                    f"The labels of request {request_id!r} are not JSON-serializable: {e}"
                ) from e
        return texts

    def _primary_rows(self, conn: Connection, request_ids: list[str]) -> dict[str, int]:
        """request id -> n_rows of its primary prediction, for the ids that have one."""
        found: dict[str, int] = {}
        p = predictions.c
        for start in range(0, len(request_ids), _CHUNK):
            chunk = request_ids[start : start + _CHUNK]
            rows = conn.execute(
                sa.select(p.request_id, p.n_rows).where(
                    p.request_id.in_(chunk), p.role == "primary", p.error.is_(None)
                )
            )
            found.update((request_id, n) for request_id, n in rows)
        return found


@dataclass(frozen=True, slots=True)
class LabelRevision:
    """One labelling of a logged request: its first feedback (revision 1) or a correction.

    Attributes:
        request_id: the logged request.
        revision: 1 for the first feedback, then one more per correction.
        labels: one label per predicted row.
        time_ms: when it was recorded (ms since the epoch).
        created_by: who sent it (``None``: not recorded).
        reason: why it was corrected (``None`` for the first feedback or when not given).
    """

    request_id: str
    revision: int
    labels: list[Any]
    time_ms: int
    created_by: str | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """The revision as plain values."""
        return {
            "request_id": self.request_id,
            "revision": self.revision,
            "labels": self.labels,
            "time_ms": self.time_ms,
            "created_by": self.created_by,
            "reason": self.reason,
        }


def _labels_of(request_id_to_labels: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any]]:
    labels: dict[str, Sequence[Any]] = {}
    for request_id, values in request_id_to_labels.items():
        if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
            raise InputError(
                f"The labels of request {request_id!r} must be a list with one label per "
                f"row; got {type(values).__name__}"
            )
        labels[request_id] = values
    return labels


def _labels_aad(request_id: str) -> bytes:
    return b"prediction_feedback.labels:" + str(request_id).encode()


def _feedback_object(texts: Mapping[str, str]) -> str:
    """The audited object: ``feedback:ID`` for one request, ``feedback`` for several."""
    return f"feedback:{next(iter(texts))}" if len(texts) == 1 else "feedback"


# -- writing ---------------------------------------------------------------------------------

_CLIENT_ID_LENGTH = 64

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
    "error",
)


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
    error = r.error
    if error is not None and (not isinstance(error, str) or not 0 < len(error) <= _ERROR_LENGTH):
        raise InputError(f"Request {request_id}: the error code must be 1 to 64 characters")
    try:
        n = operator.index(n)
    except TypeError:
        n = -1
    if n < (0 if error is not None else 1):
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
    if error is not None:
        if outputs:
            raise InputError(f"Request {request_id}: a failed request has no outputs")
    else:
        predicted = outputs.get("predictions")
        if predicted is None or len(predicted) != n:
            raise InputError(f"Request {request_id}: outputs must hold one prediction per row")
        probabilities = outputs.get("probabilities")
        if probabilities is not None and (
            len(probabilities) != n or outputs.get("classes") is None
        ):
            raise InputError(
                f"Request {request_id}: outputs must hold one probability list per row, and classes"
            )
    client_id = r.client_request_id
    if client_id is not None and (
        not isinstance(client_id, str) or not 0 < len(client_id) <= _CLIENT_ID_LENGTH
    ):
        raise InputError(
            f"Request {request_id}: the client's request id must be 1 to {_CLIENT_ID_LENGTH} "
            "characters"
        )
    try:
        inputs_text = dumps_json(r.inputs)
        quality = r.quality
        document = {**outputs, "quality": quality} if quality else outputs
        if client_id is not None:
            document = {**document, "client_request_id": client_id}
        outputs_text = dumps_json(document)
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
        error,
    )


def _rows_query(
    model: str, role: str, version: int | None, since_ms: int | None, until_ms: int | None
) -> sa.Select[Any]:
    """The answered requests of ``model`` in ``role`` with their labels, filtered."""
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
        .where(p.model == model, p.role == role, p.error.is_(None))
    )
    if version is not None:
        query = query.where(p.version == version)
    if since_ms is not None:
        query = query.where(p.time_ms >= since_ms)
    if until_ms is not None:
        query = query.where(p.time_ms < until_ms)
    return query


def _check_role(role: str) -> None:
    if role not in PREDICTION_ROLES:
        raise InputError(f"A prediction role is 'primary' or 'shadow'; got {role!r}")


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"The `{name}` parameter must be a positive integer; got {value!r}")
    return value


def _percentiles(values: Sequence[float]) -> list[int]:
    """Percentiles in hundredths of a percent (99.9 -> 9990), checked."""
    wanted = []
    for value in values:
        try:
            q = round(float(value) * 100)
        except (TypeError, ValueError):
            q = 0
        if not 0 < q <= 10_000 or abs(q - float(value) * 100) > 1e-6:
            raise InputError(
                "The `percentiles` parameter must hold numbers in (0, 100] with at most two "
                f"decimals; got {value!r}"
            )
        wanted.append(q)
    if not wanted:
        raise InputError("The `percentiles` parameter must hold at least one percentile")
    return wanted


def _converter(output: str) -> Callable[[Sequence[Any]], Any]:
    if output == "arrow":
        return expand_arrow
    if output == "pandas":
        return expand
    raise InputError(f"The `output` parameter must be 'arrow' or 'pandas'; got {output!r}")


if TYPE_CHECKING:

    def _implements(store: PredictionLogStore) -> tuple[PredictionLogWriter, PredictionLogReader]:
        """Type-checked: the SQL log provides both sides of the interface."""
        return store, store
