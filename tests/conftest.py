"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeml.config import Settings
from forgeml.store import Workspace
from forgeml.testing import (
    DEFAULT_POSTGRES_URL,
    isolated_postgres_url,
    postgres_unavailable_reason,
)

POSTGRES_URL = os.environ.get("FORGEML_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

_pg_reason: list[str | None] = []


def _postgres_reason() -> str | None:
    if not _pg_reason:
        _pg_reason.append(postgres_unavailable_reason(POSTGRES_URL))
    return _pg_reason[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An isolated, empty metadata store URL on each back end."""
    if request.param == "sqlite":
        (tmp_path / "store").mkdir()
        yield f"sqlite:///{tmp_path / 'store' / 'forgeml.db'}"
        return
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    with isolated_postgres_url(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def workspace(store_url: str, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on each back end, artifacts in a temporary folder."""
    settings = Settings(home=tmp_path / "ws", store_url=store_url, artifacts=tmp_path / "artifacts")
    ws = Workspace(settings)
    yield ws
    ws.close()


@pytest.fixture
def sqlite_workspace(tmp_path: Path) -> Iterator[Workspace]:
    """The embedded default: everything inside one workspace folder."""
    ws = Workspace(Settings(home=tmp_path / "ws"))
    yield ws
    ws.close()


@pytest.fixture
def datasets_dir() -> Path:
    """The shared real datasets; tests that need them skip when the folder is absent."""
    if not DATASETS.is_dir():
        pytest.skip(f"the shared datasets folder {DATASETS} is absent")
    return DATASETS
