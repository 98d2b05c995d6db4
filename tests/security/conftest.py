"""Workspaces with one key per role, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from forgeml import workflows
from forgeml.security import ROLES, Principal, authenticate
from forgeml.store import Workspace


@dataclass
class Keys:
    """A workspace with an admin key (the first) and one key per role."""

    workspace: Workspace
    tokens: dict[str, str]

    def principal(self, role: str) -> Principal:
        return authenticate(self.workspace, self.tokens[role])

    def context(self, role: str, origin: str = "test") -> workflows.Context:
        return workflows.Context(self.workspace, self.principal(role), origin=origin)


def make_keys(ws: Workspace) -> Keys:
    first = workflows.create_key(
        workflows.Context(ws, Principal("setup")), role="admin", name="root"
    )
    admin = workflows.Context(ws, authenticate(ws, first.token))
    tokens = {"admin": first.token}
    for role in ROLES:
        if role != "admin":
            tokens[role] = workflows.create_key(admin, role=role, name=f"{role}-key").token
    return Keys(ws, tokens)


@pytest.fixture
def keys(workspace: Workspace) -> Keys:
    return make_keys(workspace)


@pytest.fixture(scope="session")
def adult_numeric(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """2,000 rows of UCI Adult: its numeric columns and the target ``income``."""
    frame = pd.read_csv(shared_dataset("adult.csv"), nrows=2000)
    return frame[["age", "education_num", "hours_per_week", "capital_gain", "income"]]
