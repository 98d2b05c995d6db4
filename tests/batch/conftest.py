"""The shared real datasets for batch-scoring tests (required in CI, skipped elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def bank_path() -> Path:
    """bank-additional-full.csv; in CI (``CI=true``) its absence fails the test."""
    path = DATASETS / "bank-additional-full.csv"
    if not path.is_file():
        message = f"the shared dataset {path} is absent"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
