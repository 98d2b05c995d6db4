"""Restarts and concurrency: ``loop watch`` killed mid-retraining finishes the step once when it
starts again; two ``loop run`` processes never retrain the same model at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from forgeml.store import Workspace

from .conftest import DAY, WEEKS8, admin, log_stream, train_champion, write_policy

POLICY = """\
model: elec2
triggers:
  performance: null
  new_labels: 300
recipe: {eval_rows: 100}
budget: {time_budget: %(budget)s, max_trials: null}
gates:
  metric: {margin: -1.0}
  data_quality: {min_rows: 100}
rollout: {mode: direct}
"""
START_MS = 1_700_000_000_000


def _cli(ws: Workspace, *args: str) -> list[str]:
    settings = ws.settings
    return [
        sys.executable,
        "-m",
        "forgeml",
        "--home",
        str(settings.home),
        "--store-url",
        settings.resolved_store_url,
        "--artifacts",
        str(settings.artifacts),
        *args,
    ]


def _prepare(ws: Workspace, elec2, tmp_path: Path, budget: int) -> tuple[Path, dict[str, str]]:
    """The champion, eight days of its logged answers with labels, the policy file, and the
    environment of the loop's processes (with an admin API key when access control is on)."""
    key, token = admin(ws)
    first = train_champion(ws, elec2, key)
    log_stream(ws, "elec2", first, elec2.iloc[WEEKS8 : WEEKS8 + 8 * DAY], start_ms=START_MS)
    env = {**os.environ, **({"FORGEML_API_KEY": token} if token else {})}
    return write_policy(tmp_path / "elec2.yaml", POLICY % {"budget": budget}), env


def _loop_versions(ws: Workspace) -> list[int]:
    return sorted(v.version for v in ws.models.list_versions("elec2") if v.created_by == "loop")


def test_a_watcher_killed_mid_retraining_finishes_the_step_once(workspace, elec2, tmp_path):
    policy, env = _prepare(workspace, elec2, tmp_path, budget=40)
    watcher = subprocess.Popen(
        _cli(workspace, "loop", "watch", "elec2", "--policy", str(policy)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            step = workspace.loop.step("elec2", "cycle-1/train")
            if step is not None and step.state == "started":
                break
            assert watcher.poll() is None, watcher.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the retraining did not start"
            time.sleep(0.2)
        time.sleep(3)  # well inside the 40 s training
        os.kill(watcher.pid, signal.SIGKILL)
        watcher.wait()
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        watcher.stderr.close()
    killed = workspace.loop.step("elec2", "cycle-1/train")
    assert killed.state == "started" and killed.attempts == 1
    assert _loop_versions(workspace) == []  # killed before it registered anything

    # the killed watcher's lease is still stored, unexpired: the new one, on the same host,
    # sees its process is gone and takes over at once
    left = workspace.loop.lease("elec2")
    assert left is not None and left.holder.split(":")[1] == str(watcher.pid)
    again = subprocess.run(
        _cli(workspace, "loop", "watch", "elec2", "--policy", str(policy), "--max-passes", "1"),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    assert "resuming cycle 1" in again.stdout
    steps = {s.key: s for s in workspace.loop.steps("elec2")}
    assert steps["cycle-1/train"].state == "finished"
    assert steps["cycle-1/train"].attempts == 2  # one row, started twice, finished once
    assert steps["cycle-1/assemble"].attempts == 1  # finished before the kill: not run again
    assert all(s.state == "finished" for s in steps.values())
    # the challenger (v2) passed; its refit with the comparison rows (v3) is what was promoted
    assert steps["cycle-1/refit"].attempts == 1
    assert _loop_versions(workspace) == [2, 3]
    assert workspace.models.get_version("elec2", 2).status.value == "archived"
    assert workspace.models.resolve("elec2", "production").version == 3
    assert len(workspace.loop.decisions("elec2", kind="compare")) == 1


def test_two_loops_never_retrain_one_model_at_once(workspace, elec2, tmp_path):
    policy, env = _prepare(workspace, elec2, tmp_path, budget=15)
    command = _cli(workspace, "loop", "run", "elec2", "--policy", str(policy), "--json")
    runs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = []
    for process in runs:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        outputs.append(json.loads(out))
    acted = [o for o in outputs if o["acted"]]
    skipped = [o for o in outputs if not o["acted"]]
    assert len(acted) == 1 and len(skipped) == 1, outputs
    assert "holds the lease" in skipped[0]["actions"][0]
    assert skipped[0]["holder"] == acted[0]["holder"]
    trains = [s for s in workspace.loop.steps("elec2") if s.kind == "train"]
    assert [(s.key, s.attempts, s.state) for s in trains] == [("cycle-1/train", 1, "finished")]
    assert _loop_versions(workspace) == [2, 3]  # the challenger and its refit, once each
    assert workspace.loop.lease("elec2") is None  # released at the end of the pass
