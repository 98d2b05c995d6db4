"""Metadata and artifact stores (foundation layer).

``Workspace`` opens both from ``Settings``; ``RunStore`` keeps experiments and runs;
``ArtifactStore`` keeps content-addressed blobs. Values returned are immutable entities.
"""

from forgeml.store._artifacts import ArtifactStore, LocalArtifactStore, TreeEntry, sha256_file
from forgeml.store._db import Database, now_ms
from forgeml.store._runs import RunStore
from forgeml.store._workspace import Workspace
from forgeml.store.entities import ArtifactRef, Experiment, Metric, Page, RunRecord, RunStatus

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "Database",
    "Experiment",
    "LocalArtifactStore",
    "Metric",
    "Page",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "TreeEntry",
    "Workspace",
    "now_ms",
    "sha256_file",
]
