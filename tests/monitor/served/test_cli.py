"""``forgeml monitor report | alerts check | alerts list | watch`` in a real process; bad
input exits 2 with one readable line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import MODEL, REF


def forgeml(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def assert_clean_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _rules(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "name": "inputs drift",
                        "model": REF,
                        "metric": "input_drift.share_drifted",
                        "op": ">",
                        "threshold": 0.1,
                        "windows": 2,
                    },
                    {
                        "name": "errors",
                        "model": REF,
                        "metric": "error_rate",
                        "op": ">=",
                        "threshold": 0.5,
                    },
                ]
            }
        )
    )
    return path


def test_report_alerts_and_watch_from_the_command_line(logged_sqlite, tmp_path):
    home = logged_sqlite.home
    text = forgeml(
        "monitor",
        "report",
        REF,
        "--window",
        "1d",
        "--bootstrap",
        "50",
        "--price-per-core-hour",
        "0.05",
        "--html",
        str(tmp_path / "r.html"),
        home=home,
    )
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "version 1" in out and "windows of 1 day (UTC)" in out
    assert "empty window" in out and "est. accuracy" in out
    assert (
        "per 1,000 predictions" in out and "CPU time and memory per model are not recorded" in out
    )
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")

    as_json = forgeml(
        "monitor", "report", REF, "--window", "1d", "--bootstrap", "0", "--json", home=home
    )
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert [w["rows"] for w in document["windows"]] == [400, 400, 400, 400, 0]
    assert document["windows"][4]["empty"] is True

    rules = _rules(tmp_path / "rules.yaml")
    checked = forgeml("monitor", "alerts", "check", str(rules), "--window", "1d", home=home)
    assert checked.returncode == 0, checked.stderr
    assert "ALERT [warning] inputs drift" in checked.stdout
    assert "1 new alert(s)" in checked.stdout and "is empty" in checked.stdout

    watched = forgeml(
        "monitor",
        "watch",
        str(rules),
        "--window",
        "1d",
        "--interval",
        "0.1",
        "--iterations",
        "2",
        home=home,
    )
    assert watched.returncode == 0, watched.stderr
    # it resumes after the check: only the newest closed window is read again, nothing repeats
    assert watched.stdout.count("0 new alert(s) on 1 window(s) of 1 model(s)") == 2

    listed = forgeml("monitor", "alerts", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    [alert] = json.loads(listed.stdout)
    assert (
        alert["rule"] == "inputs drift" and alert["model"] == MODEL and alert["delivery"] == "none"
    )


def test_bad_input_exits_2_with_one_line(logged_sqlite, tmp_path):
    home = logged_sqlite.home
    assert_clean_error(
        forgeml("monitor", "report", REF, "--window", "1x", home=home), 2, "window", "1d"
    )
    assert_clean_error(
        forgeml("monitor", "report", REF, "--since", "yesterday", home=home), 2, "--since"
    )
    unknown = forgeml("monitor", "report", "nobody@production", home=home)
    assert unknown.returncode != 0 and "nobody" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    alias = forgeml("monitor", "report", f"{MODEL}@staging", home=home)
    assert alias.returncode != 0 and "staging" in alias.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"rules": [{"name": "x", "model": REF, "metric": "rows", "op": "~", "threshold": 1}]}
        )
    )
    assert_clean_error(forgeml("monitor", "alerts", "check", str(bad), home=home), 2, "rules[0].op")
    assert_clean_error(
        forgeml("monitor", "watch", str(tmp_path / "none.yaml"), home=home), 2, "does not exist"
    )
    assert_clean_error(
        forgeml("monitor", "watch", str(bad), "--interval", "0", home=home), 2, "rules[0].op"
    )
