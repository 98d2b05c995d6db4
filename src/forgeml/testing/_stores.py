"""Isolated metadata stores for tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import sqlalchemy as sa

__all__ = ["DEFAULT_POSTGRES_URL", "isolated_postgres_url", "postgres_unavailable_reason"]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"


def postgres_unavailable_reason(url: str = DEFAULT_POSTGRES_URL) -> str | None:
    """Why the PostgreSQL server at ``url`` cannot be used, or ``None`` when it answers."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'forgeml[postgres]')"
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as e:
        return f"no PostgreSQL server answers at {url}: {str(e.orig).strip().splitlines()[0]}"
    finally:
        engine.dispose()
    return None


@contextmanager
def isolated_postgres_url(url: str = DEFAULT_POSTGRES_URL) -> Iterator[str]:
    """A URL whose connections use a new, empty schema of their own; dropped on exit."""
    schema = f"fm_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()
