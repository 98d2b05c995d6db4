"""Small fitted models and real data for the registry tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    """3,000 rows of UCI Adult (real data), features and the target ``income``."""
    path = DATASETS / "adult.csv"
    if not path.is_file():
        pytest.skip(f"the shared dataset {path} is absent")
    frame = pd.read_csv(path, nrows=3000).drop(columns=["split"])
    return frame


@pytest.fixture(scope="session")
def tiny() -> tuple[pd.DataFrame, np.ndarray]:
    """A tiny numeric table and a binary target, for tests about the registry, not models."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] + 0.3 * X["b"] > 0).astype(int).to_numpy()
    return X, y


@pytest.fixture
def tiny_model(tiny):
    from sklearn.linear_model import LogisticRegression

    X, y = tiny
    return LogisticRegression().fit(X, y)
