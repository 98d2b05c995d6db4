"""Fixtures of the evaluation tests: the shared datasets and a seed per test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
COMPAS = DATASETS / "compas-scores-two-years.csv"


@pytest.fixture(scope="session")
def compas_path() -> Path:
    if not COMPAS.is_file():
        pytest.skip(f"the COMPAS dataset is absent ({COMPAS})")
    return COMPAS


@pytest.fixture(scope="session")
def compas(compas_path: Path) -> pd.DataFrame:
    return pd.read_csv(compas_path)


@pytest.fixture(params=[0, 1, 2])
def seed(request: pytest.FixtureRequest) -> int:
    """Several seeds, so no test leans on one lucky draw."""
    return request.param
