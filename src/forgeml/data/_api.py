"""The datasets API: add, get, load, list, validate, diff, split and report."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml._json import dumps, loads
from forgeml.data._analyze import analyze
from forgeml.data._diff import DatasetDiff, diff_tables
from forgeml.data._expectations import ExpectationResult, check_expectations, load_expectations
from forgeml.data._finite import apply_non_finite
from forgeml.data._hash import hash_table
from forgeml.data._io import from_parquet_bytes, read_table, to_parquet_bytes
from forgeml.data._leaks import domain_leak_finding, find_leaks
from forgeml.data._profile import Profile
from forgeml.data._quality import Finding, QualityReport, Severity, check_quality
from forgeml.data._schema import ColumnKind
from forgeml.data._split import (
    PARTS,
    assign_parts,
    check_fractions,
    parts_from_bytes,
    parts_to_bytes,
)
from forgeml.data._version import DatasetVersion, SplitInfo, check_dataset_name, parse_ref
from forgeml.errors import ArtifactIntegrityError, ForgeMLError, InputError, NotFoundError
from forgeml.security import PiiPolicy, Principal, actor_name
from forgeml.store import DatasetRecord, NewDatasetVersion, SplitRecord, Workspace, now_ms

__all__ = [
    "ValidationReport",
    "add",
    "diff",
    "get",
    "list_datasets",
    "list_versions",
    "load",
    "record_split",
    "report",
    "split",
    "split_parts",
    "validate",
]


def _workspace(workspace: Workspace | None) -> Workspace:
    if workspace is not None:
        return workspace
    from forgeml.tracking import default_workspace

    return default_workspace()


def _column_list(value: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    names = tuple(dict.fromkeys(value))
    if not all(isinstance(n, str) for n in names):
        raise InputError(f"{what} must be column names; got {list(value)!r}")
    return names


def _require(frame: pd.DataFrame, column: str | None, role: str) -> None:
    if column is None:
        return
    if not isinstance(column, str) or column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:12]))
        more = ", ..." if frame.shape[1] > 12 else ""
        raise InputError(
            f"The {role} column {column!r} is not in the table (columns: {shown}{more})"
        )


def add(
    source: pd.DataFrame | str | Path,
    *,
    name: str,
    target: str | None = None,
    time: str | None = None,
    sensitive: Sequence[str] = (),
    id: str | None = None,
    types: Mapping[str, str] | None = None,
    bins: Mapping[str, Sequence[float]] | None = None,
    pii: Mapping[str, str] | None = None,
    pii_default: str = "hash",
    check: Callable[[pd.DataFrame], None] | None = None,
    non_finite: str = "refuse",
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
    source_note: str | None = None,
) -> DatasetVersion:
    """Add a table as a new version of dataset ``name``.

    The table is read (CSV with delimiter and encoding detected, Parquet, or a DataFrame),
    hashed, profiled and checked, stored as Parquet in the artifact store, and recorded as the
    next version. A table already stored under ``name`` with the same roles and types is not
    copied again: its version is returned.

    Args:
        source: a DataFrame or the path of a CSV or Parquet file.
        name: the dataset's name (letters, digits, ``.``, ``_``, ``-``).
        target: the column to predict.
        time: the column that orders rows in time (dates or numbers).
        sensitive: columns holding sensitive attributes (audited for fairness).
        id: the column identifying an entity; rows of one entity stay in one split part.
        types: kinds that override inference, e.g. ``{"zip": "categorical"}``.
        bins: inner edges grouping a numeric sensitive column into ranges for fairness
            audits, e.g. ``{"age": [25, 40, 65]}``; a numeric sensitive column without them is
            cut at its quartiles. Recorded in the version's schema (``schema["age"].bins``).
        pii: column -> ``hash``, ``mask`` or ``keep``: the PII policy's declared part. Other
            columns are detected as PII by name (``name``, ``dob``, ``email``...) or by their
            values (e-mail addresses, phone, card and US social security numbers) and get
            ``pii_default``; see ``forgeml.security.PiiPolicy``. The policy is applied before
            anything is stored (the table, its profile, everything trained on it) and recorded
            per column (``schema[col].pii``, ``version.pii``).
        pii_default: the action for detected PII columns (``hash``; ``keep`` turns
            detection off).
        non_finite: what an infinity in a numeric column means (forgeml takes finite
            numbers or missing values): ``"refuse"`` (the default) refuses the table, naming
            the columns and their first row; ``"missing"`` reads infinities as missing values
            and says so in the version's quality findings (check ``non_finite``).
        check: called with the table once it is read, before anything is written; it raises
            (``InputError``) to refuse the table, e.g. the checks of the training that follows.
        workspace: where to store (default: ``forgeml.tracking.default_workspace()``).
        actor: who adds it (default: the local user of the workspace's settings).
        source_note: where the data came from, recorded as the version's source (default:
            the file's path or the frame's shape); e.g. the datasets a table was built from.

    Returns:
        The new version, or the existing one with identical content.

    Raises:
        InputError: the source is empty or not a table, a named column is missing, a type is
            unknown or impossible for its column, bins are given for a column that is not a
            numeric sensitive one or are not increasing numbers, the name is invalid, or a
            numeric column holds infinities (unless ``non_finite="missing"``).
        NotFoundError: there is no file at the path.
    """
    check_dataset_name(name)
    ws = _workspace(workspace)
    frame, description = read_table(source)
    frame, converted = apply_non_finite(frame, non_finite, where=description)
    sensitive_columns = _column_list(sensitive, "sensitive")
    for column, role in ((target, "target"), (time, "time"), (id, "id")):
        _require(frame, column, role)
    for column in sensitive_columns:
        _require(frame, column, "sensitive")
    if check is not None:
        check(frame)
    if target is not None and target in (time, id):
        raise InputError(f"The target {target!r} cannot also be the time or id column")
    type_overrides = {
        str(k): ColumnKind.parse(str(v), column=str(k)).value for k, v in (types or {}).items()
    }
    for column in type_overrides:
        _require(frame, column, "type override")
    edges = _check_bins(bins, sensitive_columns)
    frame, policy = _apply_pii(ws, frame, pii, pii_default, sensitive_columns, target)

    hashed = hash_table(frame)
    spec = {
        "target": target,
        "time": time,
        "id": id,
        "sensitive": sorted(sensitive_columns),
        "types": dict(sorted(type_overrides.items())),
        **({"bins": dict(sorted(edges.items()))} if edges else {}),
        **({"pii": {c: r.action for c, r in policy.rules.items()}} if policy.rules else {}),
    }
    spec_digest = hashlib.sha256(dumps(spec, sort_keys=True)).hexdigest()
    existing = ws.datasets.find_version(name, hashed.digest, spec_digest)
    if existing is not None:
        return DatasetVersion.from_record(existing)

    duplicates = len(hashed.rows) - len(np.unique(hashed.rows))
    schema, profile = analyze(
        frame,
        target=target,
        types=type_overrides,
        column_digests=hashed.columns,
        duplicate_rows=duplicates,
    )
    if target is not None:
        kind = schema[target].kind
        if profile[target].count == 0:
            raise InputError(f"The target column {target!r} has no values")
        if kind in (ColumnKind.DATETIME, ColumnKind.IDENTIFIER) and profile.task is None:
            raise InputError(
                f"The target column {target!r} is {kind.value}-like; a target is a class label "
                "or a number"
            )
    if time is not None and schema[time].kind not in (
        ColumnKind.DATETIME,
        ColumnKind.INTEGER,
        ColumnKind.NUMERIC,
        ColumnKind.IDENTIFIER,
    ):
        raise InputError(
            f"The time column {time!r} holds {schema[time].kind.value} values; it must hold dates "
            "or numbers"
        )
    schema = _bin_sensitive(frame, schema, sensitive_columns, edges, target)
    for column, rule in policy.rules.items():
        schema = schema.replace(column, pii={**rule.to_dict(), "key_id": policy.key_id})
    quality = check_quality(
        schema, profile, target=target, id_column=id, time_column=time, sensitive=sensitive_columns
    )
    if target is not None:
        leaks = find_leaks(
            frame,
            target=target,
            kinds={c.name: c.kind.value for c in schema},
            task=profile.task,
            id_column=id,
        )
        quality = _with(quality, (*leaks, domain_leak_finding(len(frame))))
    if converted:
        quality = _with(
            quality,
            [
                Finding(
                    "non_finite",
                    Severity.INFO,
                    f"{c.count} infinite value{'s' if c.count != 1 else ''} read as missing "
                    f"(first at row {c.first_row + 1})",
                    column=c.column,
                    value=float(c.count),
                )
                for c in converted
            ],
        )
    profile_document = _round_tripped(profile)
    data = to_parquet_bytes(frame)
    data_digest = ws.artifacts.put_bytes(data)
    record, _ = ws.datasets.add_version(
        name,
        NewDatasetVersion(
            digest=hashed.digest,
            spec_digest=spec_digest,
            data_digest=data_digest,
            data_size=len(data),
            n_rows=len(frame),
            n_columns=frame.shape[1],
            schema=schema.to_dict(),
            profile=profile_document,
            quality=quality.to_dict(),
            target=target,
            time_column=time,
            id_column=id,
            sensitive=sensitive_columns,
            source=source_note or description,
            created_by=actor_name(actor, ws.settings),
        ),
    )
    return DatasetVersion.from_record(record)


def _apply_pii(
    ws: Workspace,
    frame: pd.DataFrame,
    declared: Mapping[str, str] | None,
    default: str,
    sensitive: Sequence[str],
    target: str | None,
) -> tuple[pd.DataFrame, PiiPolicy]:
    """The table with the PII policy applied, and the policy (declared, then detected)."""
    from forgeml.security import apply_pii

    return apply_pii(
        frame, ws.settings, pii=declared, pii_default=default, sensitive=sensitive, target=target
    )


def _round_tripped(profile: Profile) -> dict[str, Any]:
    """The profile's stored document, checked to hold only finite numbers and to read back as
    the same profile before the version is committed: a document that cannot be read back
    would make the version unreadable for every later command.

    Raises:
        ForgeMLError: the document does not read back (nothing has been written).
    """
    document = profile.to_dict()
    stored = loads(dumps(document))
    problem = None
    if _non_finite(document):
        problem = "it holds a non-finite number"
    else:
        try:
            if Profile.from_dict(stored).to_dict() != stored:
                problem = "it reads back differently"
        except (TypeError, ValueError, KeyError) as e:
            problem = f"{type(e).__name__}: {e}"
    if problem is not None:
        raise ForgeMLError(
            f"The profile of the table does not read back ({problem}); nothing was written"
        )
    return dict(stored)


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def _check_bins(
    bins: Mapping[str, Sequence[float]] | None, sensitive: Sequence[str]
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for column, values in (bins or {}).items():
        if column not in sensitive:
            raise InputError(
                f"bins apply to sensitive columns; {column!r} is not declared sensitive "
                f"(sensitive: {', '.join(sensitive) or 'none'})"
            )
        try:
            edges = [float(v) for v in values]
        except (TypeError, ValueError):
            raise InputError(
                f"The bins of {column!r} must be numbers such as 25,40,65; got {values!r}"
            ) from None
        if (
            not edges
            or not all(np.isfinite(edges))
            or any(b <= a for a, b in itertools.pairwise(edges))
        ):
            raise InputError(
                f"The bins of {column!r} must be increasing finite numbers such as 25,40,65; "
                f"got {values!r}"
            )
        out[str(column)] = edges
    return out


def _bin_sensitive(
    frame: pd.DataFrame,
    schema: Any,
    sensitive: Sequence[str],
    edges: Mapping[str, list[float]],
    target: str | None,
) -> Any:
    """The schema with ranges recorded for every numeric sensitive column (the quartiles
    unless given); refuses sensitive columns a fairness audit cannot group."""
    numeric = (ColumnKind.NUMERIC, ColumnKind.INTEGER)
    for column in sensitive:
        kind = schema[column].kind
        if column == target:
            raise InputError(f"The target {target!r} cannot also be a sensitive column")
        if column in edges and kind not in numeric:
            raise InputError(
                f"bins apply to numeric columns; the sensitive column {column!r} is {kind.value}"
            )
        if kind not in numeric:
            continue
        cut = edges.get(column)
        if cut is None:
            values = pd.to_numeric(frame[column], errors="coerce").dropna().to_numpy()
            quartiles = np.quantile(values, [0.25, 0.5, 0.75]) if len(values) else []
            if kind is ColumnKind.INTEGER:
                quartiles = np.round(quartiles)
            cut = sorted(
                {float(q) for q in quartiles} - {float(values.min())} if len(values) else set()
            )
            if not cut:
                raise InputError(
                    f"The sensitive column {column!r} has one value; a fairness audit compares "
                    "at least two groups"
                )
        schema = schema.replace(column, bins=tuple(cut))
    return schema


def _with(quality: QualityReport, extra: Sequence[Finding]) -> QualityReport:
    findings = sorted(
        (*quality.findings, *extra), key=lambda f: (-f.severity.rank, f.check, f.column or "")
    )
    return QualityReport(tuple(findings))


def get(ref: str, *, workspace: Workspace | None = None) -> DatasetVersion:
    """The version named by ``NAME``, ``NAME@3`` or ``NAME@latest``, with profile and quality.

    Raises:
        InputError: ``ref`` is malformed.
        NotFoundError: no such dataset or version.
    """
    name, version = parse_ref(ref)
    return DatasetVersion.from_record(_workspace(workspace).datasets.get_version(name, version))


def load(
    ref: str | DatasetVersion,
    *,
    part: str | None = None,
    split: str = "default",
    workspace: Workspace | None = None,
) -> pd.DataFrame:
    """The table of a version, optionally only one part of a recorded split.

    Args:
        ref: ``NAME[@V]`` or a ``DatasetVersion``.
        part: ``"train"``, ``"validation"`` or ``"test"`` to load one part of ``split``.
        split: the recorded split's name.
        workspace: where to read from.

    Raises:
        NotFoundError: no such dataset, version or split.
    """
    ws = _workspace(workspace)
    version = ref if isinstance(ref, DatasetVersion) else get(ref, workspace=ws)
    frame = from_parquet_bytes(_table_bytes(ws, version))
    if part is None:
        return frame
    if part not in PARTS:
        raise InputError(f"A split part is one of {', '.join(PARTS)}; got {part!r}")
    info = version.split(split)
    if info is None:
        raise NotFoundError(
            f"{version.ref} has no split named {split!r}; record one with "
            f"forgeml data split {version.ref}"
        )
    parts = parts_from_bytes(ws.artifacts.get_bytes(info.digest))
    return frame[parts == PARTS.index(part)].reset_index(drop=True)


def _table_bytes(ws: Workspace, version: DatasetVersion) -> bytes:
    """The verified bytes of a version's Parquet blob (the one way a table's blob is read).

    Raises:
        ArtifactIntegrityError: the blob's bytes do not hash to its digest; names the version
            and the blob.
    """
    try:
        return ws.artifacts.get_bytes(version.data_digest)
    except ArtifactIntegrityError as e:
        raise ArtifactIntegrityError(f"The table of {version.ref} is damaged: {e.message}") from e


def _verify_table(ws: Workspace, version: DatasetVersion) -> None:
    """Check a version's Parquet blob against its digest without keeping it in memory."""
    try:
        ws.artifacts.verify(version.data_digest)
    except ArtifactIntegrityError as e:
        raise ArtifactIntegrityError(f"The table of {version.ref} is damaged: {e.message}") from e


def list_datasets(*, workspace: Workspace | None = None) -> list[DatasetRecord]:
    """Every dataset with its latest version number, by name."""
    return _workspace(workspace).datasets.list_datasets()


def list_versions(name: str, *, workspace: Workspace | None = None) -> list[DatasetVersion]:
    """Every version of ``name``, newest first (without profile, quality and splits).

    Raises:
        NotFoundError: no dataset ``name``.
    """
    check_dataset_name(name)
    records = _workspace(workspace).datasets.list_versions(name)
    return [DatasetVersion.from_record(r) for r in records]


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The quality findings of a version and the outcome of the user's expectations."""

    ref: str
    quality: QualityReport
    expectations: tuple[ExpectationResult, ...] = ()

    def failed(self, fail_on: Severity | str = Severity.ERROR) -> bool:
        """Whether a finding or a failed expectation is at least as serious as ``fail_on``."""
        threshold = Severity(fail_on).rank
        if any(f.severity.rank >= threshold for f in self.quality.findings):
            return True
        return any(
            not r.passed and r.expectation.severity.rank >= threshold for r in self.expectations
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "ref": self.ref,
            "quality": self.quality.to_dict()["findings"],
            "expectations": [r.to_dict() for r in self.expectations],
            "counts": self.quality.counts(),
            "expectations_failed": sum(not r.passed for r in self.expectations),
        }


def validate(
    ref: str,
    *,
    expectations: str | Path | Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ValidationReport:
    """The quality report of a version, and the outcome of expectations if given.

    Args:
        ref: ``NAME[@V]``.
        expectations: a YAML file of rules (see ``forgeml.data`` docs) or the parsed mapping.
        workspace: where to read from.

    Raises:
        InputError: the expectations file is invalid or a rule does not fit its column.
        NotFoundError: no such dataset or version.
    """
    ws = _workspace(workspace)
    rules = load_expectations(expectations) if expectations is not None else ()
    version = get(ref, workspace=ws)
    assert version.profile is not None
    # Re-run the checks on the stored profile (cheap: no pass over the data), so a version
    # added by an older forgeml is judged by today's checks.
    quality = check_quality(
        version.schema,
        version.profile,
        target=version.target,
        id_column=version.id_column,
        time_column=version.time_column,
        sensitive=version.sensitive,
    )
    results: tuple[ExpectationResult, ...] = ()
    frame = None
    if version.target is None and not rules:
        _verify_table(ws, version)  # the stored table is checked even when not read
    if version.target is not None:
        frame = load(version, workspace=ws)
        leaks = find_leaks(
            frame,
            target=version.target,
            kinds={c.name: c.kind.value for c in version.schema},
            task=version.profile.task,
            id_column=version.id_column,
        )
        quality = _with(quality, (*leaks, domain_leak_finding(len(frame))))
    if rules:
        results = check_expectations(
            frame if frame is not None else load(version, workspace=ws), rules
        )
    return ValidationReport(version.ref, quality, results)


def diff(before: str, after: str, *, workspace: Workspace | None = None) -> DatasetDiff:
    """What changed from one version to another (any two versions, of any datasets).

    Raises:
        NotFoundError: no such dataset or version.
    """
    ws = _workspace(workspace)
    a, b = get(before, workspace=ws), get(after, workspace=ws)
    assert a.profile is not None and b.profile is not None
    return diff_tables(
        load(a, workspace=ws),
        load(b, workspace=ws),
        schema_before=a.schema,
        schema_after=b.schema,
        names=(a.ref, b.ref),
        id_before=a.id_column,
        id_after=b.id_column,
        digests_before={c.name: c.digest for c in a.profile.columns},
        digests_after={c.name: c.digest for c in b.profile.columns},
    )


def split(
    ref: str,
    *,
    strategy: str = "auto",
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    name: str = "default",
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> SplitInfo:
    """Draw a train/validation/test split of a version and record it with the version.

    Stratified by the target for classification, by time when a time column is declared, by
    group when an id column is declared (``strategy="auto"`` picks in that order: time, group,
    stratified, random). The same version, strategy, fractions and seed always give the same
    split. Recording the same split again is a no-op; another split under a recorded name is a
    conflict.

    Args:
        ref: ``NAME[@V]``.
        strategy: ``auto``, ``stratified``, ``time``, ``group`` or ``random``.
        fractions: train, validation, test (or train, test).
        seed: the seed of the random permutation.
        name: the split's name.
        workspace: where to record.
        actor: who records it (default: the local user of the workspace's settings).

    Raises:
        InputError: bad fractions or strategy, or a strategy whose column is not declared.
        ConflictError: a different split is already recorded under ``name``.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"A split seed is a non-negative integer; got {seed!r}")
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise InputError(f"A split name is 1 to 128 characters; got {name!r}")
    parts_fractions = check_fractions(fractions)
    ws = _workspace(workspace)
    version = get(ref, workspace=ws)
    assert version.profile is not None
    frame = load(version, workspace=ws)
    parts, used, params = assign_parts(
        frame,
        strategy=strategy,
        fractions=parts_fractions,
        seed=seed,
        target=version.target,
        task=version.profile.task,
        time_column=version.time_column,
        id_column=version.id_column,
    )
    digest = ws.artifacts.put_bytes(parts_to_bytes(parts))
    counts = np.bincount(parts, minlength=3)
    record = SplitRecord(
        name=name,
        strategy=used,
        seed=seed,
        params=params,
        counts={p: int(c) for p, c in zip(PARTS, counts, strict=True)},
        assignment_digest=digest,
        created_at=now_ms(),
        created_by=actor_name(actor, ws.settings),
    )
    stored, _ = ws.datasets.add_split(version.name, version.version, record)
    return SplitInfo.from_record(stored)


def record_split(
    ref: str | DatasetVersion,
    parts: np.ndarray,
    *,
    name: str,
    strategy: str,
    seed: int,
    params: Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> SplitInfo:
    """Record a given assignment of rows to parts (0 train, 1 validation, 2 test) as a split.

    For splits drawn elsewhere, such as the hold-out a training drew: the rows it trained on
    and the rows it was tested on stay known with the data. Recording the same assignment
    under the same name again is a no-op.

    Args:
        ref: ``NAME[@V]`` or the version.
        parts: one part number per row of the version, in row order.
        name: the split's name.
        strategy: how it was drawn (e.g. ``holdout``).
        seed: the seed it was drawn with.
        params: what else decided it (fractions, columns, the run that drew it).
        workspace: where to record.
        actor: who records it (default: the local user of the workspace's settings).

    Raises:
        InputError: ``parts`` does not have one part number (0, 1 or 2) per row.
        ConflictError: another assignment is recorded under ``name``.
    """
    ws = _workspace(workspace)
    version = ref if isinstance(ref, DatasetVersion) else get(ref, workspace=ws)
    assignment = np.asarray(parts)
    if assignment.shape != (version.n_rows,) or not np.isin(assignment, (0, 1, 2)).all():
        raise InputError(
            f"A split of {version.ref} has one part (0, 1 or 2) for each of its "
            f"{version.n_rows} rows; got shape {assignment.shape}"
        )
    assignment = assignment.astype(np.int8)
    digest = ws.artifacts.put_bytes(parts_to_bytes(assignment))
    counts = np.bincount(assignment, minlength=3)
    record = SplitRecord(
        name=name,
        strategy=strategy,
        seed=seed,
        params=dict(params or {}),
        counts={p: int(c) for p, c in zip(PARTS, counts, strict=True)},
        assignment_digest=digest,
        created_at=now_ms(),
        created_by=actor_name(actor, ws.settings),
    )
    stored, _ = ws.datasets.add_split(version.name, version.version, record)
    return SplitInfo.from_record(stored)


def split_parts(
    ref: str | DatasetVersion, name: str = "default", *, workspace: Workspace | None = None
) -> tuple[SplitInfo, np.ndarray]:
    """A recorded split and the part number (0 train, 1 validation, 2 test) of every row.

    Raises:
        NotFoundError: no such dataset, version or split.
    """
    ws = _workspace(workspace)
    version = ref if isinstance(ref, DatasetVersion) else get(ref, workspace=ws)
    info = version.split(name)
    if info is None:
        recorded = ", ".join(s.name for s in version.splits) or "none"
        raise NotFoundError(
            f"{version.ref} has no split named {name!r} (recorded: {recorded}); record one "
            f"with forgeml data split {version.ref}"
        )
    return info, parts_from_bytes(ws.artifacts.get_bytes(info.digest))


def report(ref: str, path: str | Path, *, workspace: Workspace | None = None) -> Path:
    """Write a self-contained HTML report of a version (no internet needed to open it).

    Raises:
        NotFoundError: no such dataset or version.
        InputError: the path cannot be written.
    """
    from forgeml.data._report import render_report

    ws = _workspace(workspace)
    version = get(ref, workspace=ws)
    _verify_table(ws, version)  # a report of a damaged table would vouch for it
    return render_report(version, path)
