"""``forgeml loop history``: decisions with their reasons, as a table and as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression

import forgeml as fm
from forgeml.config import Settings
from forgeml.store import Workspace


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_history_lists_every_decision_passed_or_failed(tmp_path, shared_dataset):
    frame = pd.read_csv(shared_dataset("adult.csv"), nrows=1000)
    X = frame[["age", "education_num", "hours_per_week"]]
    home = tmp_path / "ws"
    with Workspace(Settings(home=home)) as ws:
        fm.register(
            LogisticRegression(max_iter=500).fit(X, frame["income"]),
            name="adult",
            sample=X,
            workspace=ws,
        )
        ws.loop.record_decision(
            "adult",
            kind="trigger",
            name="performance",
            passed=True,
            summary="accuracy 0.70 on 500 labelled rows, below 0.80 - 0.05",
            detail={"value": 0.7},
            actor="loop",
        )
        ws.loop.record_decision(
            "adult",
            kind="gate",
            name="latency",
            passed=False,
            cycle=1,
            summary="0.9 ms per row > 0.5 ms",
            actor="loop",
        )
        step = ws.loop.start_step("adult", cycle=1, kind="train", key="cycle-1/train", holder="h")
        ws.loop.finish_step(step.step_id, {"version": 2})

    shown = _cli("loop", "history", "adult", "--steps", home=home)
    assert shown.returncode == 0, shown.stderr
    assert "trigger: performance" in shown.stdout and "pass" in shown.stdout
    assert "gate: latency" in shown.stdout and "fail" in shown.stdout
    assert "0.9 ms per row > 0.5 ms" in shown.stdout
    assert "cycle-1/train" in shown.stdout

    as_json = _cli("loop", "history", "adult", "--json", home=home)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [d["passed"] for d in data["decisions"]] == [True, False]
    assert data["decisions"][0]["detail"] == {"value": 0.7}
    assert data["steps"][0]["output"] == {"version": 2}

    latest = json.loads(_cli("loop", "history", "adult", "-n", "1", "--json", home=home).stdout)
    assert [d["name"] for d in latest["decisions"]] == ["latency"]

    missing = _cli("loop", "history", "nope", home=home)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "nope" in missing.stderr
    bad = _cli("loop", "history", "adult", "--limit", "0", home=home)
    assert bad.returncode == 2 and "--limit" in bad.stderr

    # loop run: a missing or wrong policy is one readable line, exit 2
    for args, words in [
        (["loop", "run", "adult"], ["No loop policy for adult", "loops/adult.yaml"]),
        (
            ["loop", "run", "adult", "--policy", str(tmp_path / "none.yaml")],
            ["No loop policy file"],
        ),
        (
            [
                "loop",
                "run",
                "adult",
                "--policy",
                str(_policy(tmp_path, "model: adult\nbudgte: {}\n")),
            ],
            ["LoopPolicy has no field 'budgte'"],
        ),
        (
            ["loop", "watch", "adult", "--policy", str(_policy(tmp_path, "model: other\n"))],
            ["policy of model 'other', not 'adult'"],
        ),
        (["loop", "run", "nope"], ["nope"]),
    ]:
        result = _cli(*args, home=home)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        for word in words:
            assert word in result.stderr, (word, result.stderr)


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"policy-{abs(hash(text))}.yaml"
    path.write_text(text)
    return path
