"""Real data for the use-case tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def adult_numeric(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """2,000 rows of UCI Adult: its numeric columns and the target ``income``."""
    frame = pd.read_csv(shared_dataset("adult.csv"), nrows=2000)
    return frame[["age", "education_num", "hours_per_week", "capital_gain", "income"]]
