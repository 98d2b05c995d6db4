"""Fixtures of the datasets tests: a workspace per test and the shared real datasets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from forgeml.config import Settings
from forgeml.store import Workspace

from ..conftest import shared_dataset_path

shared_file = shared_dataset_path  # for tests that open a file directly


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """An embedded workspace of its own."""
    workspace = Workspace(Settings(home=tmp_path / "ws"))
    yield workspace
    workspace.close()


@pytest.fixture
def adult_path(shared_dataset: Callable[[str], Path]) -> Path:
    return shared_dataset("adult.csv")


@pytest.fixture(scope="session")
def adult_frame(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """adult.csv as pandas reads it (tests copy before changing it)."""
    return pd.read_csv(shared_dataset("adult.csv"))


@pytest.fixture(scope="session")
def compas(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """compas-scores-two-years.csv as pandas reads it."""
    return pd.read_csv(shared_dataset("compas-scores-two-years.csv"))


@pytest.fixture(scope="session")
def bike(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """bike-sharing-hour.csv as pandas reads it."""
    return pd.read_csv(shared_dataset("bike-sharing-hour.csv"))
