"""The run store: experiments, runs, parameters, metrics, tags and artifact links."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from forgeml._json import dumps, dumps_text
from forgeml.errors import ConflictError, InputError, InvalidFilterError, NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._filter import Clause, OrderKey, parse_filter, parse_order_by
from forgeml.store._schema import (
    experiments as experiments_table,
)
from forgeml.store._schema import (
    latest_metrics,
    metrics,
    run_artifacts,
    run_params,
    run_tags,
    runs,
)
from forgeml.store.entities import ArtifactRef, Experiment, Metric, Page, RunRecord, RunStatus

__all__ = ["RunStore", "param_to_text"]

MAX_KEY_LENGTH = 250
MAX_RESULTS_LIMIT = 50_000
_ID_PREFIX_MIN = 6
_ATTRIBUTE_COLUMNS = {
    "name": runs.c.name,
    "run_id": runs.c.run_id,
    "user": runs.c.user_name,
    "experiment": experiments_table.c.name,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "parent_run_id": runs.c.parent_run_id,
    "code_revision": runs.c.code_revision,
}


def param_to_text(value: Any) -> tuple[str, float | None]:
    """A parameter as stored: its text (strings verbatim, anything else as JSON) and, for
    real numbers, the number itself so that filters can compare numerically."""
    if isinstance(value, str):
        return value, None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
    try:
        text = dumps_text(value)
    except TypeError:
        text = str(value)
    return text, number


def _param_from_row(text: str, number: float | None) -> Any:
    if number is None:
        return text
    return json.loads(text)


def check_key(kind: str, key: Any) -> str:
    """Validate a parameter, metric or tag name."""
    if not isinstance(key, str) or not key.strip():
        raise InputError(f"A {kind} name must be a non-empty string; got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise InputError(f"The {kind} name {key[:40]!r}... exceeds {MAX_KEY_LENGTH} characters")
    return key


class RunStore:
    """Experiments and runs in the metadata store.

    Contract:
        * Thread safe and process safe: every method is one transaction, which joins the
          caller's open transaction (a unit of work, ``Database.transaction``) if there is one.
        * Returned objects are immutable and never change after they are returned.
        * ``NotFoundError`` means the run or experiment does not exist; ``ConflictError``
          means the write contradicts stored state (a parameter logged again with another
          value, logging to a finished run).
        * Parameters are write-once; tags can be overwritten; metrics append.
        * A run whose status is running but whose heartbeat is older than
          ``heartbeat_timeout_ms`` is reported as ``RunStatus.LOST``.
    """

    def __init__(self, db: Database, *, heartbeat_timeout_ms: int = 60_000) -> None:
        self._db = db
        self.heartbeat_timeout_ms = heartbeat_timeout_ms

    # -- experiments ------------------------------------------------------------------------

    def get_or_create_experiment(self, name: str, *, user: str | None = None) -> Experiment:
        """The experiment called ``name``, created when it does not exist yet."""
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise InputError(f"An experiment name must be 1 to 256 characters; got {name!r}")
        with self._db.transaction() as conn:
            row = conn.execute(
                sa.select(experiments_table).where(experiments_table.c.name == name)
            ).first()
            if row is None:
                created = conn.execute(
                    self._db.insert(experiments_table).on_conflict_do_nothing(
                        index_elements=["name"]
                    ),
                    {"name": name, "created_at": now_ms(), "created_by": user},
                )
                row = conn.execute(
                    sa.select(experiments_table).where(experiments_table.c.name == name)
                ).one()
                if created.rowcount:  # not a concurrent creator's
                    record_change(
                        self._db,
                        "experiment.create",
                        f"experiment:{name}",
                        user,
                        after={"name": name},
                    )
        return _experiment(row)

    def get_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``.

        Raises:
            NotFoundError: there is no such experiment.
        """
        with self._db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(experiments_table).where(experiments_table.c.name == name)
            ).first()
        if row is None:
            raise NotFoundError(f"No experiment named {name!r}")
        return _experiment(row)

    def list_experiments(self) -> list[Experiment]:
        """Every experiment, oldest first."""
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(experiments_table).order_by(experiments_table.c.experiment_id)
            )
            return [_experiment(r) for r in rows]

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        user: str | None = None,
        parent_run_id: str | None = None,
        code_revision: str | None = None,
        code_dirty: bool | None = None,
        environment: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        start_time: int | None = None,
    ) -> str:
        """Create a running run in ``experiment`` (created if missing); returns its id."""
        exp = self.get_or_create_experiment(experiment, user=user)
        run_id = uuid.uuid4().hex
        start = start_time if start_time is not None else now_ms()
        with self._db.transaction() as conn:
            if parent_run_id is not None:
                self._require_run(conn, parent_run_id)
            conn.execute(
                runs.insert(),
                {
                    "run_id": run_id,
                    "experiment_id": exp.experiment_id,
                    "name": name or f"run-{run_id[:8]}",
                    "status": RunStatus.RUNNING.value,
                    "user_name": user,
                    "start_time": start,
                    "heartbeat_at": start,
                    "parent_run_id": parent_run_id,
                    "code_revision": code_revision,
                    "code_dirty": code_dirty,
                    "environment": dumps_text(dict(environment or {})),
                },
            )
            if tags:
                self._upsert_tags(conn, run_id, tags)
            record_change(
                self._db,
                "run.create",
                f"run:{run_id}",
                user,
                after={
                    "experiment": experiment,
                    "name": name or f"run-{run_id[:8]}",
                    "parent_run_id": parent_run_id,
                    "tags": {k: str(v) for k, v in (tags or {}).items()},
                },
            )
        return run_id

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write metrics, parameters and tags of one run in one transaction.

        Raises:
            NotFoundError: the run does not exist.
            ConflictError: the run has ended, or a parameter already has another value.
        """
        params = params or {}
        tags = tags or {}
        with self._db.transaction() as conn:
            status = self._require_run(conn, run_id)
            if status != RunStatus.RUNNING.value:
                raise ConflictError(f"Run {run_id} has ended ({status}); it takes no more data")
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                self._set_tags_audited(conn, run_id, tags)
            if metrics:
                self._insert_metrics(conn, run_id, metrics)

    def _insert_params(self, conn: Connection, run_id: str, params: Mapping[str, Any]) -> None:
        stored = {k: param_to_text(v) for k, v in params.items()}
        existing = dict(
            conn.execute(
                sa.select(run_params.c.key, run_params.c.value).where(
                    run_params.c.run_id == run_id, run_params.c.key.in_(list(stored))
                )
            ).all()
        )
        for key, old in existing.items():
            if old != stored[key][0]:
                raise ConflictError(
                    f"Parameter {key!r} of run {run_id} is already {old}; a parameter cannot "
                    f"change (got {stored[key][0]}). Log it under another name or start a new run"
                )
        rows = [
            {"run_id": run_id, "key": k, "value": text, "value_num": num}
            for k, (text, num) in stored.items()
            if k not in existing
        ]
        if rows:
            conn.execute(run_params.insert(), rows)

    def _set_tags_audited(self, conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags of a run with one audit entry for the tags that change (none: no entry)."""
        t = run_tags.c
        before = dict(
            conn.execute(
                sa.select(t.key, t.value).where(t.run_id == run_id, t.key.in_(list(tags)))
            ).all()
        )
        after = {k: str(v) for k, v in tags.items()}
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        if not changed:
            return
        self._upsert_tags(conn, run_id, changed)
        owner = conn.execute(sa.select(runs.c.user_name).where(runs.c.run_id == run_id)).scalar()
        record_change(
            self._db,
            "run.tags",
            f"run:{run_id}",
            owner,
            before={k: before[k] for k in changed if k in before} or None,
            after=changed,
        )

    def _upsert_tags(self, conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
        stmt = self._db.insert(run_tags)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
        )
        conn.execute(stmt, [{"run_id": run_id, "key": k, "value": str(v)} for k, v in tags.items()])

    def _insert_metrics(self, conn: Connection, run_id: str, points: Sequence[Metric]) -> None:
        rows = []
        latest: dict[str, dict[str, Any]] = {}
        for m in points:
            nan = math.isnan(m.value)
            row = {
                "run_id": run_id,
                "key": m.key,
                "value": 0.0 if nan else m.value,
                "is_nan": nan,
                "step": m.step,
                "timestamp": m.timestamp,
            }
            rows.append(row)
            best = latest.get(m.key)
            if best is None or (m.step, m.timestamp) >= (best["step"], best["timestamp"]):
                latest[m.key] = row
        conn.execute(metrics.insert(), rows)
        stmt = self._db.insert(latest_metrics)
        newer = sa.or_(
            stmt.excluded.step > latest_metrics.c.step,
            sa.and_(
                stmt.excluded.step == latest_metrics.c.step,
                stmt.excluded.timestamp >= latest_metrics.c.timestamp,
            ),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={c: stmt.excluded[c] for c in ("value", "is_nan", "step", "timestamp")},
            where=newer,
        )
        conn.execute(stmt, list(latest.values()))

    def heartbeat(self, run_ids: Iterable[str], *, at: int | None = None) -> None:
        """Record that the runs' processes are alive."""
        ids = list(run_ids)
        if not ids:
            return
        with self._db.transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id.in_(ids), runs.c.status == RunStatus.RUNNING.value)
                .values(heartbeat_at=at if at is not None else now_ms())
            )

    def end_run(
        self,
        run_id: str,
        status: RunStatus = RunStatus.FINISHED,
        *,
        error: str | None = None,
        end_time: int | None = None,
    ) -> None:
        """Mark a run ended. Ending an ended run again is refused.

        Raises:
            InputError: ``status`` is not a terminal status.
            NotFoundError: no such run.
            ConflictError: the run has already ended.
        """
        status = RunStatus(status)
        if status in (RunStatus.RUNNING, RunStatus.LOST):
            raise InputError(f"A run ends as finished, failed or killed; got {status.value}")
        with self._db.transaction() as conn:
            current = self._require_run(conn, run_id)
            if current != RunStatus.RUNNING.value:
                raise ConflictError(f"Run {run_id} has already ended ({current})")
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(
                    status=status.value,
                    end_time=end_time if end_time is not None else now_ms(),
                    error=error,
                )
            )
            owner = conn.execute(
                sa.select(runs.c.user_name).where(runs.c.run_id == run_id)
            ).scalar()
            record_change(
                self._db,
                "run.end",
                f"run:{run_id}",
                owner,
                before={"status": current},
                after={"status": status.value},
            )

    def add_artifact(self, run_id: str, ref: ArtifactRef) -> None:
        """Link an artifact (already in the artifact store) to a run under ``ref.path``."""
        with self._db.transaction() as conn:
            self._require_run(conn, run_id)
            stmt = self._db.insert(run_artifacts)
            stmt = stmt.on_conflict_do_update(
                index_elements=["run_id", "path"],
                set_={c: stmt.excluded[c] for c in ("digest", "size", "kind", "created_at")},
            )
            conn.execute(
                stmt,
                {
                    "run_id": run_id,
                    "path": ref.path,
                    "digest": ref.digest,
                    "size": ref.size,
                    "kind": ref.kind,
                    "created_at": ref.created_at,
                },
            )

    # -- reading ----------------------------------------------------------------------------

    def resolve_run_id(self, run_id: str) -> str:
        """The full id of a run given its id or a unique prefix of at least 6 characters.

        Raises:
            NotFoundError: no run matches, or the prefix matches several runs.
        """
        if not isinstance(run_id, str) or not run_id:
            raise NotFoundError(f"No run with id {run_id!r}")
        with self._db.transaction(write=False) as conn:
            if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first():
                return run_id
            if len(run_id) < _ID_PREFIX_MIN or not all(c in "0123456789abcdef" for c in run_id):
                raise NotFoundError(f"No run with id {run_id!r}")
            found = conn.execute(
                sa.select(runs.c.run_id).where(runs.c.run_id.startswith(run_id)).limit(2)
            ).all()
        if not found:
            raise NotFoundError(f"No run with id {run_id!r}")
        if len(found) > 1:
            raise NotFoundError(f"The run id prefix {run_id!r} matches several runs; give more")
        return str(found[0][0])

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id (or unique id prefix).

        Raises:
            NotFoundError: no such run.
        """
        full = self.resolve_run_id(run_id)
        with self._db.transaction(write=False) as conn:
            return self._records(conn, [full])[0]

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric of one run, by step then time."""
        full = self.resolve_run_id(run_id)
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(
                    metrics.c.key,
                    metrics.c.value,
                    metrics.c.is_nan,
                    metrics.c.step,
                    metrics.c.timestamp,
                )
                .where(metrics.c.run_id == full, metrics.c.key == key)
                .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)
            ).all()
        return [Metric(r.key, math.nan if r.is_nan else r.value, r.step, r.timestamp) for r in rows]

    def search_runs(
        self,
        *,
        experiments: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RunRecord]:
        """Runs matching a filter, ordered, one page at a time.

        Args:
            experiments: experiment names to search (all when ``None``).
            filter: see ``forgeml.store._filter`` for the grammar, e.g.
                ``"metrics.auc > 0.8 and params.model = 'lgbm'"``.
            order_by: terms such as ``"metrics.auc desc"``; newest first when empty.
            max_results: page size, 1 to 50,000.
            page_token: the ``next_page_token`` of the previous page.

        Raises:
            InvalidFilterError: the filter, ordering or page token is malformed.
        """
        if not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise InputError(f"max_results must be 1 to {MAX_RESULTS_LIMIT}; got {max_results!r}")
        clauses = parse_filter(filter)
        order = parse_order_by(order_by)
        query = sa.select(runs.c.run_id, runs.c.start_time).select_from(
            runs.join(experiments_table, runs.c.experiment_id == experiments_table.c.experiment_id)
        )
        if experiments is not None:
            query = query.where(experiments_table.c.name.in_(list(experiments)))
        now = now_ms()
        for i, clause in enumerate(clauses):
            query = self._apply_clause(query, clause, i, now)
        token = _decode_token(page_token)
        next_token: dict[str, Any] = {}
        if order:
            offset = int(token.get("offset", 0)) if token else 0
            query = self._apply_order(query, order, now).offset(offset)
            next_token = {"offset": offset + max_results}
        else:
            query = query.order_by(runs.c.start_time.desc(), runs.c.run_id.desc())
            if token:
                if "after" not in token:
                    raise InvalidFilterError("The page token does not belong to this ordering")
                start, rid = token["after"]
                query = query.where(
                    sa.or_(
                        runs.c.start_time < start,
                        sa.and_(runs.c.start_time == start, runs.c.run_id < rid),
                    )
                )
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(query.limit(max_results + 1)).all()
            more = len(rows) > max_results
            rows = rows[:max_results]
            records = self._records(conn, [r.run_id for r in rows])
        if not order:
            next_token = {"after": [rows[-1].start_time, rows[-1].run_id]} if rows else {}
        return Page(tuple(records), _encode_token(next_token) if more else None)

    # -- query building ---------------------------------------------------------------------

    def _status_condition(self, status: str, now: int) -> ColumnElement[bool]:
        try:
            wanted = RunStatus(status.lower())
        except ValueError:
            raise InvalidFilterError(
                f"Unknown run status {status!r}; expected one of "
                f"{', '.join(s.value for s in RunStatus)}"
            ) from None
        cutoff = now - self.heartbeat_timeout_ms
        beat = sa.func.coalesce(runs.c.heartbeat_at, runs.c.start_time)
        running = runs.c.status == RunStatus.RUNNING.value
        if wanted is RunStatus.LOST:
            return sa.and_(running, beat < cutoff)
        if wanted is RunStatus.RUNNING:
            return sa.and_(running, beat >= cutoff)
        return runs.c.status == wanted.value

    def _apply_clause(self, query: sa.Select, clause: Clause, i: int, now: int) -> sa.Select:
        op, value = clause.op, clause.value
        if clause.kind == "attribute" and clause.key == "status":
            if op not in ("=", "!=", "in", "not in"):
                raise InvalidFilterError("status supports =, !=, IN and NOT IN")
            values = value if isinstance(value, tuple) else (value,)
            cond = sa.or_(*(self._status_condition(v, now) for v in values))
            return query.where(sa.not_(cond) if op in ("!=", "not in") else cond)
        if clause.kind == "attribute":
            return query.where(_compare(_ATTRIBUTE_COLUMNS[clause.key], op, value))
        table = {"metrics": latest_metrics, "params": run_params, "tags": run_tags}[clause.kind]
        # One correlated EXISTS per clause, not a join: (run_id, key) is unique in each child
        # table, so the answer is the same, and no join limit (64 tables on SQLite) applies.
        alias = table.alias(f"f{i}")
        on = sa.and_(alias.c.run_id == runs.c.run_id, alias.c.key == clause.key)
        if op in ("is null", "is not null"):
            present = sa.exists().where(on)
            return query.where(sa.not_(present) if op == "is null" else present)
        if clause.kind == "metrics":
            cond = sa.and_(alias.c.is_nan.is_(False), _compare(alias.c.value, op, value))
        elif clause.kind == "params":
            values = value if isinstance(value, tuple) else (value,)
            numeric = all(isinstance(v, int | float) for v in values)
            column = alias.c.value_num if numeric else alias.c.value
            cond = _compare(column, op, value)
        else:
            cond = _compare(alias.c.value, op, value)
        return query.where(sa.exists().where(on, cond))

    def _apply_order(self, query: sa.Select, order: list[OrderKey], now: int) -> sa.Select:
        terms: list[Any] = []
        for i, key in enumerate(order):
            if key.kind == "attribute":
                column: Any = runs.c.status if key.key == "status" else _ATTRIBUTE_COLUMNS[key.key]
                query = query.add_columns(column.label(f"o{i}"))
                columns = [column]
            else:
                table = {"metrics": latest_metrics, "params": run_params, "tags": run_tags}[
                    key.kind
                ]
                alias = table.alias(f"o{i}")
                query = query.outerjoin(
                    alias, sa.and_(alias.c.run_id == runs.c.run_id, alias.c.key == key.key)
                )
                if key.kind == "metrics":
                    value = sa.case((alias.c.is_nan.is_(True), None), else_=alias.c.value)
                    columns = [value]
                elif key.kind == "params":
                    columns = [alias.c.value_num, alias.c.value]
                else:
                    columns = [alias.c.value]
            for column in columns:
                # missing values last, whatever the direction
                terms.append(sa.case((column.is_(None), 1), else_=0))
                terms.append(column.desc() if key.descending else column.asc())
        terms += [runs.c.start_time.desc(), runs.c.run_id.desc()]
        return query.order_by(*terms)

    # -- assembling records -----------------------------------------------------------------

    def _records(self, conn: Connection, run_ids: list[str]) -> list[RunRecord]:
        if not run_ids:
            return []
        base = conn.execute(
            sa.select(runs, experiments_table.c.name.label("experiment_name"))
            .select_from(runs.join(experiments_table))
            .where(runs.c.run_id.in_(run_ids))
        ).all()
        params: dict[str, dict[str, Any]] = {r: {} for r in run_ids}
        for row in conn.execute(
            sa.select(run_params).where(run_params.c.run_id.in_(run_ids)).order_by(run_params.c.key)
        ):
            params[row.run_id][row.key] = _param_from_row(row.value, row.value_num)
        values: dict[str, dict[str, float]] = {r: {} for r in run_ids}
        for row in conn.execute(
            sa.select(latest_metrics)
            .where(latest_metrics.c.run_id.in_(run_ids))
            .order_by(latest_metrics.c.key)
        ):
            values[row.run_id][row.key] = math.nan if row.is_nan else row.value
        tags: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        for row in conn.execute(
            sa.select(run_tags).where(run_tags.c.run_id.in_(run_ids)).order_by(run_tags.c.key)
        ):
            tags[row.run_id][row.key] = row.value
        artifacts: dict[str, list[ArtifactRef]] = {r: [] for r in run_ids}
        for row in conn.execute(
            sa.select(run_artifacts)
            .where(run_artifacts.c.run_id.in_(run_ids))
            .order_by(run_artifacts.c.path)
        ):
            artifacts[row.run_id].append(
                ArtifactRef(row.path, row.digest, row.size, row.kind, row.created_at)
            )
        now = now_ms()
        by_id = {
            row.run_id: RunRecord(
                run_id=row.run_id,
                experiment_id=row.experiment_id,
                experiment=row.experiment_name,
                name=row.name,
                status=self._effective_status(row.status, row.heartbeat_at, row.start_time, now),
                start_time=row.start_time,
                end_time=row.end_time,
                heartbeat_at=row.heartbeat_at,
                user=row.user_name,
                parent_run_id=row.parent_run_id,
                code_revision=row.code_revision,
                code_dirty=row.code_dirty,
                environment=json.loads(row.environment) if row.environment else {},
                error=row.error,
                params=params[row.run_id],
                metrics=values[row.run_id],
                tags=tags[row.run_id],
                artifacts=tuple(artifacts[row.run_id]),
            )
            for row in base
        }
        return [by_id[r] for r in run_ids]

    def _effective_status(self, status: str, beat: int | None, start: int, now: int) -> RunStatus:
        value = RunStatus(status)
        if value is RunStatus.RUNNING and (beat or start) < now - self.heartbeat_timeout_ms:
            return RunStatus.LOST
        return value

    # -- helpers ----------------------------------------------------------------------------

    def _require_run(self, conn: Connection, run_id: str) -> str:
        row = conn.execute(sa.select(runs.c.status).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFoundError(f"No run with id {run_id!r}")
        return str(row[0])


def _experiment(row: Any) -> Experiment:
    return Experiment(row.experiment_id, row.name, row.created_at, row.description, row.created_by)


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "like":
        return column.like(value)
    if op == "ilike":
        return column.ilike(value)
    if op == "in":
        return column.in_(list(value))
    if op == "not in":
        return column.not_in(list(value))
    raise InvalidFilterError(f"Unsupported operator {op!r}")


def _encode_token(token: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(dumps(token)).decode().rstrip("=")


def _decode_token(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidFilterError(f"Malformed page token {token[:32]!r}") from None
    if not isinstance(decoded, dict):
        raise InvalidFilterError(f"Malformed page token {token[:32]!r}")
    return decoded
