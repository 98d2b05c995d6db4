"""``DatasetVersion``: an immutable dataset version as the data capability hands it out, and the
``NAME``, ``NAME@3``, ``NAME@latest`` references that name one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from forgeml.data._profile import Profile
from forgeml.data._quality import QualityReport
from forgeml.data._schema import Schema
from forgeml.refs import check_name
from forgeml.refs import parse_ref as parse_any_ref
from forgeml.store import DatasetVersionRecord, SplitRecord

if TYPE_CHECKING:
    from forgeml.security import PiiPolicy

__all__ = ["DatasetVersion", "SplitInfo", "check_dataset_name", "parse_ref"]

_NAME_LENGTH = 128


def check_dataset_name(name: str) -> str:
    """Validate a dataset name: letters, digits, ``.``, ``_`` and ``-``, at most 128.

    Raises:
        InputError: the name is not valid.
    """
    return check_name(name, kind="dataset", max_length=_NAME_LENGTH)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``NAME``, ``NAME@3`` or ``NAME@latest`` into the name and the version (``None``:
    the latest).

    Raises:
        InputError: ``ref`` is not of that form.
    """
    parsed = parse_any_ref(ref, kind="dataset", aliases=False, max_name_length=_NAME_LENGTH)
    return parsed.name, parsed.version


@dataclass(frozen=True, slots=True)
class SplitInfo:
    """A recorded train/validation/test split of a version.

    Attributes:
        name: the split's name (``"default"`` unless given).
        strategy: ``"stratified"``, ``"time"``, ``"group"`` or ``"random"``.
        seed: the seed it was drawn with.
        params: the fractions and the columns it used.
        counts: rows per part.
        digest: the artifact holding the part of every row.
        created_at: milliseconds since the epoch.
    """

    name: str
    strategy: str
    seed: int
    params: dict[str, Any]
    counts: dict[str, int]
    digest: str
    created_at: int
    created_by: str | None = None

    @classmethod
    def from_record(cls, record: SplitRecord) -> SplitInfo:
        """The split as the store returned it."""
        return cls(
            record.name,
            record.strategy,
            record.seed,
            dict(record.params),
            dict(record.counts),
            record.assignment_digest,
            record.created_at,
            record.created_by,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "strategy": self.strategy,
            "seed": self.seed,
            "params": self.params,
            "counts": self.counts,
            "digest": self.digest,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version of a named dataset.

    Attributes:
        name: the dataset's name.
        version: its number, from 1.
        digest: the content hash of the table (see ``forgeml.data`` for how it is computed).
        n_rows: rows.
        n_columns: columns.
        schema: the columns' kinds, nullability, categories and ranges.
        target: the target column, if declared.
        time_column: the time column, if declared.
        sensitive: columns declared sensitive.
        id_column: the identifier (group) column, if declared.
        source: where the data came from (a file path or a DataFrame's shape).
        parent_version: the version that was the latest when this one was added.
        created_by: who added it.
        created_at: when, in milliseconds since the epoch.
        profile: the profile (``None`` in listings).
        quality: the quality report (``None`` in listings).
        splits: the recorded splits (empty in listings).
        data_digest: the Parquet blob in the artifact store holding the table.
        data_size: its size in bytes.
    """

    name: str
    version: int
    digest: str
    n_rows: int
    n_columns: int
    schema: Schema
    target: str | None
    time_column: str | None
    sensitive: tuple[str, ...]
    id_column: str | None
    source: str | None
    parent_version: int | None
    created_by: str | None
    created_at: int
    profile: Profile | None = None
    quality: QualityReport | None = None
    splits: tuple[SplitInfo, ...] = ()
    data_digest: str = ""
    data_size: int = 0

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"

    @property
    def pii(self) -> PiiPolicy:
        """The PII policy its values were stored under (columns hashed, masked or kept)."""
        from forgeml.security import PiiPolicy, PiiRule

        rules, key_id = {}, None
        for column in self.schema:
            if column.pii is not None:
                rules[column.name] = PiiRule(
                    str(column.pii.get("action")), str(column.pii.get("reason"))
                )
                key_id = key_id or column.pii.get("key_id")
        return PiiPolicy(rules, key_id)

    def split(self, name: str = "default") -> SplitInfo | None:
        """The recorded split called ``name``, if any."""
        return next((s for s in self.splits if s.name == name), None)

    @classmethod
    def from_record(cls, record: DatasetVersionRecord) -> DatasetVersion:
        """The version as the store returned it."""
        return cls(
            name=record.name,
            version=record.version,
            digest=record.digest,
            n_rows=record.n_rows,
            n_columns=record.n_columns,
            schema=Schema.from_dict(record.schema),
            target=record.target,
            time_column=record.time_column,
            sensitive=tuple(record.sensitive),
            id_column=record.id_column,
            source=record.source,
            parent_version=record.parent_version,
            created_by=record.created_by,
            created_at=record.created_at,
            profile=None if record.profile is None else Profile.from_dict(record.profile),
            quality=None if record.quality is None else QualityReport.from_dict(record.quality),
            splits=tuple(SplitInfo.from_record(s) for s in record.splits),
            data_digest=record.data_digest,
            data_size=record.data_size,
        )

    def to_dict(self, *, details: bool = True) -> dict[str, Any]:
        """A JSON-ready dictionary; ``details=False`` leaves out schema, profile and quality."""
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "target": self.target,
            "time_column": self.time_column,
            "id_column": self.id_column,
            "sensitive": list(self.sensitive),
            "source": self.source,
            "parent_version": self.parent_version,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "data_digest": self.data_digest,
            "data_size": self.data_size,
            "pii": self.pii.to_dict()["columns"],
        }
        if details:
            data["schema"] = self.schema.to_dict()
            data["profile"] = None if self.profile is None else self.profile.to_dict()
            data["quality"] = None if self.quality is None else self.quality.to_dict()
            data["splits"] = [s.to_dict() for s in self.splits]
        return data
