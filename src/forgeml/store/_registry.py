"""The registry store: models, their numbered versions, movable aliases and an append-only history.

Only metadata lives here. A version's bundle (model file, manifest, reference sample, card) is a
tree blob in the artifact store named by ``bundle_digest``; what is inside belongs to the
registry capability (``forgeml.registry``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeml._json import dumps_text
from forgeml.errors import ConflictError, ForgeMLError, InputError, NotFoundError
from forgeml.refs import is_version_text, parse_version
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._schema import model_aliases, model_events, model_versions, models

__all__ = [
    "ModelEvent",
    "ModelRecord",
    "ModelStatus",
    "ModelVersionRecord",
    "RegistryStore",
    "check_alias",
    "check_model_name",
]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
# Names a reference can take besides an alias: ``latest`` and version numbers.
RESERVED_ALIASES = frozenset({"latest"})
# How many version numbers a registration tries before giving up to concurrent ones.
_VERSION_ATTEMPTS = 64


class ModelStatus(StrEnum):
    """The life-cycle state of a version.

    ``active`` versions are loadable and can be promoted; ``archived`` versions are kept for
    reference (loadable, not listed by default, can be restored or promoted again);
    ``retired`` versions are final: never loaded for serving, never promoted.
    """

    ACTIVE = "active"
    ARCHIVED = "archived"
    RETIRED = "retired"


# status -> the statuses it may change to
_TRANSITIONS: dict[ModelStatus, frozenset[ModelStatus]] = {
    ModelStatus.ACTIVE: frozenset({ModelStatus.ARCHIVED, ModelStatus.RETIRED}),
    ModelStatus.ARCHIVED: frozenset({ModelStatus.ACTIVE, ModelStatus.RETIRED}),
    ModelStatus.RETIRED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A registered model: its name, latest version number and current aliases."""

    name: str
    latest_version: int
    created_at: int
    updated_at: int
    created_by: str | None = None
    description: str | None = None
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "description": self.description,
            "aliases": dict(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    """A registered model version as stored.

    Attributes:
        name: the model's name.
        version: its number, from 1, gap-free per model.
        status: active, archived or retired.
        flavor: how the model is stored and run (``lightgbm``, ``xgboost``, ``sklearn``).
        bundle_digest: the tree blob of the bundle in the artifact store.
        bundle_size: total bytes of the bundle's files.
        metrics: evaluation metrics recorded at registration.
        run_id: the training run, if any.
        dataset: the training dataset version (``NAME@VERSION``), if any.
        aliases: the aliases that point at this version now.
    """

    name: str
    version: int
    status: ModelStatus
    flavor: str
    bundle_digest: str
    bundle_size: int
    created_at: int
    task: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    dataset: str | None = None
    description: str | None = None
    created_by: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status.value,
            "flavor": self.flavor,
            "task": self.task,
            "bundle_digest": self.bundle_digest,
            "bundle_size": self.bundle_size,
            "metrics": dict(self.metrics),
            "run_id": self.run_id,
            "dataset": self.dataset,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """One entry of a model's append-only history.

    ``kind`` is ``registered`` (``version`` was created), ``alias`` (``alias`` moved from
    ``from_version`` to ``to_version``; ``to_version`` is ``None`` when it was removed) or
    ``status`` (``version`` went from ``from_status`` to ``to_status``).
    """

    name: str
    kind: str
    at: int
    version: int | None = None
    alias: str | None = None
    from_version: int | None = None
    to_version: int | None = None
    from_status: str | None = None
    to_status: str | None = None
    actor: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "kind": self.kind,
            "at": self.at,
            "version": self.version,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "actor": self.actor,
            "reason": self.reason,
        }


def check_model_name(name: Any) -> str:
    """Validate a model name: 1 to 256 letters, digits, ``.``, ``_`` or ``-``.

    Raises:
        InputError: the name is not valid.
    """
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise InputError(
            f"A model name is 1 to 256 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit; got {name!r}"
        )
    return name


def check_alias(alias: Any) -> str:
    """Validate an alias: lowercase letter, then up to 63 lowercase letters, digits, _ or -.

    Raises:
        InputError: the alias is not valid or reserved (``latest``).
    """
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InputError(
            "An alias is a lowercase letter followed by up to 63 lowercase letters, digits, "
            f"'_' or '-' (e.g. production, champion); got {alias!r}"
        )
    if alias in RESERVED_ALIASES:
        raise InputError(f"The alias {alias!r} is reserved; choose another name")
    return alias


def _dumps(value: Any) -> str:
    return dumps_text(value)


class RegistryStore:
    """Models, versions, aliases and their history in the metadata store.

    Contract:
        * Thread safe and process safe: every method is one transaction, which joins the
          caller's open transaction (a unit of work, ``Database.transaction``) if there is one.
        * Returned objects are immutable and never change after they are returned.
        * Version numbers of one model start at 1 and are allocated under a lock on the
          model's row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are exclusive),
          so concurrent registrations get distinct, gap-free numbers. The bundle is stored
          before that transaction: no lock is held while blobs are uploaded.
        * Moving an alias is one transaction that updates its row in place and appends to the
          history: a concurrent reader resolves the old or the new version, never none.
        * The history is append-only: every registration, alias move and status change
          records who, when and why. An event's time is taken after the model's row is
          locked and is strictly later than the model's previous event, so the history is
          in commit order and ``alias_at(T)`` is exact even with concurrent writers.
        * ``NotFoundError`` means no such model, version or alias; ``ConflictError`` means the
          change contradicts the version's state (promoting a retired version, retiring a
          version an alias points at); ``InputError`` means an invalid name or alias.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writes -----------------------------------------------------------------------------

    def add_version(
        self,
        name: str,
        *,
        flavor: str,
        bundle: Callable[[int], tuple[str, int]],
        task: str | None = None,
        metrics: Mapping[str, float] | None = None,
        run_id: str | None = None,
        dataset: str | None = None,
        description: str | None = None,
        created_by: str | None = None,
    ) -> ModelVersionRecord:
        """Register the next version of ``name`` (the model is created if missing).

        The bundle is stored before the write transaction, never under the model's lock, so
        a slow upload blocks no other registration. The number it is written for is the one
        expected next; the transaction then takes that number under the model's lock, or,
        when a concurrent registration took it first, ``bundle`` is called again with the
        next one (content-addressed blobs that did not change are the same blobs).

        Args:
            name: the model.
            flavor: how the bundle's model is stored and run.
            bundle: called with a version number, outside any transaction; writes the bundle
                for that number and returns ``(digest, size)`` of its tree blob. If it raises,
                nothing is recorded and no number is used.
            task: ``binary``, ``multiclass``, ``regression``...
            metrics: evaluation metrics to record with the version.
            run_id: the training run.
            dataset: the training dataset version, ``NAME@VERSION``.
            description: free text.
            created_by: who registers it.

        Returns:
            The new version.

        Raises:
            ConflictError: concurrent registrations took every number tried.
            ForgeMLError: called inside an open transaction (a unit of work), where the
                bundle could not be stored before the write.
        """
        check_model_name(name)
        if self._db.in_transaction():
            raise ForgeMLError(
                "add_version stores the bundle before its own transaction; call it outside "
                "a unit of work"
            )
        for _ in range(_VERSION_ATTEMPTS):
            with self._db.transaction(write=False) as conn:
                latest = conn.execute(
                    sa.select(models.c.latest_version).where(models.c.name == name)
                ).scalar()
            version = (latest or 0) + 1
            digest, size = bundle(version)
            record = self._insert_version(
                name,
                version,
                flavor=flavor,
                digest=digest,
                size=size,
                task=task,
                metrics=metrics,
                run_id=run_id,
                dataset=dataset,
                description=description,
                created_by=created_by,
            )
            if record is not None:
                return record
        raise ConflictError(
            f"Concurrent registrations of model {name!r} took every version number tried "
            f"({_VERSION_ATTEMPTS} attempts); register again"
        )

    def _insert_version(
        self,
        name: str,
        version: int,
        *,
        flavor: str,
        digest: str,
        size: int,
        task: str | None,
        metrics: Mapping[str, float] | None,
        run_id: str | None,
        dataset: str | None,
        description: str | None,
        created_by: str | None,
    ) -> ModelVersionRecord | None:
        """Record ``name@version`` if it is still the next number, else ``None``."""
        now = now_ms()
        with self._db.transaction() as conn:
            conn.execute(
                self._db.insert(models).on_conflict_do_nothing(index_elements=["name"]),
                {
                    "name": name,
                    "latest_version": 0,
                    "created_at": now,
                    "created_by": created_by,
                    "updated_at": now,
                    "description": None,
                },
            )
            lock = sa.select(models).where(models.c.name == name)
            if self._db.dialect == "postgresql":
                lock = lock.with_for_update()
            parent = conn.execute(lock).one()
            if parent.latest_version + 1 != version:
                return None
            now = self._event_time(conn, parent.model_id)
            conn.execute(
                models.update()
                .where(models.c.model_id == parent.model_id)
                .values(latest_version=version, updated_at=now)
            )
            conn.execute(
                model_versions.insert(),
                {
                    "model_id": parent.model_id,
                    "version": version,
                    "status": ModelStatus.ACTIVE.value,
                    "flavor": flavor,
                    "task": task,
                    "bundle_digest": digest,
                    "bundle_size": size,
                    "metrics": _dumps(dict(metrics or {})),
                    "run_id": run_id,
                    "dataset": dataset,
                    "description": description,
                    "created_by": created_by,
                    "created_at": now,
                },
            )
            self._event(conn, parent.model_id, "registered", now, created_by, None, version=version)
            record_change(
                self._db,
                "model.register",
                f"model:{name}@{version}",
                created_by,
                after={"flavor": flavor, "bundle": digest, "run_id": run_id, "dataset": dataset},
            )
            return self._version(conn, name, version)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> ModelEvent:
        """Point ``alias`` of ``name`` at ``version`` (moving it if it points elsewhere).

        Returns:
            The recorded history event (``from_version`` is where the alias pointed before).

        Raises:
            InputError: the alias is invalid or reserved.
            NotFoundError: no such model or version.
            ConflictError: the version is retired.
        """
        check_alias(alias)
        with self._db.transaction() as conn:
            model_id = self._lock_model(conn, name)
            now = self._event_time(conn, model_id)
            status = self._status(conn, model_id, name, version)
            if status is ModelStatus.RETIRED:
                raise ConflictError(
                    f"{name}@{version} is retired; a retired version cannot take an alias"
                )
            old = conn.execute(
                sa.select(model_aliases.c.version).where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
                )
            ).scalar()
            stmt = self._db.insert(model_aliases)
            stmt = stmt.on_conflict_do_update(
                index_elements=["model_id", "alias"],
                set_={c: stmt.excluded[c] for c in ("version", "updated_at", "updated_by")},
            )
            conn.execute(
                stmt,
                {
                    "model_id": model_id,
                    "alias": alias,
                    "version": version,
                    "updated_at": now,
                    "updated_by": actor,
                },
            )
            self._event(
                conn,
                model_id,
                "alias",
                now,
                actor,
                reason,
                version=version,
                alias=alias,
                from_version=old,
                to_version=version,
            )
            conn.execute(
                models.update().where(models.c.model_id == model_id).values(updated_at=now)
            )
            record_change(
                self._db,
                "alias.move",
                f"model:{name}@{alias}",
                actor,
                before={"version": old},
                after={"version": version, "reason": reason},
            )
        return ModelEvent(
            name, "alias", now, version, alias, old, version, actor=actor, reason=reason
        )

    def remove_alias(
        self, name: str, alias: str, *, actor: str | None = None, reason: str | None = None
    ) -> ModelEvent:
        """Remove ``alias`` of ``name``.

        Raises:
            NotFoundError: no such model or alias.
        """
        check_alias(alias)
        with self._db.transaction() as conn:
            model_id = self._lock_model(conn, name)
            now = self._event_time(conn, model_id)
            old = conn.execute(
                sa.select(model_aliases.c.version).where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
                )
            ).scalar()
            if old is None:
                raise NotFoundError(f"Model {name!r} has no alias {alias!r}")
            conn.execute(
                model_aliases.delete().where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
                )
            )
            self._event(
                conn, model_id, "alias", now, actor, reason, version=old, alias=alias,
                from_version=old, to_version=None,
            )  # fmt: skip
            record_change(
                self._db,
                "alias.remove",
                f"model:{name}@{alias}",
                actor,
                before={"version": old},
                after={"version": None, "reason": reason},
            )
        return ModelEvent(name, "alias", now, old, alias, old, None, actor=actor, reason=reason)

    def set_status(
        self,
        name: str,
        version: int,
        status: ModelStatus | str,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> ModelVersionRecord:
        """Change the status of a version (archive, restore, retire).

        Allowed: active -> archived | retired, archived -> active | retired. Setting the
        current status again changes nothing and records nothing.

        Raises:
            InputError: ``status`` is not a status.
            NotFoundError: no such model or version.
            ConflictError: the change is not allowed (a retired version is final), or an alias
                points at the version (move the alias first).
        """
        try:
            target = ModelStatus(status)
        except ValueError:
            raise InputError(
                f"A version status is one of {', '.join(s.value for s in ModelStatus)}; "
                f"got {status!r}"
            ) from None
        with self._db.transaction() as conn:
            model_id = self._lock_model(conn, name)
            now = self._event_time(conn, model_id)
            current = self._status(conn, model_id, name, version)
            if current is target:
                return self._version(conn, name, version)
            if target not in _TRANSITIONS[current]:
                raise ConflictError(
                    f"{name}@{version} is {current.value}; it cannot become {target.value}"
                )
            if target is not ModelStatus.ACTIVE:
                held = conn.execute(
                    sa.select(model_aliases.c.alias)
                    .where(model_aliases.c.model_id == model_id, model_aliases.c.version == version)
                    .order_by(model_aliases.c.alias)
                ).scalars()
                aliases = list(held)
                if aliases:
                    raise ConflictError(
                        f"{name}@{version} is @{', @'.join(aliases)}; move or remove the alias "
                        f"before it is {target.value}"
                    )
            conn.execute(
                model_versions.update()
                .where(model_versions.c.model_id == model_id, model_versions.c.version == version)
                .values(status=target.value)
            )
            self._event(
                conn, model_id, "status", now, actor, reason, version=version,
                from_status=current.value, to_status=target.value,
            )  # fmt: skip
            record_change(
                self._db,
                "model.status",
                f"model:{name}@{version}",
                actor,
                before={"status": current.value},
                after={"status": target.value, "reason": reason},
            )
            return self._version(conn, name, version)

    # -- reading ----------------------------------------------------------------------------

    def get_model(self, name: str) -> ModelRecord:
        """The model called ``name`` with its current aliases.

        Raises:
            NotFoundError: no such model.
        """
        with self._db.transaction(write=False) as conn:
            row = conn.execute(sa.select(models).where(models.c.name == name)).first()
            if row is None:
                raise NotFoundError(f"No model named {name!r}")
            return self._models(conn, [row])[0]

    def list_models(self) -> list[ModelRecord]:
        """Every model, by name."""
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(sa.select(models).order_by(models.c.name)).all()
            return self._models(conn, rows)

    def get_version(self, name: str, version: int) -> ModelVersionRecord:
        """One version of ``name``.

        Raises:
            NotFoundError: no such model or version.
        """
        with self._db.transaction(write=False) as conn:
            self._model_id(conn, name)
            return self._version(conn, name, version)

    def list_versions(
        self, name: str, *, statuses: Iterable[ModelStatus | str] | None = None
    ) -> list[ModelVersionRecord]:
        """Versions of ``name``, newest first, optionally only those with ``statuses``.

        Raises:
            NotFoundError: no such model.
        """
        with self._db.transaction(write=False) as conn:
            model_id = self._model_id(conn, name)
            query = sa.select(model_versions).where(model_versions.c.model_id == model_id)
            if statuses is not None:
                query = query.where(
                    model_versions.c.status.in_([ModelStatus(s).value for s in statuses])
                )
            rows = conn.execute(query.order_by(model_versions.c.version.desc())).all()
            return self._versions(conn, name, model_id, rows)

    def resolve(self, name: str, ref: str | int) -> ModelVersionRecord:
        """The version ``ref`` names: a number, ``latest`` (the newest active version) or an
        alias. Read in one transaction: a concurrent alias move is seen entirely or not at all.

        Raises:
            InputError: ``ref`` is neither a number, ``latest`` nor a valid alias.
            NotFoundError: no such model, version or alias, or no active version for
                ``latest``.
        """
        text = str(ref).strip()
        with self._db.transaction(write=False) as conn:
            model_id = self._model_id(conn, name)
            if is_version_text(text):
                return self._version(conn, name, parse_version(text))
            if text == "latest":
                version = conn.execute(
                    sa.select(sa.func.max(model_versions.c.version)).where(
                        model_versions.c.model_id == model_id,
                        model_versions.c.status == ModelStatus.ACTIVE.value,
                    )
                ).scalar()
                if version is None:
                    raise NotFoundError(f"Model {name!r} has no active version")
                return self._version(conn, name, int(version))
            check_alias(text)
            version = conn.execute(
                sa.select(model_aliases.c.version).where(
                    model_aliases.c.model_id == model_id, model_aliases.c.alias == text
                )
            ).scalar()
            if version is None:
                known = conn.execute(
                    sa.select(model_aliases.c.alias)
                    .where(model_aliases.c.model_id == model_id)
                    .order_by(model_aliases.c.alias)
                ).scalars()
                names = ", ".join(known) or "none"
                raise NotFoundError(f"Model {name!r} has no alias {text!r} (aliases: {names})")
            return self._version(conn, name, int(version))

    def history(
        self, name: str, *, alias: str | None = None, limit: int | None = None
    ) -> list[ModelEvent]:
        """The model's history, oldest first; only one alias's moves when ``alias`` is given.

        Raises:
            NotFoundError: no such model.
        """
        with self._db.transaction(write=False) as conn:
            model_id = self._model_id(conn, name)
            query = sa.select(model_events).where(model_events.c.model_id == model_id)
            if alias is not None:
                query = query.where(model_events.c.alias == alias)
            query = query.order_by(model_events.c.at, model_events.c.event_id)
            rows = conn.execute(query).all()
        events = [_event(name, r) for r in rows]
        return events[-limit:] if limit else events

    def alias_at(self, name: str, alias: str, at: int) -> int | None:
        """The version ``alias`` pointed at, at time ``at`` (ms since the epoch); ``None`` if
        it pointed nowhere then.

        Raises:
            NotFoundError: no such model.
        """
        check_alias(alias)
        with self._db.transaction(write=False) as conn:
            model_id = self._model_id(conn, name)
            row = conn.execute(
                sa.select(model_events.c.to_version)
                .where(
                    model_events.c.model_id == model_id,
                    model_events.c.alias == alias,
                    model_events.c.at <= at,
                )
                .order_by(model_events.c.at.desc(), model_events.c.event_id.desc())
                .limit(1)
            ).first()
        return None if row is None else row.to_version

    def versions_trained_on(self, dataset: str) -> list[ModelVersionRecord]:
        """Every model version whose training dataset is ``dataset`` (``NAME@VERSION``)."""
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(model_versions, models.c.name)
                .select_from(model_versions.join(models))
                .where(model_versions.c.dataset == dataset)
                .order_by(models.c.name, model_versions.c.version)
            ).all()
            return [
                self._versions(conn, r.name, r.model_id, [r])[0] for r in rows
            ]  # few rows: one alias query each

    def versions_of_run(self, run_id: str) -> list[ModelVersionRecord]:
        """Every model version registered from the run ``run_id``."""
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(model_versions, models.c.name)
                .select_from(model_versions.join(models))
                .where(model_versions.c.run_id == run_id)
                .order_by(models.c.name, model_versions.c.version)
            ).all()
            return [self._versions(conn, r.name, r.model_id, [r])[0] for r in rows]

    # -- helpers ----------------------------------------------------------------------------

    def _model_id(self, conn: Connection, name: str) -> int:
        row = conn.execute(sa.select(models.c.model_id).where(models.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"No model named {name!r}")
        return int(row.model_id)

    def _lock_model(self, conn: Connection, name: str) -> int:
        query = sa.select(models.c.model_id).where(models.c.name == name)
        if self._db.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"No model named {name!r}")
        return int(row.model_id)

    def _event_time(self, conn: Connection, model_id: int) -> int:
        """The time of the model's next event, read while its row is locked: now, or 1 ms
        after its last event when the clock has not moved past it (clocks of other hosts,
        several events in one millisecond). Taken under the lock, event times follow commit
        order, so ``history`` is in commit order and ``alias_at`` is exact at every instant."""
        last = conn.execute(
            sa.select(sa.func.max(model_events.c.at)).where(model_events.c.model_id == model_id)
        ).scalar()
        now = now_ms()
        return now if last is None or now > last else int(last) + 1

    def _status(self, conn: Connection, model_id: int, name: str, version: int) -> ModelStatus:
        row = conn.execute(
            sa.select(model_versions.c.status).where(
                model_versions.c.model_id == model_id, model_versions.c.version == version
            )
        ).first()
        if row is None:
            raise NotFoundError(f"Model {name!r} has no version {version}")
        return ModelStatus(row.status)

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersionRecord:
        row = conn.execute(
            sa.select(model_versions)
            .select_from(model_versions.join(models))
            .where(models.c.name == name, model_versions.c.version == version)
        ).first()
        if row is None:
            raise NotFoundError(f"Model {name!r} has no version {version}")
        return self._versions(conn, name, row.model_id, [row])[0]

    def _versions(
        self, conn: Connection, name: str, model_id: int, rows: Sequence[Any]
    ) -> list[ModelVersionRecord]:
        held: dict[int, list[str]] = {}
        for alias, version in conn.execute(
            sa.select(model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model_id == model_id)
            .order_by(model_aliases.c.alias)
        ):
            held.setdefault(version, []).append(alias)
        return [
            ModelVersionRecord(
                name=name,
                version=r.version,
                status=ModelStatus(r.status),
                flavor=r.flavor,
                bundle_digest=r.bundle_digest,
                bundle_size=r.bundle_size,
                created_at=r.created_at,
                task=r.task,
                metrics=orjson.loads(r.metrics),
                run_id=r.run_id,
                dataset=r.dataset,
                description=r.description,
                created_by=r.created_by,
                aliases=tuple(held.get(r.version, ())),
            )
            for r in rows
        ]

    def _models(self, conn: Connection, rows: Sequence[Any]) -> list[ModelRecord]:
        ids = [r.model_id for r in rows]
        aliases: dict[int, dict[str, int]] = {i: {} for i in ids}
        if ids:
            for model_id, alias, version in conn.execute(
                sa.select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
                .where(model_aliases.c.model_id.in_(ids))
                .order_by(model_aliases.c.alias)
            ):
                aliases[model_id][alias] = version
        return [
            ModelRecord(
                name=r.name,
                latest_version=r.latest_version,
                created_at=r.created_at,
                updated_at=r.updated_at,
                created_by=r.created_by,
                description=r.description,
                aliases=aliases[r.model_id],
            )
            for r in rows
        ]

    def _event(
        self,
        conn: Connection,
        model_id: int,
        kind: str,
        at: int,
        actor: str | None,
        reason: str | None,
        **values: Any,
    ) -> None:
        conn.execute(
            model_events.insert(),
            {"model_id": model_id, "kind": kind, "at": at, "actor": actor, "reason": reason}
            | values,
        )


def _event(name: str, row: Any) -> ModelEvent:
    return ModelEvent(
        name=name,
        kind=row.kind,
        at=row.at,
        version=row.version,
        alias=row.alias,
        from_version=row.from_version,
        to_version=row.to_version,
        from_status=row.from_status,
        to_status=row.to_status,
        actor=row.actor,
        reason=row.reason,
    )
