"""Small fitted models and real data for the registry tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def adult(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """3,000 rows of UCI Adult (real data), features and the target ``income``."""
    path = shared_dataset("adult.csv")
    frame = pd.read_csv(path, nrows=3000).drop(columns=["split"])
    return frame


@pytest.fixture(scope="session")
def german(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """German credit (real data): 1,000 rows, 13 text columns, the target ``class``."""
    return pd.read_csv(shared_dataset("german-credit.csv"))


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
