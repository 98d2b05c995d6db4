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


class Server:
    """A real Uvicorn server on 127.0.0.1 in a thread of the test process."""

    def __init__(self, ws: Workspace, **options: object) -> None:
        import socket
        import threading

        import uvicorn

        from forgeml.http import create_app
        from forgeml.serve import ServeOptions

        options.setdefault("access_log", False)
        options.setdefault("poll_interval", 0.2)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.app = create_app(ServeOptions(port=self.port, **options), workspace=ws)  # type: ignore[arg-type]
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        import time

        import httpx

        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not become ready in 60 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
