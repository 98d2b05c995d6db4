"""One recorded hold-out: what `forgeml evaluate` scores is what training held out.

Real data: bank-additional-full (target y) and bike-sharing-hour (target cnt), short budgets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "FORGEML_USER": "ana"},
    )


def _ok(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "name", "target", "metric", "drop"),
    [
        ("bank-additional-full.csv", "bank", "y", "roc_auc", "duration"),
        # casual + registered == cnt: the leak gate refuses them
        ("bike-sharing-hour.csv", "bike", "cnt", "r2", "casual,registered"),
    ],
)
def test_evaluate_scores_the_recorded_holdout(
    tmp_path: Path, shared_dataset, file: str, name: str, target: str, metric: str, drop: str
) -> None:
    home = tmp_path / "ws"
    path = shared_dataset(file)
    _ok(_cli(home, "data", "add", str(path), "--name", name, "--target", target, "--json"))
    trained = _ok(
        _cli(
            home, "train", name, "--time-budget", "4", "--models", "lgbm", "--no-evaluate",
            "--jobs", "1", "--drop", drop, "--json",
        )
    )  # fmt: skip
    split = trained["split"]
    assert split.startswith("holdout-")
    assert trained["registered"] == f"{name}@1"

    shown = _ok(_cli(home, "data", "show", f"{name}@1", "--json"))
    recorded = {s["name"]: s for s in shown["splits"]}
    assert recorded[split]["counts"]["train"] == trained["n_train_rows"]

    evaluated = _ok(_cli(home, "evaluate", name, "--data", name, "--no-explain", "--json"))
    rows = evaluated["rows"]
    assert (rows["split"], rows["part"]) == (split, "test")
    assert rows["n_rows"] == trained["n_test_rows"]
    assert rows["n_training_rows"] == 0
    scores = {k: m["value"] for k, m in evaluated["metrics"]["metrics"].items()}
    assert scores[metric] == pytest.approx(trained["test_metrics"][metric], rel=1e-9, abs=1e-12)
    assert "none of them used in training" in rows["description"]

    refused = _cli(home, "evaluate", f"{name}@1", "--data", name, "--part", "train")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert f"{trained['n_train_rows']:,} of the {trained['n_train_rows']:,} rows" in lines[0]
    assert "--allow-training-rows" in lines[0]

    lineage = _ok(_cli(home, "models", "lineage", f"{name}@1", "--json"))
    assert lineage["split"] == split
    run = _ok(_cli(home, "runs", "show", trained["run_id"], "--json"))
    assert run["params"]["split"] == split
    assert run["name"] == f"train {name} {target}"


@pytest.mark.slow
def test_training_rows_allowed_are_said_and_a_recorded_split_is_reused(
    tmp_path: Path, shared_dataset
) -> None:
    home = tmp_path / "ws"
    path = shared_dataset("bank-additional-full.csv")
    _ok(_cli(home, "data", "add", str(path), "--name", "bank", "--target", "y", "--json"))
    split = _ok(_cli(home, "data", "split", "bank", "--fractions", "0.6,0.2,0.2", "--json"))
    trained = _ok(
        _cli(
            home, "train", "bank", "--split", "default", "--time-budget", "3", "--models",
            "lgbm", "--no-evaluate", "--jobs", "1", "--run-name", "bank on default", "--json",
        )
    )  # fmt: skip
    assert trained["split"] == "default"
    assert trained["n_train_rows"] == split["counts"]["train"]
    assert trained["n_test_rows"] == split["counts"]["test"]
    assert _ok(_cli(home, "runs", "show", trained["run_id"], "--json"))["name"] == "bank on default"

    # validation rows were neither trained nor tested on: honest to score
    validation = _ok(_cli(home, "evaluate", "bank", "--data", "bank", "--part", "validation",
                          "--no-explain", "--json"))  # fmt: skip
    assert validation["rows"]["n_training_rows"] == 0
    assert validation["rows"]["n_rows"] == split["counts"]["validation"]

    out = tmp_path / "report"
    allowed = _ok(
        _cli(home, "evaluate", "bank", "--data", "bank", "--part", "train",
             "--allow-training-rows", "--no-explain", "--output", str(out), "--json")
    )  # fmt: skip
    assert allowed["rows"]["allowed_training_rows"] is True
    assert allowed["rows"]["n_training_rows"] == split["counts"]["train"]
    header = (out / "report.html").read_text(encoding="utf-8").split("<h2")[0]
    assert "allowed by --allow-training-rows" in header
    assert "computed in 0.0 s" not in header

    missing = _cli(home, "train", "bank", "--split", "nope", "--time-budget", "3")
    assert missing.returncode == 2
    assert "no split named 'nope'" in missing.stderr
