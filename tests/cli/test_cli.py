"""The command line through a real process: output, JSON, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from forgeml.config import Settings
from forgeml.store import Metric, Workspace


def forgeml(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def assert_clean_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one readable line
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "ws"
    with Workspace(Settings(home=home)) as ws:
        for i, auc in enumerate([0.71, 0.93]):
            run_id = ws.runs.create_run("churn", name=f"model-{i}")
            ws.runs.log_batch(run_id, params={"lr": 0.1 * (i + 1)}, metrics=[Metric("auc", auc)])
            ws.runs.end_run(run_id)
    return home


def test_init_creates_the_workspace(tmp_path):
    result = forgeml("init", "--json", home=tmp_path / "fresh")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert Path(info["home"]) == (tmp_path / "fresh").resolve()
    assert info["schema_revision"]
    assert (tmp_path / "fresh" / "forgeml.db").is_file()


def test_version(tmp_path):
    result = forgeml("version", "--json", home=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout)["forgeml"]


def test_runs_list_show_compare(home):
    listed = forgeml("runs", "list", home=home)
    assert listed.returncode == 0, listed.stderr
    assert "model-0" in listed.stdout and "model-1" in listed.stdout
    runs = json.loads(forgeml("runs", "list", "--json", home=home).stdout)
    assert [r["name"] for r in runs] == ["model-1", "model-0"]
    best = json.loads(
        forgeml("runs", "list", "-f", "metrics.auc > 0.9", "--json", home=home).stdout
    )
    assert [r["name"] for r in best] == ["model-1"]
    ordered = json.loads(
        forgeml("runs", "list", "-o", "metrics.auc asc", "--json", home=home).stdout
    )
    assert [r["name"] for r in ordered] == ["model-0", "model-1"]
    run_id = runs[0]["run_id"]
    shown = forgeml("runs", "show", run_id[:8], home=home)
    assert shown.returncode == 0 and run_id in shown.stdout and "0.93" in shown.stdout
    assert json.loads(forgeml("runs", "show", run_id, "--json", home=home).stdout)["metrics"] == {
        "auc": 0.93
    }
    compared = forgeml("runs", "compare", runs[0]["run_id"], runs[1]["run_id"], home=home)
    assert compared.returncode == 0 and "*params.lr" in compared.stdout


@pytest.mark.slow
def test_quickstart_runs_end_to_end(tmp_path):
    home = tmp_path / "qs"
    result = forgeml("quickstart", "--time-budget", "8", "--json", home=home)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["dataset"]["rows"] == 48_842
    assert summary["dataset"]["quality_errors"] == 0
    assert summary["test_metrics"]["roc_auc"] > 0.88  # HGB on adult reaches about 0.927
    auc = summary["evaluation"]["roc_auc"]
    assert auc["lower"] < auc["value"] < auc["upper"]
    assert all(0.0 <= p <= 1.0 for p in summary["predictions"])
    run = json.loads(forgeml("runs", "show", summary["run_id"], "--json", home=home).stdout)
    assert run["status"] == "finished"
    assert run["params"]["dataset"] == summary["dataset"]["ref"]
    assert {"evaluation", "leaderboard.csv"} <= {a["path"] for a in run["artifacts"]}
    model = forgeml("models", "show", "adult-income@production", "--json", home=home)
    assert model.returncode == 0, model.stderr
    assert json.loads(model.stdout)["run_id"] == summary["run_id"]
    # with access control on (a first key), the quickstart needs a key and acts as its holder;
    # a second quickstart finds the same data version and adds a model version
    key_file = tmp_path / "root.key"
    made = forgeml(
        "keys", "create", "--role", "admin", "--name", "root", "-o", str(key_file), home=home
    )
    assert made.returncode == 0, made.stderr
    assert_clean_error(forgeml("quickstart", "--time-budget", "5", home=home), 2, "API key")
    keyed = {"FORGEML_API_KEY_FILE": str(key_file)}
    second = forgeml("quickstart", "--time-budget", "5", "--json", home=home, env=keyed)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["dataset"]["ref"] == summary["dataset"]["ref"]
    assert again["model"] == "adult-income@2"
    audit = json.loads(forgeml("audit", "list", "--json", home=home, env=keyed).stdout)
    actions = [e["action"] for e in audit]
    after_key = [(e["action"], e["actor"]) for e in audit[actions.index("key.create") + 1 :]]
    assert ("model.register", "root") in after_key and ("alias.move", "root") in after_key
    assert ("feedback.add", "root") in after_key  # the quickstart's server acted as the key
    assert {actor for _, actor in after_key} == {"root"}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("runs", "show", "0123456789abcdef"), ("No run",)),
        (("runs", "show", "nope"), ("No run",)),
        (("runs", "list", "-f", "metrics.auc >"), ("filter",)),
        (("runs", "list", "-f", "colour = 'red'"), ("colour",)),
        (("runs", "list", "-o", "metrics.auc sideways"), ("sideways",)),
        (("runs", "list", "--limit", "0"), ("--limit",)),
        (("runs", "compare", "abc"), ("at least two",)),
        (("runs", "lst"), ("lst",)),
        (("runs", "list", "--bogus"), ("--bogus",)),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home, args, words):
    assert_clean_error(forgeml(*args, home=home), 2, *words)


def test_a_workspace_that_is_a_file(tmp_path):
    blocker = tmp_path / "ws"
    blocker.write_text("not a folder")
    assert_clean_error(forgeml("runs", "list", home=blocker), 2, "is a file")


def test_a_store_that_is_not_a_database(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    (home / "forgeml.db").write_bytes(b"this is not sqlite" * 100)
    assert_clean_error(forgeml("runs", "list", home=home), 2, "forgeml.db")


def test_a_store_written_by_a_newer_forgeml(home):
    engine = sa.create_engine(f"sqlite:///{home / 'forgeml.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    assert_clean_error(forgeml("runs", "list", home=home), 2, "9999", "newer")


def test_an_unknown_store_url(tmp_path):
    result = forgeml("runs", "list", home=tmp_path, env={"FORGEML_STORE_URL": "mysql://x/y"})
    assert_clean_error(result, 2, "store URL")
