"""Fixtures for the training tests: small real tables and a workspace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from forgeml.config import Settings
from forgeml.store import Workspace

from ..conftest import shared_dataset_path

shared = shared_dataset_path  # for tests that open a file directly


@pytest.fixture
def dataset(shared_dataset: Callable[[str], Path]) -> Callable[[str], Path]:
    """The path of a shared dataset file (see the suite's ``shared_dataset``)."""
    return shared_dataset


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(Settings(home=tmp_path / "ws"))
    yield workspace
    workspace.close()


@pytest.fixture(scope="session")
def german(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    return pd.read_csv(shared_dataset("german-credit.csv"))


@pytest.fixture(scope="session")
def adult_sample(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    frame = pd.read_csv(shared_dataset("adult.csv")).drop(columns=["split"])
    return frame.sample(n=4000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def adult_head(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """Adult's first 4,000 rows, in file order (with missing categories among them)."""
    frame = pd.read_csv(shared_dataset("adult.csv"), nrows=4000).drop(columns=["split"])
    assert frame.isna().any(axis=1).sum() > 100
    return frame
