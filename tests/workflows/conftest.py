"""Real data for the use-case tests."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def dataset_path(name: str) -> Path:
    """The shared dataset ``name``: missing fails in CI and skips elsewhere."""
    path = DATASETS / name
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the shared dataset {path} is absent")
        pytest.skip(f"the shared dataset {path} is absent")
    return path


@pytest.fixture(scope="session")
def adult_numeric() -> pd.DataFrame:
    """2,000 rows of UCI Adult: its numeric columns and the target ``income``."""
    frame = pd.read_csv(dataset_path("adult.csv"), nrows=2000)
    return frame[["age", "education_num", "hours_per_week", "capital_gain", "income"]]
