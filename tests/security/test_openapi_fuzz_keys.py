"""schemathesis against the server's own OpenAPI document on a workspace with keys (SQLite and
PostgreSQL), without a key and with a viewer key, through a real server on 127.0.0.1: no
request gets a 5xx, and no request gets a 2xx on a route the written matrix does not give the
caller (every request and answer is read back from schemathesis's HAR report); nothing changed
in the workspace."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import lightgbm as lgb
import pandas as pd
import pytest

import forgeml as fm
from forgeml.config import Settings
from forgeml.http._access import match_route
from forgeml.security import PUBLIC, allowed
from forgeml.store import Workspace
from forgeml.testing import ServerThread, isolated_postgres_url

from .conftest import Keys, make_keys

MODEL = "adult-gbm"
CONFIG = """
[dictionaries.served]
values = ["adult-gbm"]

[dictionaries.versions]
values = [1]

[parameters]
"path.name" = { dictionary = "served", probability = 0.8 }
"path.version" = { dictionary = "versions", probability = 0.8 }
"""


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def keyed_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    adult_numeric: pd.DataFrame,
) -> Iterator[tuple[Keys, ServerThread]]:
    from tests.conftest import POSTGRES_URL, _postgres_reason

    with contextlib.ExitStack() as stack:
        store_url = None
        if request.param == "postgresql":
            reason = _postgres_reason()
            if reason:
                pytest.skip(reason)
            store_url = stack.enter_context(isolated_postgres_url(POSTGRES_URL))
        home = tmp_path_factory.mktemp("fuzz-keys")
        ws = Workspace(Settings(home=home, store_url=store_url))
        X, y = adult_numeric.drop(columns=["income"]), adult_numeric["income"]
        model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, random_state=0, verbose=-1)
        fm.register(model.fit(X, y), name=MODEL, sample=X, workspace=ws, actor="setup")
        fm.registry.promote(MODEL, 1, workspace=ws, actor="setup")
        keys = make_keys(ws)
        with ServerThread(ws, models=(f"{MODEL}@production",)) as server:
            yield keys, server
        ws.close()


@pytest.mark.parametrize("role", [None, "viewer"])
def test_no_server_error_and_no_success_without_the_role(
    keyed_server: tuple[Keys, ServerThread], tmp_path: Path, role: str | None
) -> None:
    keys, server = keyed_server
    before = len(keys.workspace.audit.entries())
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    har = tmp_path / "run.har"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{server.url}/openapi.json", "--checks", "not_a_server_error",
        "--phases", "examples,coverage,fuzzing", "--max-examples", "10",
        "--seed", "20240601", "--workers", "1", "--request-timeout", "30",
        "--report", "har", "--report-har-path", str(har),
    ]  # fmt: skip
    if role is not None:
        command += ["--header", f"Authorization: Bearer {keys.tokens[role]}"]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    assert len(entries) > 50, len(entries)
    seen: set[str] = set()
    for entry in entries:
        method = entry["request"]["method"]
        path = urlsplit(entry["request"]["url"]).path
        status = entry["response"]["status"]
        action = match_route(method, path)
        assert status < 500, (method, path, status)
        if action is None:
            continue
        seen.add(action)
        if 200 <= status < 300:
            assert action == PUBLIC or (role is not None and allowed(role, action)), (
                method,
                path,
                status,
            )
    assert {"predict", "alias.move", "route.write", "feedback"} <= seen
    # the workspace did not change: no entry in the audit log
    assert len(keys.workspace.audit.entries()) == before
