"""Real data for the use-case tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from forgeml.security import Principal, access_control_on, authenticate, create_key
from forgeml.store import Workspace


@pytest.fixture(scope="session")
def adult_numeric(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """2,000 rows of UCI Adult: its numeric columns and the target ``income``."""
    frame = pd.read_csv(shared_dataset("adult.csv"), nrows=2000)
    return frame[["age", "education_num", "hours_per_week", "capital_gain", "income"]]


def principal(ws: Workspace, name: str, kind: str = "user") -> Principal:
    """``name`` as the principal that may act: the local user without access control, an
    admin key of that name with it (always on PostgreSQL, team mode)."""
    if not access_control_on(ws):
        return Principal(name, kind)
    first = None if not ws.keys.any() else authenticate(ws, ws_admin[id(ws)])
    created = create_key(ws, role="admin", name=name, actor=first)
    ws_admin.setdefault(id(ws), created.token)
    return authenticate(ws, created.token)


ws_admin: dict[int, str] = {}
