"""The audit log: one entry per state change, written in the changing transaction, hash-chained.

Stores call ``record_change(db, action, object, actor, before=, after=)`` inside their write
transactions; the entry is queued on the transaction and written just before it commits
(``Database.before_commit``), so a change and its entry commit together or not at all, and the
audit lock is always the last lock a transaction takes (no lock-order deadlocks with the
stores' own row locks).

Chaining: entry ``n`` stores ``prev_hash`` (entry ``n-1``'s hash, 64 zeros for the first) and
``hash = sha256(prev_hash | seq | at | actor | actor kind | origin | action | object | before |
after)``. The next number is allocated while the one-row ``audit_head`` is locked (``FOR
UPDATE`` on PostgreSQL; SQLite writers hold the database's write lock from ``BEGIN
IMMEDIATE``), so concurrent writers keep one gap-free chain. ``verify`` walks the chain and
names the first entry that was edited, deleted or moved, and compares the end with the head
(a deleted tail).

Who and from where: interfaces and use cases set ``acting(actor, kind, origin)`` for the
duration of a change; the stores' own ``actor`` argument is used when none is set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeml._json import dumps, dumps_text
from forgeml.store._db import Database, now_ms
from forgeml.store._schema import audit_head, audit_log

__all__ = [
    "GENESIS",
    "AuditRecord",
    "AuditStore",
    "ChainReport",
    "acting",
    "current_acting",
    "entry_hash",
    "record_change",
]

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class _Acting:
    actor: str
    kind: str
    origin: str


_ACTING: ContextVar[_Acting | None] = ContextVar("forgeml_audit_acting", default=None)


@contextmanager
def acting(actor: str, kind: str = "user", origin: str = "python") -> Iterator[None]:
    """Changes recorded in this block (this thread or task) name ``actor`` and ``origin``."""
    token = _ACTING.set(_Acting(actor, kind, origin))
    try:
        yield
    finally:
        _ACTING.reset(token)


def current_acting() -> tuple[str, str, str] | None:
    """The ``acting`` block in force here, as ``(actor, kind, origin)`` (``None``: none).

    A writer on another thread (a run's flusher) re-enters it, so its changes name the same
    actor and origin as the code that started it."""
    who = _ACTING.get()
    return None if who is None else (who.actor, who.kind, who.origin)


@dataclass(frozen=True, slots=True)
class _Pending:
    at: int
    actor: str
    actor_kind: str
    origin: str
    action: str
    object: str
    before: str | None
    after: str | None


def record_change(
    db: Database,
    action: str,
    obj: str,
    actor: str | None,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """Queue the audit entry of a change in the open write transaction of ``db``.

    Args:
        db: the database whose transaction makes the change.
        action: what was done (``alias.move``, ``key.create``...).
        obj: what it was done to (``model:adult@production``, ``key:ci``...).
        actor: who, as the store was told (the ``acting`` block's actor wins).
        before, after: the state before and after, JSON-serializable (``None``: none).
    """
    if db.before_commit is None:
        AuditStore(db)  # a store opened without a Workspace still keeps its audit log
    who = _ACTING.get()
    name = who.actor if who is not None else (actor or "unknown")
    db.record(
        _Pending(
            at=now_ms(),
            actor=name,
            actor_kind=who.kind if who is not None else "user",
            origin=who.origin if who is not None else "python",
            action=action,
            object=obj[:512],
            before=None if before is None else dumps_text(before),
            after=None if after is None else dumps_text(after),
        )
    )


def entry_hash(prev_hash: str, seq: int, fields: tuple[Any, ...]) -> str:
    """The chained hash of one entry: sha256 over the previous hash and the entry's fields."""
    content = dumps([prev_hash, seq, *fields])
    return hashlib.sha256(content).hexdigest()


def _fields(row: Any) -> tuple[Any, ...]:
    return (
        int(row.at),
        row.actor,
        row.actor_kind,
        row.origin,
        row.action,
        row.object,
        row.before,
        row.after,
    )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored audit entry (``before`` and ``after`` parsed back from JSON)."""

    seq: int
    at: int
    actor: str
    actor_kind: str
    origin: str
    action: str
    object: str
    before: Any
    after: Any
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain values."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "origin": self.origin,
            "action": self.action,
            "object": self.object,
            "before": self.before,
            "after": self.after,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What ``AuditStore.verify`` found.

    Attributes:
        ok: the chain is intact from the first entry to the head.
        entries: entries checked.
        first_broken: the sequence number of the first entry that does not verify (``None``
            when intact).
        problem: what is wrong there, in words.
        head: the last entry's hash (record it elsewhere to detect a rewritten chain).
    """

    ok: bool
    entries: int
    first_broken: int | None
    problem: str | None
    head: str

    def to_dict(self) -> dict[str, Any]:
        """The report as plain values."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_broken": self.first_broken,
            "problem": self.problem,
            "head": self.head,
        }


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        at=int(row.at),
        actor=row.actor,
        actor_kind=row.actor_kind,
        origin=row.origin,
        action=row.action,
        object=row.object,
        before=None if row.before is None else orjson.loads(row.before),
        after=None if row.after is None else orjson.loads(row.after),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


_COLUMNS = (
    "seq",
    "at",
    "actor",
    "actor_kind",
    "origin",
    "action",
    "object",
    "before",
    "after",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True, slots=True)
class _Statements:
    """The writer's SQL in a dialect's parameter style."""

    lock: str
    append: str
    move_head: str

    @classmethod
    def of(cls, dialect: str) -> _Statements:
        mark = "?" if dialect == "sqlite" else "%s"
        # SQLite: the writer already holds the database's write lock (BEGIN IMMEDIATE)
        lock = " FOR UPDATE" if dialect == "postgresql" else ""
        marks = ", ".join([mark] * len(_COLUMNS))
        return cls(
            lock=f"SELECT seq, hash FROM audit_head WHERE id = 1{lock}",
            append=f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({marks})",
            move_head=f"UPDATE audit_head SET seq = {mark}, hash = {mark} WHERE id = 1",
        )


class AuditStore:
    """The audit log of a metadata store.

    Contract:
        * Append-only through forgeml: entries are written only by the stores' changing
          transactions (``record_change``); nothing updates or deletes them.
        * Sequence numbers are gap-free and the chain stays valid under concurrent writers on
          SQLite and PostgreSQL.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sql = _Statements.of(db.dialect)
        db.before_commit = self._write

    def _write(self, conn: Connection, pending: list[Any]) -> None:
        """Append the queued entries under the head's lock (called before the commit).

        Three statements in the driver's own SQL, compiled once: lock and read the head,
        insert the entries, move the head (building and caching Core statements cost more
        than the writes themselves: 0.5 ms of a 1 ms audited change, measured by
        ``benchmarks/security.py``). The head row is created by the first entry only.
        """
        sql = self._sql
        head = conn.exec_driver_sql(sql.lock).first()
        if head is None:
            conn.execute(
                self._db.insert(audit_head).on_conflict_do_nothing(index_elements=["id"]),
                {"id": 1, "seq": 0, "hash": GENESIS},
            )
            head = conn.exec_driver_sql(sql.lock).one()  # a concurrent first writer's, or ours
        seq, prev = int(head[0]), head[1]
        rows = []
        for entry in pending:
            seq += 1
            fields = (
                entry.at,
                entry.actor,
                entry.actor_kind,
                entry.origin,
                entry.action,
                entry.object,
                entry.before,
                entry.after,
            )
            digest = entry_hash(prev, seq, fields)
            rows.append((seq, *fields, prev, digest))
            prev = digest
        conn.exec_driver_sql(sql.append, rows if len(rows) > 1 else rows[0])
        conn.exec_driver_sql(sql.move_head, (seq, prev))

    def entries(
        self,
        *,
        since: int | None = None,
        actor: str | None = None,
        obj: str | None = None,
        action: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Entries in order, filtered.

        Args:
            since: only entries at or after this time (ms since the epoch).
            actor: only this actor's entries.
            obj: only entries about this object, or objects under it (``model:adult``
                matches ``model:adult@production``).
            action: only this action, or actions under it (``key`` matches ``key.create``).
            limit: the most recent ``limit`` entries (all when ``None``).
        """
        a = audit_log.c
        query = sa.select(audit_log)
        if since is not None:
            query = query.where(a.at >= since)
        if actor is not None:
            query = query.where(a.actor == actor)
        if obj is not None:
            query = query.where(sa.or_(a.object == obj, a.object.startswith(obj, autoescape=True)))
        if action is not None:
            query = query.where(
                sa.or_(a.action == action, a.action.startswith(f"{action}.", autoescape=True))
            )
        if limit is not None:
            query = query.order_by(a.seq.desc()).limit(limit)
            with self._db.transaction(write=False) as conn:
                return [_record(r) for r in reversed(conn.execute(query).all())]
        with self._db.transaction(write=False) as conn:
            return [_record(r) for r in conn.execute(query.order_by(a.seq)).all()]

    def iter_entries(self) -> Iterator[AuditRecord]:
        """Every entry in order, read in pages (no transaction held between pages)."""
        for row in self._rows():
            yield _record(row)

    def _rows(self) -> Iterator[Any]:
        a = audit_log.c
        after = 0
        while True:
            with self._db.transaction(write=False) as conn:
                page = conn.execute(
                    sa.select(audit_log).where(a.seq > after).order_by(a.seq).limit(_PAGE)
                ).all()
            if not page:
                return
            yield from page
            after = int(page[-1].seq)

    def verify(self) -> ChainReport:
        """Walk the chain: the first entry edited, deleted, inserted or moved, if any."""
        expected_seq, prev, count = 1, GENESIS, 0
        for row in self._rows():
            seq = int(row.seq)
            count += 1
            if seq != expected_seq:
                return ChainReport(
                    False,
                    count,
                    expected_seq,
                    f"entry {expected_seq} is missing (deleted or renumbered); the next "
                    f"stored entry is {seq}",
                    prev,
                )
            if row.prev_hash != prev:
                return ChainReport(
                    False,
                    count,
                    seq,
                    f"entry {seq} does not follow entry {seq - 1} (an entry before it was "
                    "edited, replaced or moved)",
                    prev,
                )
            if entry_hash(prev, seq, _fields(row)) != row.hash:
                return ChainReport(
                    False, count, seq, f"entry {seq} was edited: its hash does not match", prev
                )
            prev, expected_seq = row.hash, seq + 1
        with self._db.transaction(write=False) as conn:
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).first()
        head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), head.hash)
        if head_seq != expected_seq - 1 or head_hash != prev:
            return ChainReport(
                False,
                count,
                expected_seq,
                f"the log ends at entry {expected_seq - 1} but {head_seq} were written "
                "(entries at the end were deleted, or the head was changed)",
                prev,
            )
        return ChainReport(True, count, None, None, prev)
