"""The loop on a real drifting stream through a real server: a retraining and a promotion, then a
deliberately worse challenger rolled back, all in ``forgeml loop history``."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from forgeml.config import Settings
from forgeml.loop import LoopPolicy, LoopRunner
from forgeml.store import Workspace
from forgeml.workflows import Context, add_data

from .conftest import (
    DAY,
    TARGET,
    WEEKS8,
    admin,
    env_with_home,
    loop_context,
    records,
    serving,
    train_champion,
    wait_logged,
)

ROLLOUT = {
    "mode": "canary",
    "share": 50,
    "min_requests": 20,
    "min_labelled": 60,
    # latency on a loaded test machine is noise: this test rolls back on the live metric
    "rollback": {"max_metric_drop": 0.15, "max_latency_ratio": 50},
}
BUDGET = {"max_trials": 3, "time_budget": 60}


def _policy(**changes: object) -> LoopPolicy:
    values = {
        "model": "elec2",
        "triggers": {"performance": {"drop": 0.05, "window_rows": 150}, "new_labels": 400},
        "recipe": {"eval_rows": 100},
        "budget": BUDGET,
        "gates": {"metric": {"margin": -0.05}, "data_quality": {"min_rows": 100}},
        "rollout": ROLLOUT,
    }
    values.update(changes)
    return LoopPolicy.build(values)


def test_a_drifting_stream_drives_a_retraining_a_promotion_and_a_rollback(tmp_path, elec2):
    home = tmp_path / "ws"
    ws = Workspace(Settings(home=home))
    key, _ = admin(ws)
    first = train_champion(ws, elec2, key)
    # a deliberately corrupted reference: the stream's own next eight weeks, every label flipped
    flipped = elec2.iloc[WEEKS8 : 2 * WEEKS8].copy()
    flipped[TARGET] = flipped[TARGET].map({"UP": "DOWN", "DOWN": "UP"})
    add_data(Context(ws, key), flipped, name="elec2-flipped", target=TARGET)
    good = _policy()
    worse = _policy(
        triggers={"performance": None, "new_labels": 100},
        recipe={"dataset": "elec2-flipped@1", "eval_rows": 50},
        gates={"metric": {"margin": -1.0}, "data_quality": {"min_rows": 50}},
    )
    sent = 0
    unlabelled: list[tuple[str, object]] = []
    stream = elec2.iloc[WEEKS8:].reset_index(drop=True)
    with serving(home, "elec2@production") as url, httpx.Client(timeout=30) as client:
        for day in range(40):
            today = stream.iloc[day * DAY : (day + 1) * DAY]
            answered = []
            for record, label in zip(records(today), today[TARGET], strict=True):
                response = client.post(f"{url}/v1/models/elec2/predict", json={"records": [record]})
                assert response.status_code == 200, response.text
                answered.append((response.json()["request_id"], label))
            sent += len(answered)
            # yesterday's labels arrive a day late
            if unlabelled:
                body = {"feedback": [{"request_id": r, "labels": [y]} for r, y in unlabelled]}
                assert client.post(f"{url}/v1/feedback", json=body).status_code == 200
            unlabelled = answered
            wait_logged(ws, "elec2", sent)
            promoted = any(d.kind == "promote" for d in ws.loop.decisions("elec2"))
            LoopRunner(loop_context(ws, key), worse if promoted else good).run_pass()
            if any(d.kind == "rollback" for d in ws.loop.decisions("elec2")):
                break

    decisions = ws.loop.decisions("elec2")
    kinds = [(d.kind, d.name, d.passed) for d in decisions]
    assert any(k == "trigger" and passed for k, _, passed in kinds), kinds
    promotions = [d for d in decisions if d.kind == "promote"]
    rollbacks = [d for d in decisions if d.kind == "rollback"]
    assert len(promotions) == 1 and len(rollbacks) == 1, kinds
    promoted_version = promotions[0].detail["version"]
    assert promoted_version != first
    assert ws.models.resolve("elec2", "production").version == promoted_version
    # the rolled-back candidate: worse live, route cleared, alias gone, version archived
    worse_version = rollbacks[0].detail["version"]
    assert "rolled back: live roc_auc" in rollbacks[0].summary
    assert ws.routing.route("elec2") is None
    assert "candidate" not in ws.models.get_model("elec2").aliases
    assert ws.models.get_version("elec2", worse_version).status.value == "archived"
    # every comparison states what it was computed on
    compares = [d for d in decisions if d.kind == "compare"]
    assert len(compares) == 2
    assert all("held-out labelled rows" in d.summary for d in compares)
    # each step finished once
    steps = ws.loop.steps("elec2")
    assert all(s.state == "finished" and s.attempts == 1 for s in steps), steps
    assert [s.key for s in steps if s.kind == "train"] == ["cycle-1/train", "cycle-2/train"]
    # the retraining's dataset names both sources
    assembled = ws.loop.step("elec2", "cycle-1/assemble").output
    version = ws.datasets.get_version("elec2-loop", int(assembled["dataset"].split("@")[1]))
    assert "elec2@1" in version.source and "prediction log" in version.source
    ws.close()

    shown = subprocess.run(
        [sys.executable, "-m", "forgeml", "loop", "history", "elec2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with_home(home),
    )
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)["decisions"]
    assert {"promote", "rollback", "compare", "gate", "trigger"} <= {d["kind"] for d in listed}
