"""Fixtures of the evaluation tests: the shared datasets and a seed per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def compas_path(shared_dataset: Callable[[str], Path]) -> Path:
    return shared_dataset("compas-scores-two-years.csv")


@pytest.fixture(scope="session")
def compas(compas_path: Path) -> pd.DataFrame:
    return pd.read_csv(compas_path)


@pytest.fixture(params=[0, 1, 2])
def seed(request: pytest.FixtureRequest) -> int:
    """Several seeds, so no test leans on one lucky draw."""
    return request.param
