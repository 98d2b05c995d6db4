"""Metadata and artifact stores (foundation layer).

``Workspace`` opens both from ``Settings``; ``RunStore`` keeps experiments and runs;
``DatasetStore`` keeps dataset versions; ``RegistryStore`` keeps models, versions and aliases;
``PredictionLogStore`` keeps logged predictions and their feedback; ``RouteStore`` keeps
serving routes; ``MonitorStore`` keeps alerts and monitored values; ``LoopStore`` keeps
continuous-training steps, decisions and leases; ``KeyStore`` keeps API keys, ``GuardStore``
alias guards, ``AuditStore`` the hash-chained audit log every change writes in its own
transaction;
``ArtifactStore`` keeps content-addressed blobs. Values returned are immutable entities.
"""

from forgeml.store._artifacts import ArtifactStore, LocalArtifactStore, TreeEntry, sha256_file
from forgeml.store._audit import AuditRecord, AuditStore, ChainReport, acting, current_acting
from forgeml.store._datasets import (
    DatasetRecord,
    DatasetStore,
    DatasetVersionRecord,
    NewDatasetVersion,
    SplitRecord,
)
from forgeml.store._db import Database, now_ms
from forgeml.store._guards import ANY_MODEL, AliasGuard, GuardStore
from forgeml.store._keys import KeyRecord, KeyStore
from forgeml.store._loop import LeaseRecord, LoopDecision, LoopStep, LoopStore
from forgeml.store._monitor import AlertRecord, MonitoredValue, MonitorStore, NewAlert
from forgeml.store._predlog import (
    LabelRevision,
    PredictionLogStore,
    PredictionRecord,
    WindowStats,
)
from forgeml.store._predlog_api import PredictionLogReader, PredictionLogWriter
from forgeml.store._registry import (
    ModelEvent,
    ModelRecord,
    ModelStatus,
    ModelVersionRecord,
    RegistryStore,
)
from forgeml.store._routes import RouteStore
from forgeml.store._runs import RunStore
from forgeml.store._workspace import Workspace
from forgeml.store.entities import ArtifactRef, Experiment, Metric, Page, RunRecord, RunStatus

__all__ = [
    "ANY_MODEL",
    "AlertRecord",
    "AliasGuard",
    "ArtifactRef",
    "ArtifactStore",
    "AuditRecord",
    "AuditStore",
    "ChainReport",
    "Database",
    "DatasetRecord",
    "DatasetStore",
    "DatasetVersionRecord",
    "Experiment",
    "GuardStore",
    "KeyRecord",
    "KeyStore",
    "LabelRevision",
    "LeaseRecord",
    "LocalArtifactStore",
    "LoopDecision",
    "LoopStep",
    "LoopStore",
    "Metric",
    "ModelEvent",
    "ModelRecord",
    "ModelStatus",
    "ModelVersionRecord",
    "MonitorStore",
    "MonitoredValue",
    "NewAlert",
    "NewDatasetVersion",
    "Page",
    "PredictionLogReader",
    "PredictionLogStore",
    "PredictionLogWriter",
    "PredictionRecord",
    "RegistryStore",
    "RouteStore",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "SplitRecord",
    "TreeEntry",
    "WindowStats",
    "Workspace",
    "acting",
    "current_acting",
    "now_ms",
    "sha256_file",
]
