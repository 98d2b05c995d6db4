"""Fixtures shared by the whole suite.

Under ``CI=true`` a test that would skip fails instead: the CI machine has the shared datasets,
the PostgreSQL server and every test extra, so a missing one is a broken build, not a reason
to pass quietly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI, report a skipped test as failed, with the reason it gave."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"CI=true and this test skipped: {str(reason).removeprefix('Skipped: ')}"


def shared_dataset_path(name: str) -> Path:
    """The path of a file of the shared real datasets; the test skips (fails in CI) if absent."""
    path = DATASETS / name
    if not path.is_file():
        pytest.skip(f"the shared dataset {path} is absent (see {DATASETS}/README.md)")
    return path


@pytest.fixture(scope="session")
def shared_dataset() -> Callable[[str], Path]:
    """``shared_dataset(name)``: the path of a shared dataset file (see ``shared_dataset_path``)."""
    return shared_dataset_path


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
    """The shared real datasets folder; tests that need it skip (fail in CI) when it is absent."""
    if not DATASETS.is_dir():
        pytest.skip(f"the shared datasets folder {DATASETS} is absent")
    return DATASETS
