"""The security commands end to end, in real interpreters: keys, roles, guards, audit."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def forgeml(*args: str, home: Path, key: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEML_")}
    env.update({"COLUMNS": "200", "FORGEML_HOME": str(home)})
    if key is not None:
        env["FORGEML_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "forgeml", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_keys_roles_guards_and_audit_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    assert forgeml("models", "list", home=home).returncode == 0  # no keys: no check
    first = forgeml("keys", "create", "--role", "viewer", home=home)
    assert first.returncode == 2 and "first key of a workspace is an admin key" in first.stderr
    key_file = tmp_path / "admin.key"
    made = forgeml(
        "keys", "create", "--role", "admin", "--name", "root", "-o", str(key_file), home=home
    )
    assert made.returncode == 0, made.stderr
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    admin = key_file.read_text().strip()
    assert admin not in made.stdout + made.stderr

    # from now on every command needs a key: one line, exit 2, nothing about which keys exist
    for args in (("models", "list"), ("keys", "list"), ("audit", "verify")):
        denied = forgeml(*args, home=home)
        assert denied.returncode == 2
        assert denied.stderr.strip().startswith("error: Access control is on")
        assert "Traceback" not in denied.stderr
    bogus = forgeml("models", "list", home=home, key="fml_" + "0" * 12 + "_" + "x" * 43)
    assert (bogus.returncode, bogus.stderr.strip()) == (
        2,
        "error: The API key is missing or not valid",
    )
    # the key from a file given on the command line, or from the environment
    by_file = forgeml("--api-key-file", str(key_file), "models", "list", home=home)
    assert by_file.returncode == 0, by_file.stderr

    viewer = json.loads(
        forgeml(
            "keys", "create", "--role", "viewer", "--name", "vi", "--json", home=home, key=admin
        ).stdout
    )["key"]
    assert forgeml("models", "list", home=home, key=viewer).returncode == 0
    refused = forgeml("keys", "list", home=home, key=viewer)
    assert refused.returncode == 2
    assert "Key 'vi' (role viewer) may not create, list and revoke API keys" in refused.stderr
    refused = forgeml("data", "add", "nope.csv", home=home, key=viewer)
    assert refused.returncode == 2 and "may not add data" in refused.stderr

    guarded = forgeml(
        "aliases", "protect", "production", "--roles", "deployer,admin", home=home, key=admin
    )
    assert guarded.returncode == 0, guarded.stderr
    listed = forgeml("keys", "list", "--json", home=home, key=admin)
    assert {k["name"] for k in json.loads(listed.stdout)} == {"root", "vi"}
    assert admin not in listed.stdout and viewer not in listed.stdout
    revoked = forgeml("keys", "revoke", "vi", home=home, key=admin)
    assert revoked.returncode == 0
    assert forgeml("models", "list", home=home, key=viewer).returncode == 2

    entries = json.loads(forgeml("audit", "list", "--json", home=home, key=admin).stdout)
    local = os.environ.get("FORGEML_USER") or entries[0]["actor"]
    assert [(e["action"], e["object"], e["actor"], e["origin"]) for e in entries] == [
        ("workspace.create", "workspace", local, "cli"),
        ("key.create", "key:root", local, "cli"),
        ("key.create", "key:vi", "root", "cli"),
        ("guard.set", "model:*@production", "root", "cli"),
        ("key.revoke", "key:vi", "root", "cli"),
    ]
    only = json.loads(
        forgeml("audit", "list", "--json", "--object", "key:vi", home=home, key=admin).stdout
    )
    assert [e["action"] for e in only] == ["key.create", "key.revoke"]
    export = forgeml("audit", "export", home=home, key=admin)
    assert [json.loads(line)["seq"] for line in export.stdout.splitlines()] == [1, 2, 3, 4, 5]
    ok = forgeml("audit", "verify", home=home, key=admin)
    assert ok.returncode == 0 and "audit log intact: 5 entries" in ok.stdout

    with sqlite3.connect(home / "forgeml.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    broken = forgeml("audit", "verify", home=home, key=admin)
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        "audit log broken at entry 2: entry 2 was edited: its hash does not match"
    )


def test_labels_are_corrected_and_their_history_read_from_the_command_line(
    tmp_path: Path,
) -> None:
    from forgeml.config import Settings
    from forgeml.store import PredictionRecord, Workspace

    from .conftest import make_keys

    home = tmp_path / "ws"
    with Workspace(Settings(home=home)) as ws:
        tokens = make_keys(ws).tokens
        record = PredictionRecord(
            request_id="req-1",
            model="adult",
            version=1,
            role="primary",
            protocol="json",
            time_ms=1_780_000_000_000,
            latency_ms=1.0,
            n_rows=2,
            inputs={"age": [39, 50]},
            outputs={"predictions": [">50K", "<=50K"]},
        )
        ws.predlog.write_predictions([record])
        ws.predlog.add_feedback({"req-1": [">50K", ">50K"]}, user="ada")

    viewer, scientist = tokens["viewer"], tokens["scientist"]
    denied = forgeml("feedback", "correct", "req-1", "--label", "a", home=home, key=viewer)
    assert denied.returncode == 2, denied.stderr
    assert "(role viewer) may not correct labels" in denied.stderr
    both = forgeml(
        "feedback", "correct", "req-1", "--label", "a", "--labels-json", '["a"]',
        home=home, key=scientist,
    )  # fmt: skip
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1
    assert "--label" in both.stderr
    wrong = forgeml("feedback", "correct", "req-1", "--label", "<=50K", home=home, key=scientist)
    assert wrong.returncode == 2 and "predicted 2 row(s); got 1 label(s)" in wrong.stderr
    done = forgeml(
        "feedback", "correct", "req-1", "--label", "<=50K", "--label", ">50K",
        "--reason", "re-checked", "--json", home=home, key=scientist,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"request_id": "req-1", "revision": 2}
    shown = forgeml("feedback", "history", "req-1", "--json", home=home, key=tokens["viewer"])
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)
    assert [(h["revision"], h["labels"], h["created_by"], h["reason"]) for h in history] == [
        (1, [">50K", ">50K"], "ada", None),
        (2, ["<=50K", ">50K"], "scientist-key", "re-checked"),
    ]
    audit = forgeml("audit", "list", "--json", home=home, key=tokens["admin"])
    [entry] = [e for e in json.loads(audit.stdout) if e["action"] == "feedback.correct"]
    assert (entry["actor"], entry["origin"], entry["object"]) == (
        "scientist-key",
        "cli",
        "feedback:req-1",
    )
