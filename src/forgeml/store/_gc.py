"""Garbage in a workspace: blobs nothing references, interrupted writes, stale temporary
folders. ``find_garbage`` only looks; ``remove_garbage`` deletes what it found.

What references a blob (every digest column of the schema; a new one must be added here):

    dataset_versions.data_digest        the table's Parquet blob
    dataset_splits.assignment_digest    a recorded split's assignment
    run_artifacts.digest                a run's file, or the tree of its folder
    model_versions.bundle_digest        a model version's bundle (a tree)

and every file listed by a referenced tree. A blob is an orphan when none of these names it.
Writers upload a blob before they commit the row that names it (a registration uploads its
bundle before its transaction), so only blobs older than the grace period are candidates,
and each candidate's age is checked again just before it is deleted: a write that stored the
same content again refreshed it. A referenced tree that cannot be read (damaged) stops the
collection before anything is deleted: its files cannot be told from orphans.

Litter: ``<artifacts>/tmp/*.part`` files of writes killed before their rename, and folders of
the system temporary folder named ``forgeml-bundle-*``, ``forgeml-evaluation-*`` or
``forgeml-load-*`` (staged bundles, evaluation files, loaded bundles) of a killed process,
each older than the grace period.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from forgeml.errors import ArtifactIntegrityError, InputError
from forgeml.store._artifacts import LocalArtifactStore
from forgeml.store._schema import dataset_splits, dataset_versions, model_versions, run_artifacts

if TYPE_CHECKING:
    from forgeml.store._workspace import Workspace

__all__ = ["DEFAULT_GRACE_S", "Garbage", "GarbageItem", "find_garbage", "remove_garbage"]

DEFAULT_GRACE_S = 24 * 3600.0
TEMPORARY_PREFIXES = ("forgeml-bundle-", "forgeml-evaluation-", "forgeml-load-")


@dataclass(frozen=True, slots=True)
class GarbageItem:
    """One thing to remove: its kind (``blob``, ``part``, ``temporary``), where, its size in
    bytes and its age in seconds."""

    kind: str
    path: str
    size: int
    age_s: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"kind": self.kind, "path": self.path, "size": self.size, "age_s": self.age_s}


@dataclass(frozen=True, slots=True)
class Garbage:
    """What ``find_garbage`` found (immutable).

    Attributes:
        items: orphan blobs, interrupted writes and stale temporary folders.
        referenced: how many blobs the workspace references.
        stored: how many blobs the artifact store holds.
        grace_s: only things older than this were taken.
    """

    items: tuple[GarbageItem, ...]
    referenced: int
    stored: int
    grace_s: float

    def count(self, kind: str) -> int:
        """Items of one kind."""
        return sum(i.kind == kind for i in self.items)

    def size(self, kind: str | None = None) -> int:
        """Bytes of the items (of one kind)."""
        return sum(i.size for i in self.items if kind is None or i.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "grace_s": self.grace_s,
            "blobs_stored": self.stored,
            "blobs_referenced": self.referenced,
            "orphan_blobs": self.count("blob"),
            "interrupted_writes": self.count("part"),
            "temporary_folders": self.count("temporary"),
            "bytes": self.size(),
            "items": [i.to_dict() for i in self.items],
        }


def _referenced_roots(ws: Workspace) -> tuple[set[str], set[str]]:
    """(blobs named by a row, of which trees) in one read transaction."""
    files: set[str] = set()
    trees: set[str] = set()
    with ws.db.transaction(write=False) as conn:
        files.update(conn.execute(sa.select(dataset_versions.c.data_digest)).scalars())
        files.update(conn.execute(sa.select(dataset_splits.c.assignment_digest)).scalars())
        for digest, kind in conn.execute(sa.select(run_artifacts.c.digest, run_artifacts.c.kind)):
            (trees if kind == "dir" else files).add(digest)
        trees.update(conn.execute(sa.select(model_versions.c.bundle_digest)).scalars())
    return files, trees


def referenced_blobs(ws: Workspace) -> set[str]:
    """Every blob the workspace references, trees expanded.

    Raises:
        ArtifactIntegrityError: a referenced tree is damaged (nothing can be collected).
    """
    files, trees = _referenced_roots(ws)
    referenced = files | trees
    for tree in trees:
        if not ws.artifacts.exists(tree):
            continue  # a missing tree references nothing that is stored
        try:
            entries = ws.artifacts.tree(tree)
        except (ArtifactIntegrityError, InputError) as e:
            raise ArtifactIntegrityError(
                f"The referenced tree {tree} cannot be read ({e}); nothing was collected"
            ) from e
        referenced.update(e.digest for e in entries)
    return referenced


def _local(ws: Workspace) -> LocalArtifactStore:
    if not isinstance(ws.artifacts, LocalArtifactStore):
        raise InputError("forgeml gc collects local artifact stores only")
    return ws.artifacts


def _age(path: Path, now: float) -> tuple[float, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return now - stat.st_mtime, stat.st_size


def _folder_size(path: Path) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def _temporary_folders(grace_s: float, now: float) -> Iterable[GarbageItem]:
    base = Path(tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    uid = os.getuid() if hasattr(os, "getuid") else None
    for path in entries:
        if not path.name.startswith(TEMPORARY_PREFIXES) or not path.is_dir():
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        if uid is not None and stat.st_uid != uid:
            continue  # another user's
        age = now - stat.st_mtime
        if age >= grace_s:
            yield GarbageItem("temporary", str(path), _folder_size(path), round(age, 1))


def find_garbage(ws: Workspace, *, grace_s: float = DEFAULT_GRACE_S) -> Garbage:
    """Orphan blobs, interrupted writes and stale temporary folders older than ``grace_s``.

    Raises:
        InputError: a negative grace period, or an artifact store that is not local.
        ArtifactIntegrityError: a referenced tree is damaged.
    """
    if not grace_s >= 0:
        raise InputError(f"The grace period must be zero or more seconds; got {grace_s!r}")
    store = _local(ws)
    referenced = referenced_blobs(ws)
    now = time.time()
    items: list[GarbageItem] = []
    stored = 0
    for path in sorted((store.root / "sha256").glob("*/*")):
        stored += 1
        if path.name in referenced:
            continue
        aged = _age(path, now)
        if aged is not None and aged[0] >= grace_s:
            items.append(GarbageItem("blob", path.name, aged[1], round(aged[0], 1)))
    for path in sorted((store.root / "tmp").glob("*.part")):
        aged = _age(path, now)
        if aged is not None and aged[0] >= grace_s:
            items.append(GarbageItem("part", str(path), aged[1], round(aged[0], 1)))
    items.extend(_temporary_folders(grace_s, now))
    return Garbage(tuple(items), len(referenced), stored, grace_s)


def remove_garbage(ws: Workspace, garbage: Garbage) -> Garbage:
    """Delete what ``find_garbage`` found, checking each item's age again first (a blob
    stored again meanwhile, or a row that now references it, keeps it). Returns what was
    deleted."""
    store = _local(ws)
    referenced = referenced_blobs(ws)
    now = time.time()
    removed: list[GarbageItem] = []
    for item in garbage.items:
        if item.kind == "blob":
            if item.path in referenced:
                continue
            path = store.path(item.path)
        else:
            path = Path(item.path)
        aged = _age(path, now)
        if aged is None or aged[0] < garbage.grace_s:
            continue
        try:
            if item.kind == "temporary":
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        removed.append(item)
    return Garbage(tuple(removed), garbage.referenced, garbage.stored, garbage.grace_s)
