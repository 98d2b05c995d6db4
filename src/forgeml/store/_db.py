"""The database handle: engine, dialect set-up, the one transaction helper, migrations on open."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from forgeml.errors import ConflictError, StoreError, StoreVersionError, WorkspaceError

__all__ = ["Database", "now_ms"]

_MIGRATIONS = Path(__file__).with_name("_migrations")
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
_SQLITE_BUSY_TIMEOUT_MS = 60_000
# Key of the PostgreSQL advisory lock that serialises schema upgrades between processes.
_MIGRATION_LOCK_KEY = 0x666F72676D6C  # "forgml"

# The open transaction of each Database in this thread or task: id(database) -> (its
# connection, whether it writes, the audit entries to write before it commits). A context
# variable, so that threads and asyncio tasks never see each other's transactions.
_OPEN: ContextVar[dict[int, tuple[Connection, bool, list[Any]]]] = ContextVar(
    "forgeml_open_transactions"
)


def now_ms() -> int:
    """The current time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def known_revisions() -> list[str]:
    """Revision ids this forgeml ships, oldest first (the ``NNNN`` prefix of each file)."""
    names = (p.name for p in (_MIGRATIONS / "versions").glob("*.py"))
    return sorted(m.group(1) for m in map(_REVISION_FILE.match, names) if m)


class Database:
    """A metadata store database: one engine, set up for its dialect, schema kept current.

    Opening a ``Database`` applies every pending migration (an older store upgrades in place)
    and refuses a store whose schema revision this forgeml does not know (a newer store).
    Concurrent openers are serialised: ``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
    PostgreSQL, so that eight processes opening a fresh store at once migrate it once.

    Thread safety: a ``Database`` may be shared by threads; each transaction uses its own
    pooled connection.
    """

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        echo: bool = False,
        on_upgrade: Callable[[Database, str | None, str], None] | None = None,
    ) -> None:
        self.url = sa.make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise WorkspaceError(
                f"The store URL must be sqlite:/// or postgresql+psycopg://; got {self.dialect}://"
            )
        self.engine = self._create_engine(echo)
        #: Writes the audit entries a transaction collected, just before it commits (set by
        #: the audit store; the entries are written last so the audit lock is taken last).
        self.before_commit: Callable[[Connection, list[Any]], None] | None = None
        self._closed = False
        self._lock = threading.Lock()
        if migrate:
            try:
                self.upgrade(on_upgrade)
            except BaseException:
                self.engine.dispose()  # a refused store keeps no connection open
                raise

    def _create_engine(self, echo: bool) -> Engine:
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:":
                folder = Path(database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise WorkspaceError(f"Cannot create the store folder {folder}: {e}") from e
            engine = sa.create_engine(
                self.url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 60},
                pool_size=8,
                max_overflow=8,
            )
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        try:
            return sa.create_engine(self.url, echo=echo, pool_pre_ping=True)
        except ImportError as e:  # psycopg is the 'postgres' extra
            raise WorkspaceError(
                "PostgreSQL needs the driver: pip install 'forgeml[postgres]'"
            ) from e

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """One transaction: commit on success, roll back on error, driver errors mapped.

        Transactions nest: inside an open transaction of this database (in the same thread or
        asyncio task), an inner ``transaction()`` joins it and yields the same connection; only
        the outermost one commits, and an error anywhere rolls all of it back. That is how
        store methods, each written as one transaction, compose into a unit of work.

        Args:
            write: the transaction writes. On SQLite a writer takes the write lock up front
                (``BEGIN IMMEDIATE``), so it waits for the busy timeout instead of failing
                with "database is locked" when it later upgrades a read lock.

        Raises:
            ConflictError: a uniqueness or foreign-key constraint was violated.
            StoreError: the database failed or could not be reached, or a writing transaction
                was asked for inside a read-only one.
        """
        open_ = _OPEN.get({})
        joined = open_.get(id(self))
        if joined is not None:
            conn, writes, _ = joined
            if write and not writes:
                raise StoreError(
                    "A write cannot join a read-only transaction; open the outer transaction "
                    "with write=True"
                )
            with self._mapped_errors():
                yield conn
            return
        with self._mapped_errors(), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(forgeml_begin="IMMEDIATE" if write else "DEFERRED")
            pending: list[Any] = []
            token = _OPEN.set({**open_, id(self): (conn, write, pending)})
            try:
                with conn.begin():
                    yield conn
                    if pending and self.before_commit is not None:
                        self.before_commit(conn, pending)
            finally:
                _OPEN.reset(token)

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        try:
            yield
        except exc.IntegrityError as e:
            raise ConflictError(f"The write conflicts with stored data: {e.orig}") from e
        except exc.DBAPIError as e:
            raise StoreError(f"The metadata store failed ({self._safe_url()}): {e.orig}") from e

    def record(self, entry: Any) -> None:
        """Queue an audit entry in the open write transaction; it is written (by
        ``before_commit``) in the same transaction, just before the commit, or not at all.

        Raises:
            StoreError: no write transaction of this database is open here.
        """
        joined = _OPEN.get({}).get(id(self))
        if joined is None or not joined[1]:
            raise StoreError("An audit entry is recorded inside a write transaction")
        joined[2].append(entry)

    def in_transaction(self) -> bool:
        """Whether a transaction of this database is open in this thread or asyncio task."""
        return id(self) in _OPEN.get({})

    def insert(self, table: sa.Table) -> Any:
        """An INSERT in this dialect, with ``on_conflict_do_nothing`` / ``_do_update``."""
        from sqlalchemy.dialects import postgresql, sqlite

        if self.dialect == "sqlite":
            return sqlite.insert(table)
        return postgresql.insert(table)

    def _safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    # -- migrations -------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The schema revision stored in the database, ``None`` for an empty database."""
        with self.transaction(write=False) as conn:
            return _read_revision(conn)

    def upgrade(
        self, on_upgrade: Callable[[Database, str | None, str], None] | None = None
    ) -> None:
        """Bring the schema to this forgeml's head revision, or refuse a newer one.

        Args:
            on_upgrade: called as ``(database, revision before, head)`` in the migration's
                transaction, after the migration (the workspace records its audit entry
                there: created, or upgraded, with the change).
        """
        revisions = known_revisions()
        head = revisions[-1]
        try:
            current = self.current_revision()
        except StoreError as e:
            # an unusable SQLite file is a bad workspace; an unreachable server may come back
            error = WorkspaceError if self.dialect == "sqlite" else StoreError
            cause = getattr(e.__cause__, "orig", e.__cause__) or e
            raise error(f"Cannot open the metadata store {self._safe_url()}: {cause}") from e
        if current == head:
            return
        _refuse_unknown(current, revisions, self._safe_url())
        from alembic import command
        from alembic.config import Config

        with self.transaction(write=True) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
            current = _read_revision(conn)  # another process may have migrated meanwhile
            if current == head:
                return
            _refuse_unknown(current, revisions, self._safe_url())
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if on_upgrade is not None:
                on_upgrade(self, current, head)

    def close(self) -> None:
        """Dispose of the engine's pooled connections."""
        with self._lock:
            if not self._closed:
                self.engine.dispose()
                self._closed = True


def _read_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return None if row is None else str(row[0])


def _refuse_unknown(current: str | None, revisions: list[str], where: str) -> None:
    if current is not None and current not in revisions:
        raise StoreVersionError(
            f"The metadata store {where} has schema revision {current}, newer than this forgeml "
            f"knows (up to {revisions[-1]}); upgrade forgeml: pip install -U forgeml"
        )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (pysqlite's own is wrong for
    # DDL and for write locks), then set the pragmas every connection needs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("forgeml_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")
