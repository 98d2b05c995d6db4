"""Continuous-training records: a loop's steps, its decisions, the lease on a model and the
small state it carries between passes.

A loop writes a step when it starts and again when it ends (``start_step`` / ``finish_step``);
a loop restarted after a crash finds the step still ``started`` and runs it again under the same
key, so each step finishes once. A lease lets one holder act on a model's loop at a time, on
one machine or several: it expires unless renewed, so a crashed holder blocks nobody for long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from forgeml._json import dumps_text as dumps_json
from forgeml.errors import InputError, NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._schema import loop_decisions, loop_leases, loop_state, loop_steps

__all__ = ["LeaseRecord", "LoopDecision", "LoopStep", "LoopStore"]

STEP_STATES = ("started", "finished", "failed")


@dataclass(frozen=True, slots=True)
class LoopStep:
    """One step of a model's loop as recorded.

    Attributes:
        step_id: the row's id.
        model: the model the loop acts on.
        cycle: the retraining cycle the step belongs to (0: none).
        kind: what the step does (``assemble``, ``train``, ``compare``, ``rollout``...).
        key: the step's name within the model's history (``cycle-3/train``).
        state: ``started``, ``finished`` or ``failed``.
        attempts: how many times the step was started.
        started_at: when it was (last) started, ms since the epoch.
        finished_at: when it ended, if it did.
        holder: who ran it (the lease holder).
        output: what it produced (JSON values), once finished.
        error: why it failed, if it did.
    """

    step_id: int
    model: str
    cycle: int
    kind: str
    key: str
    state: str
    attempts: int
    started_at: int
    finished_at: int | None
    holder: str
    output: dict[str, Any] | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "step_id": self.step_id,
            "model": self.model,
            "cycle": self.cycle,
            "kind": self.kind,
            "key": self.key,
            "state": self.state,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "holder": self.holder,
            "output": self.output,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class LoopDecision:
    """One decision of a model's loop, passed or failed, with its reasons.

    Attributes:
        decision_id: the row's id (decisions are in this order).
        model: the model.
        cycle: the retraining cycle it belongs to, if any.
        kind: ``trigger``, ``compare``, ``gate``, ``rollout``, ``promote``, ``rollback``...
        name: which trigger or gate (``performance``, ``gate.latency``...).
        passed: whether it held (a trigger that fired, a gate passed, a promotion made).
        summary: one readable line with the numbers and what they were computed on.
        detail: the numbers as JSON values.
        created_at: when, ms since the epoch.
        actor: who decided (the loop's principal).
    """

    decision_id: int
    model: str
    cycle: int | None
    kind: str
    name: str
    passed: bool
    summary: str
    detail: dict[str, Any]
    created_at: int
    actor: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "decision_id": self.decision_id,
            "model": self.model,
            "cycle": self.cycle,
            "kind": self.kind,
            "name": self.name,
            "passed": self.passed,
            "summary": self.summary,
            "detail": self.detail,
            "created_at": self.created_at,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """Who holds a model's loop lease, and until when (ms since the epoch)."""

    model: str
    holder: str
    acquired_at: int
    expires_at: int


def _json(value: Mapping[str, Any] | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InputError(f"A loop {what} is a mapping; got {type(value).__name__}")
    return dumps_json(dict(value), lenient=True)


def _step(row: Any) -> LoopStep:
    values = row._asdict()
    values["output"] = None if row.output is None else orjson.loads(row.output)
    return LoopStep(**values)


def _decision(row: Any) -> LoopDecision:
    values = row._asdict()
    values["detail"] = orjson.loads(row.detail)
    values["passed"] = bool(row.passed)
    return LoopDecision(**values)


class LoopStore:
    """Steps, decisions, leases and state of continuous-training loops.

    Contract:
        * Thread safe and process safe: every method is one transaction, which joins the
          caller's open transaction if there is one.
        * A step key is unique per model: starting it again while it is ``started`` or
          ``failed`` counts another attempt on the same row; a ``finished`` step is never
          started again (``start_step`` returns it unchanged).
        * A lease has at most one holder; acquiring succeeds for the current holder (a
          renewal) or when the lease expired, decided in one statement.
        * Decisions are append-only; returned values are fresh copies.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- steps --------------------------------------------------------------------------------

    def start_step(self, model: str, *, cycle: int, kind: str, key: str, holder: str) -> LoopStep:
        """Record that a step starts (or starts again after a crash).

        Returns:
            The step as stored now: ``state == "finished"`` means it was done before and must
            not run again.
        """
        s = loop_steps.c
        now = now_ms()
        with self._db.transaction() as conn:
            row = conn.execute(sa.select(loop_steps).where(s.model == model, s.key == key)).first()
            if row is None:
                conn.execute(
                    loop_steps.insert().values(
                        model=model,
                        cycle=int(cycle),
                        kind=kind,
                        key=key,
                        state="started",
                        attempts=1,
                        started_at=now,
                        holder=holder,
                    )
                )
            elif row.state != "finished":
                conn.execute(
                    loop_steps.update()
                    .where(s.step_id == row.step_id)
                    .values(
                        state="started",
                        attempts=s.attempts + 1,
                        started_at=now,
                        finished_at=None,
                        holder=holder,
                        error=None,
                    )
                )
            row = conn.execute(sa.select(loop_steps).where(s.model == model, s.key == key)).one()
        return _step(row)

    def finish_step(self, step_id: int, output: Mapping[str, Any] | None = None) -> LoopStep:
        """Record that a step ended, with what it produced.

        Raises:
            NotFoundError: no such step.
        """
        return self._end(step_id, "finished", output=_json(output or {}, "step output"))

    def fail_step(self, step_id: int, error: str) -> LoopStep:
        """Record that a step failed (it runs again on the next pass).

        Raises:
            NotFoundError: no such step.
        """
        return self._end(step_id, "failed", error=str(error)[:4000])

    def _end(self, step_id: int, state: str, **values: Any) -> LoopStep:
        s = loop_steps.c
        with self._db.transaction() as conn:
            done = conn.execute(
                loop_steps.update()
                .where(s.step_id == step_id)
                .values(state=state, finished_at=now_ms(), **values)
            ).rowcount
            if not done:
                raise NotFoundError(f"No loop step {step_id}")
            row = conn.execute(sa.select(loop_steps).where(s.step_id == step_id)).one()
        return _step(row)

    def step(self, model: str, key: str) -> LoopStep | None:
        """The step ``key`` of ``model``'s loop, ``None`` when it never started."""
        s = loop_steps.c
        with self._db.transaction(write=False) as conn:
            row = conn.execute(sa.select(loop_steps).where(s.model == model, s.key == key)).first()
        return None if row is None else _step(row)

    def steps(self, model: str, *, state: str | None = None) -> list[LoopStep]:
        """The steps of ``model``'s loop, oldest first, optionally only in ``state``."""
        s = loop_steps.c
        if state is not None and state not in STEP_STATES:
            raise InputError(f"A step state is one of {', '.join(STEP_STATES)}; got {state!r}")
        query = sa.select(loop_steps).where(s.model == model).order_by(s.step_id)
        if state is not None:
            query = query.where(s.state == state)
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return [_step(r) for r in rows]

    # -- decisions ----------------------------------------------------------------------------

    def record_decision(
        self,
        model: str,
        *,
        kind: str,
        name: str,
        passed: bool,
        summary: str,
        detail: Mapping[str, Any] | None = None,
        cycle: int | None = None,
        actor: str,
    ) -> LoopDecision:
        """Append a decision to ``model``'s loop history."""
        values: dict[str, Any] = {
            "model": model,
            "cycle": cycle,
            "kind": kind,
            "name": name,
            "passed": bool(passed),
            "summary": summary,
            "detail": _json(detail or {}, "decision detail"),
            "created_at": now_ms(),
            "actor": actor,
        }
        with self._db.transaction() as conn:
            decision_id = conn.execute(
                loop_decisions.insert().values(**values).returning(loop_decisions.c.decision_id)
            ).scalar_one()
            record_change(
                self._db,
                "loop.decision",
                f"model:{model}",
                actor,
                after={
                    "decision_id": int(decision_id),
                    "cycle": cycle,
                    "kind": kind,
                    "name": name,
                    "passed": bool(passed),
                    "summary": summary,
                },
            )
        values["detail"] = orjson.loads(values["detail"])
        return LoopDecision(decision_id=int(decision_id), **values)

    def decisions(
        self,
        model: str,
        *,
        kind: str | None = None,
        cycle: int | None = None,
        limit: int | None = None,
    ) -> list[LoopDecision]:
        """``model``'s decisions, oldest first (with ``limit``: the most recent ones)."""
        d = loop_decisions.c
        query = sa.select(loop_decisions).where(d.model == model)
        if kind is not None:
            query = query.where(d.kind == kind)
        if cycle is not None:
            query = query.where(d.cycle == cycle)
        if limit is not None:
            if limit < 0:
                raise InputError(f"The `limit` parameter must be >= 0; got {limit}")
            query = query.order_by(d.decision_id.desc()).limit(limit)
        else:
            query = query.order_by(d.decision_id)
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(query).all()
        found = [_decision(r) for r in rows]
        return sorted(found, key=lambda x: x.decision_id)

    def loop_models(self) -> list[str]:
        """Models with any recorded loop decision or step."""
        with self._db.transaction(write=False) as conn:
            names = set(conn.execute(sa.select(loop_decisions.c.model).distinct()).scalars())
            names |= set(conn.execute(sa.select(loop_steps.c.model).distinct()).scalars())
        return sorted(names)

    # -- leases -------------------------------------------------------------------------------

    def acquire_lease(self, model: str, holder: str, *, ttl_ms: int) -> bool:
        """Take or renew ``model``'s lease for ``ttl_ms``.

        Returns:
            ``True`` when ``holder`` holds the lease now (new, renewed, or taken over from an
            expired holder); ``False`` when someone else holds an unexpired one.
        """
        if ttl_ms <= 0:
            raise InputError(f"A lease's time to live is positive; got {ttl_ms} ms")
        now = now_ms()
        stmt = self._db.insert(loop_leases).values(
            model=model, holder=holder, acquired_at=now, expires_at=now + int(ttl_ms)
        )
        lease = loop_leases.c
        stmt = stmt.on_conflict_do_update(
            index_elements=["model"],
            set_={
                "holder": stmt.excluded.holder,
                "acquired_at": sa.case(
                    (lease.holder == holder, lease.acquired_at), else_=stmt.excluded.acquired_at
                ),
                "expires_at": stmt.excluded.expires_at,
            },
            where=sa.or_(lease.holder == holder, lease.expires_at < now),
        ).returning(loop_leases.c.holder)
        with self._db.transaction() as conn:
            got = conn.execute(stmt).scalar()
        return got == holder

    def release_lease(self, model: str, holder: str) -> bool:
        """Give ``model``'s lease up if ``holder`` holds it; says whether it did."""
        lease = loop_leases.c
        with self._db.transaction() as conn:
            done = conn.execute(
                loop_leases.delete().where(lease.model == model, lease.holder == holder)
            ).rowcount
        return bool(done)

    def lease(self, model: str) -> LeaseRecord | None:
        """``model``'s lease as stored (maybe expired), ``None`` when there is none."""
        with self._db.transaction(write=False) as conn:
            row = conn.execute(sa.select(loop_leases).where(loop_leases.c.model == model)).first()
        return None if row is None else LeaseRecord(**row._asdict())

    # -- state --------------------------------------------------------------------------------

    def state(self, model: str) -> dict[str, Any]:
        """``model``'s loop state (empty when none was stored)."""
        with self._db.transaction(write=False) as conn:
            text = conn.execute(
                sa.select(loop_state.c.value).where(loop_state.c.model == model)
            ).scalar()
        return {} if text is None else dict(orjson.loads(text))

    def put_state(self, model: str, value: Mapping[str, Any]) -> None:
        """Replace ``model``'s loop state."""
        text = _json(value, "state")
        stmt = self._db.insert(loop_state).values(model=model, value=text, updated_at=now_ms())
        stmt = stmt.on_conflict_do_update(
            index_elements=["model"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        with self._db.transaction() as conn:
            conn.execute(stmt)
