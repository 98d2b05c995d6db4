"""``forgeml models ...`` in a subprocess: tables, JSON, and one line + exit 2 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from forgeml import registry
from forgeml.config import Settings
from forgeml.store import Workspace


def _cli(home, *args):
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), "models", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FORGEML_USER": "ana"},
    )


@pytest.fixture
def home(tmp_path, tiny, tiny_model):
    X, _ = tiny
    with Workspace(Settings(home=tmp_path / "ws")) as ws:
        for _ in range(2):
            registry.register(tiny_model, name="churn", sample=X, workspace=ws)
        registry.retire("churn", 2, reason="leak", workspace=ws)
    return tmp_path / "ws"


def test_promote_show_and_history(home):
    result = _cli(home, "promote", "churn", "1", "--alias", "production", "--reason", "launch")
    assert result.returncode == 0, result.stderr
    assert "churn@production -> 1" in result.stdout
    shown = json.loads(_cli(home, "show", "churn", "--all", "--json").stdout)
    assert shown["aliases"] == {"production": 1}
    assert [(v["version"], v["status"]) for v in shown["versions"]] == [
        (2, "retired"),
        (1, "active"),
    ]
    events = json.loads(_cli(home, "history", "churn", "--json").stdout)
    assert events[-1] | {"at": 0} == {
        "name": "churn", "kind": "alias", "at": 0, "version": 1, "alias": "production",
        "from_version": None, "to_version": 1, "from_status": None, "to_status": None,
        "actor": "ana", "reason": "launch",
    }  # fmt: skip
    table = _cli(home, "list")
    assert "production=1" in table.stdout
    card = _cli(home, "card", "churn@production")
    assert card.stdout.startswith("# churn@1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "No model named 'nope'"),
        (["show", "churn@7"], "no version 7"),
        (["show", "churn@staging"], "no alias 'staging'"),
        (["promote", "churn", "2", "--alias", "production"], "retired"),
        (["promote", "churn", "1", "--alias", "Prod!"], "An alias is a lowercase letter"),
        (["lineage", "churn@@1"], "A model reference"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home, args, message):
    result = _cli(home, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
