"""A workspace: the metadata store and the artifact store that one set of settings names."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from forgeml.config import Settings
from forgeml.errors import StoreError, StoreVersionError, WorkspaceError
from forgeml.store._artifacts import ArtifactStore, LocalArtifactStore
from forgeml.store._audit import AuditStore, record_change
from forgeml.store._datasets import DatasetStore
from forgeml.store._db import Database
from forgeml.store._guards import GuardStore
from forgeml.store._keys import KeyStore
from forgeml.store._loop import LoopStore
from forgeml.store._monitor import MonitorStore
from forgeml.store._predlog import PredictionLogStore
from forgeml.store._registry import RegistryStore
from forgeml.store._routes import RouteStore
from forgeml.store._runs import RunStore

__all__ = ["Workspace"]


class Workspace:
    """The stores of one workspace, opened from ``Settings``.

    Opening creates the workspace folder if needed, applies pending schema migrations and
    refuses a store written by a newer forgeml. A ``Workspace`` is safe to share between
    threads; close it (or use it as a context manager) to release database connections.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        settings = settings or Settings()
        if overrides:
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        uses_home = settings.store_url is None or settings.artifacts is None
        if uses_home:
            _prepare_home(settings.home)
        try:
            self.db = Database(
                settings.resolved_store_url, on_upgrade=_audited_upgrade(settings.user)
            )
        except (StoreError, StoreVersionError, WorkspaceError):
            raise
        except Exception as e:  # a file that is not a database, a bad URL...
            raise WorkspaceError(
                f"Cannot open the metadata store {settings.resolved_store_url}: {e}"
            ) from e
        self.audit = AuditStore(self.db)
        self.keys = KeyStore(self.db)
        self.guards = GuardStore(self.db)
        self.artifacts: ArtifactStore = _artifact_store(settings)
        cipher = None
        if settings.encryption_key_value() is not None:
            from forgeml.store._encryption import PayloadCipher, load_key

            cipher = PayloadCipher(load_key(settings.encryption_key_value() or ""))
        self.runs = RunStore(self.db, heartbeat_timeout_ms=int(settings.heartbeat_timeout * 1000))
        self.datasets = DatasetStore(self.db)
        self.models = RegistryStore(self.db)
        self.predlog = PredictionLogStore(self.db, cipher)
        self.routing = RouteStore(self.db)
        self.monitor = MonitorStore(self.db)
        self.loop = LoopStore(self.db)

    @property
    def home(self) -> Path:
        return self.settings.home

    @contextmanager
    def unit_of_work(self) -> Iterator[Workspace]:
        """One metadata transaction that the stores' methods called inside it join.

        Everything written through this workspace's stores in the block (in this thread or
        asyncio task) commits together when the block ends, or not at all when it raises:
        for example a promotion and the route change that goes with it. Blobs are not part
        of it (content-addressed blobs nothing references are harmless), and
        ``models.add_version`` refuses to run inside it, because it stores its bundle before
        its own transaction.

        Yields:
            This workspace.

        Raises:
            ConflictError: a write conflicts with stored data; nothing was written.
            StoreError: the database failed; nothing was written.
        """
        with self.db.transaction():
            yield self

    def close(self) -> None:
        """Release the database connections."""
        self.db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace(home={str(self.settings.home)!r}, store={self.db._safe_url()!r})"


def _audited_upgrade(user: str) -> Callable[[Database, str | None, str], None]:
    """The audit entry of a schema change: ``workspace.create`` for a new store,
    ``workspace.upgrade`` for an older one, in the migration's transaction."""

    def record(db: Database, before: str | None, after: str) -> None:
        record_change(
            db,
            "workspace.create" if before is None else "workspace.upgrade",
            "workspace",
            user,
            before=None if before is None else {"schema_revision": before},
            after={"schema_revision": after, "store": db._safe_url()},
        )

    return record


def _prepare_home(home: Path) -> None:
    if home.exists() and not home.is_dir():
        raise WorkspaceError(f"The workspace {home} is a file, not a folder")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkspaceError(f"Cannot create the workspace folder {home}: {e.strerror}") from e
    if not os.access(home, os.R_OK | os.W_OK | os.X_OK):
        raise WorkspaceError(f"The workspace folder {home} is not readable and writable")


def _artifact_store(settings: Settings) -> ArtifactStore:
    """The artifact store: sealed with AES-256-GCM when the settings give a key."""
    try:
        text = settings.encryption_key_value()
    except OSError as e:
        raise WorkspaceError(
            f"Cannot read the encryption key file {settings.encryption_key_file}: {e.strerror}"
        ) from None
    if text is None:
        return LocalArtifactStore(settings.resolved_artifacts)
    from forgeml.store._encryption import EncryptedArtifactStore, load_key

    return EncryptedArtifactStore(settings.resolved_artifacts, load_key(text))
