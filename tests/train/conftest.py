"""Fixtures for the training tests: small real tables and a workspace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from forgeml.config import Settings
from forgeml.store import Workspace

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def shared(name: str) -> Path:
    path = DATASETS / name
    if not path.is_file():
        pytest.skip(f"the shared dataset {path} is absent")
    return path


@pytest.fixture
def dataset() -> Callable[[str], Path]:
    """The path of a shared dataset file; the test skips when it is absent."""
    return shared


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(Settings(home=tmp_path / "ws"))
    yield workspace
    workspace.close()


@pytest.fixture(scope="session")
def german() -> pd.DataFrame:
    return pd.read_csv(shared("german-credit.csv"))


@pytest.fixture(scope="session")
def adult_sample() -> pd.DataFrame:
    frame = pd.read_csv(shared("adult.csv")).drop(columns=["split"])
    return frame.sample(n=4000, random_state=0).reset_index(drop=True)
