"""Fixtures of the datasets tests: a workspace per test and the shared real datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from forgeml.config import Settings
from forgeml.store import Workspace

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def shared_file(name: str) -> Path:
    """A file of the shared datasets folder; the test skips when it is absent."""
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"the shared dataset {path} is absent (see /work/shared/datasets/README.md)")
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """An embedded workspace of its own."""
    workspace = Workspace(Settings(home=tmp_path / "ws"))
    yield workspace
    workspace.close()


@pytest.fixture
def adult_path() -> Path:
    return shared_file("adult.csv")


@pytest.fixture(scope="session")
def adult_frame() -> pd.DataFrame:
    """adult.csv as pandas reads it (tests copy before changing it)."""
    return pd.read_csv(shared_file("adult.csv"))


@pytest.fixture(scope="session")
def compas() -> pd.DataFrame:
    """compas-scores-two-years.csv as pandas reads it."""
    return pd.read_csv(shared_file("compas-scores-two-years.csv"))


@pytest.fixture(scope="session")
def bike() -> pd.DataFrame:
    """bike-sharing-hour.csv as pandas reads it."""
    return pd.read_csv(shared_file("bike-sharing-hour.csv"))
