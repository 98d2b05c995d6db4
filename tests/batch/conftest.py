"""The shared real dataset the bad-row tests corrupt (skipped if absent, failed in CI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bank_path(shared_dataset: Callable[[str], Path]) -> Path:
    """bank-additional-full.csv, through the suite's shared-dataset helper."""
    return shared_dataset("bank-additional-full.csv")
