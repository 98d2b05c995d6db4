"""The dataset store: named datasets, their immutable versions and recorded splits.

Only metadata lives here; the data of a version is a Parquet blob in the artifact store, named by
``data_digest``. Schema, profile and quality report are JSON documents whose meaning belongs to
the data capability (``forgeml.data``); this store keeps them verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeml._json import dumps_text
from forgeml.errors import ConflictError, InputError, NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._schema import dataset_splits, dataset_versions, datasets

__all__ = [
    "DatasetRecord",
    "DatasetStore",
    "DatasetVersionRecord",
    "NewDatasetVersion",
    "SplitRecord",
]


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    """A named dataset: its latest version number and when it was created and last changed."""

    dataset_id: int
    name: str
    latest_version: int
    created_at: int
    updated_at: int
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class SplitRecord:
    """A recorded split of one version; ``assignment_digest`` names the per-row part blob."""

    name: str
    strategy: str
    seed: int
    params: dict[str, Any]
    counts: dict[str, int]
    assignment_digest: str
    created_at: int
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class NewDatasetVersion:
    """What a caller supplies to add a version (the store assigns number, parent and time)."""

    digest: str
    spec_digest: str
    data_digest: str
    data_size: int
    n_rows: int
    n_columns: int
    schema: dict[str, Any]
    profile: dict[str, Any]
    quality: dict[str, Any]
    target: str | None = None
    time_column: str | None = None
    id_column: str | None = None
    sensitive: tuple[str, ...] = ()
    source: str | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class DatasetVersionRecord:
    """A stored dataset version. ``profile`` and ``quality`` are ``None`` in listings."""

    name: str
    version: int
    digest: str
    spec_digest: str
    data_digest: str
    data_size: int
    n_rows: int
    n_columns: int
    schema: dict[str, Any]
    created_at: int
    target: str | None = None
    time_column: str | None = None
    id_column: str | None = None
    sensitive: tuple[str, ...] = ()
    source: str | None = None
    parent_version: int | None = None
    created_by: str | None = None
    profile: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    splits: tuple[SplitRecord, ...] = field(default=())


def _dumps(value: Any) -> str:
    return dumps_text(value)


_SUMMARY_COLUMNS = [c for c in dataset_versions.c if c.name not in ("profile", "quality")]


class DatasetStore:
    """Datasets and their versions in the metadata store.

    Contract:
        * Thread safe and process safe: every method is one transaction, which joins the
          caller's open transaction (a unit of work, ``Database.transaction``) if there is one.
        * Returned objects are immutable and never change after they are returned; a stored
          version is never modified (only splits are added to it).
        * Version numbers of one dataset start at 1 and are allocated under a lock on the
          dataset's row, so concurrent adds get distinct, gap-free numbers.
        * ``add_version`` is idempotent on content: a version of the same name with the same
          ``digest`` and ``spec_digest`` is returned instead of a new one.
        * ``NotFoundError`` means no such dataset, version or split; ``ConflictError`` means a
          split name is already recorded with another assignment.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writes -----------------------------------------------------------------------------

    def add_version(self, name: str, new: NewDatasetVersion) -> tuple[DatasetVersionRecord, bool]:
        """Add a version of ``name`` (created if missing), or find the identical one.

        Returns:
            The version and whether it was created (``False``: identical content was stored).
        """
        _check_name(name)
        now = now_ms()
        with self._db.transaction() as conn:
            conn.execute(
                self._db.insert(datasets).on_conflict_do_nothing(index_elements=["name"]),
                {
                    "name": name,
                    "latest_version": 0,
                    "created_at": now,
                    "created_by": new.created_by,
                    "updated_at": now,
                },
            )
            lock = sa.select(datasets).where(datasets.c.name == name)
            if self._db.dialect == "postgresql":
                lock = lock.with_for_update()
            parent = conn.execute(lock).one()
            existing = conn.execute(
                sa.select(dataset_versions.c.version).where(
                    dataset_versions.c.dataset_id == parent.dataset_id,
                    dataset_versions.c.digest == new.digest,
                    dataset_versions.c.spec_digest == new.spec_digest,
                )
            ).first()
            if existing is not None:
                return self._get(conn, name, existing.version), False
            version = parent.latest_version + 1
            conn.execute(
                datasets.update()
                .where(datasets.c.dataset_id == parent.dataset_id)
                .values(latest_version=version, updated_at=now)
            )
            conn.execute(
                dataset_versions.insert(),
                {
                    "dataset_id": parent.dataset_id,
                    "version": version,
                    "digest": new.digest,
                    "spec_digest": new.spec_digest,
                    "data_digest": new.data_digest,
                    "data_size": new.data_size,
                    "n_rows": new.n_rows,
                    "n_columns": new.n_columns,
                    "target": new.target,
                    "time_column": new.time_column,
                    "id_column": new.id_column,
                    "sensitive": _dumps(list(new.sensitive)),
                    "source": new.source,
                    "parent_version": parent.latest_version or None,
                    "created_by": new.created_by,
                    "created_at": now,
                    "schema": _dumps(new.schema),
                    "profile": _dumps(new.profile),
                    "quality": _dumps(new.quality),
                },
            )
            record_change(
                self._db,
                "data.add",
                f"dataset:{name}@{version}",
                new.created_by,
                after={"digest": new.digest, "rows": new.n_rows, "columns": new.n_columns},
            )
            return self._get(conn, name, version), True

    def add_split(self, name: str, version: int, split: SplitRecord) -> tuple[SplitRecord, bool]:
        """Record a split of a version; the same split recorded again is returned unchanged.

        Returns:
            The stored split and whether it was created.

        Raises:
            NotFoundError: no such dataset version.
            ConflictError: a split with this name and another assignment is recorded.
        """
        with self._db.transaction() as conn:
            dataset_id = self._dataset_id(conn, name)
            self._require_version(conn, dataset_id, name, version)
            row = conn.execute(
                sa.select(dataset_splits).where(
                    dataset_splits.c.dataset_id == dataset_id,
                    dataset_splits.c.version == version,
                    dataset_splits.c.name == split.name,
                )
            ).first()
            if row is not None:
                stored = _split(row)
                if stored.assignment_digest != split.assignment_digest:
                    raise ConflictError(
                        f"{name}@{version} already has a split named {split.name!r} "
                        f"({stored.strategy}, seed {stored.seed}) with another assignment; "
                        "choose another split name"
                    )
                return stored, False
            conn.execute(
                dataset_splits.insert(),
                {
                    "dataset_id": dataset_id,
                    "version": version,
                    "name": split.name,
                    "strategy": split.strategy,
                    "seed": split.seed,
                    "params": _dumps(split.params),
                    "counts": _dumps(split.counts),
                    "assignment_digest": split.assignment_digest,
                    "created_by": split.created_by,
                    "created_at": split.created_at,
                },
            )
            record_change(
                self._db,
                "data.split",
                f"dataset:{name}@{version}/split:{split.name}",
                split.created_by,
                after={"strategy": split.strategy, "seed": split.seed, "counts": split.counts},
            )
        return split, True

    # -- reads ------------------------------------------------------------------------------

    def find_version(self, name: str, digest: str, spec_digest: str) -> DatasetVersionRecord | None:
        """The version of ``name`` with this content and spec, or ``None``."""
        with self._db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(dataset_versions.c.version)
                .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
                .where(
                    datasets.c.name == name,
                    dataset_versions.c.digest == digest,
                    dataset_versions.c.spec_digest == spec_digest,
                )
            ).first()
            return None if row is None else self._get(conn, name, row.version)

    def get_version(self, name: str, version: int | None = None) -> DatasetVersionRecord:
        """A version with its profile, quality report and splits; ``None`` means the latest.

        Raises:
            NotFoundError: no dataset ``name``, or it has no such version.
        """
        with self._db.transaction(write=False) as conn:
            return self._get(conn, name, version)

    def list_datasets(self) -> list[DatasetRecord]:
        """Every dataset, by name."""
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(sa.select(datasets).order_by(datasets.c.name)).all()
        return [_dataset(r) for r in rows]

    def list_versions(self, name: str) -> list[DatasetVersionRecord]:
        """Every version of ``name``, newest first, without profile, quality and splits.

        Raises:
            NotFoundError: no dataset ``name``.
        """
        with self._db.transaction(write=False) as conn:
            dataset_id = self._dataset_id(conn, name)
            rows = conn.execute(
                sa.select(*_SUMMARY_COLUMNS)
                .where(dataset_versions.c.dataset_id == dataset_id)
                .order_by(dataset_versions.c.version.desc())
            ).all()
        return [_version(name, r, details=False) for r in rows]

    # -- helpers ----------------------------------------------------------------------------

    def _get(self, conn: Connection, name: str, version: int | None) -> DatasetVersionRecord:
        dataset_id = self._dataset_id(conn, name)
        query = sa.select(dataset_versions).where(dataset_versions.c.dataset_id == dataset_id)
        if version is None:
            query = query.order_by(dataset_versions.c.version.desc()).limit(1)
        else:
            query = query.where(dataset_versions.c.version == version)
        row = conn.execute(query).first()
        if row is None:
            raise self._missing_version(conn, dataset_id, name, version)
        split_rows = conn.execute(
            sa.select(dataset_splits)
            .where(
                dataset_splits.c.dataset_id == dataset_id,
                dataset_splits.c.version == row.version,
            )
            .order_by(dataset_splits.c.created_at, dataset_splits.c.name)
        ).all()
        record = _version(name, row, details=True)
        return _with_splits(record, tuple(_split(r) for r in split_rows))

    def _dataset_id(self, conn: Connection, name: str) -> int:
        row = conn.execute(sa.select(datasets.c.dataset_id).where(datasets.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"No dataset named {name!r}")
        return int(row.dataset_id)

    def _require_version(self, conn: Connection, dataset_id: int, name: str, version: int) -> None:
        found = conn.execute(
            sa.select(dataset_versions.c.version).where(
                dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.version == version
            )
        ).first()
        if found is None:
            raise self._missing_version(conn, dataset_id, name, version)

    def _missing_version(
        self, conn: Connection, dataset_id: int, name: str, version: int | None
    ) -> NotFoundError:
        latest = conn.execute(
            sa.select(sa.func.max(dataset_versions.c.version)).where(
                dataset_versions.c.dataset_id == dataset_id
            )
        ).scalar()
        if not latest:
            return NotFoundError(f"Dataset {name!r} has no versions")
        return NotFoundError(
            f"Dataset {name!r} has no version {version}; its versions are 1 to {latest}"
        )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise InputError(f"A dataset name must be 1 to 256 characters; got {name!r}")


def _dataset(row: Any) -> DatasetRecord:
    return DatasetRecord(
        row.dataset_id, row.name, row.latest_version, row.created_at, row.updated_at, row.created_by
    )


def _version(name: str, row: Any, *, details: bool) -> DatasetVersionRecord:
    return DatasetVersionRecord(
        name=name,
        version=row.version,
        digest=row.digest,
        spec_digest=row.spec_digest,
        data_digest=row.data_digest,
        data_size=row.data_size,
        n_rows=row.n_rows,
        n_columns=row.n_columns,
        schema=orjson.loads(row.schema),
        created_at=row.created_at,
        target=row.target,
        time_column=row.time_column,
        id_column=row.id_column,
        sensitive=tuple(orjson.loads(row.sensitive)),
        source=row.source,
        parent_version=row.parent_version,
        created_by=row.created_by,
        profile=orjson.loads(row.profile) if details else None,
        quality=orjson.loads(row.quality) if details else None,
    )


def _with_splits(
    record: DatasetVersionRecord, splits: Sequence[SplitRecord]
) -> DatasetVersionRecord:
    from dataclasses import replace

    return replace(record, splits=tuple(splits))


def _split(row: Any) -> SplitRecord:
    params: Mapping[str, Any] = orjson.loads(row.params)
    return SplitRecord(
        name=row.name,
        strategy=row.strategy,
        seed=row.seed,
        params=dict(params),
        counts=dict(orjson.loads(row.counts)),
        assignment_digest=row.assignment_digest,
        created_at=row.created_at,
        created_by=row.created_by,
    )
