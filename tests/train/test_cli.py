"""``forgeml train`` through a real process: the leaderboard, JSON, exit codes, one-line
errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from forgeml.cli._train import parse_duration
from forgeml.errors import InputError


def forgeml(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_parse_duration():
    assert parse_duration("60s") == 60
    assert parse_duration("2m") == 120
    assert parse_duration("90") == 90
    assert parse_duration("1.5h") == 5400
    for bad in ("0", "0s", "soon", "-5s", ""):
        with pytest.raises(InputError):
            parse_duration(bad)


def train_credit(german, tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    """``forgeml train`` on german credit's ``class`` in 5 s, LightGBM and linear models, no
    evaluation or registration, with ``options`` added."""
    path = tmp_path / "credit.csv"
    german.to_csv(path, index=False)
    return forgeml(
        "train",
        str(path),
        "--target",
        "class",
        "--time-budget",
        "5s",
        "--models",
        "lgbm,linear",
        "--no-evaluate",
        "--no-register",
        *options,
        home=tmp_path / "ws",
    )


def test_train_prints_leaderboard_and_json(german, tmp_path):
    path = tmp_path / "credit.csv"
    result = train_credit(german, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Leaderboard (binary, roc_auc)" in result.stdout
    # The test score names the recorded split it was computed on and how many rows it has.
    assert re.search(
        r"test \(split holdout-\w+, part test, 200 rows; trained on 800\): roc_auc", result.stdout
    )
    result = forgeml(
        "train",
        str(path),
        "--target",
        "class",
        "--time-budget",
        "8",
        "--models",
        "linear",
        "--json",
        home=tmp_path / "ws",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["task"] == "binary" and summary["leaderboard"][0]["model"] == "linear"
    assert summary["test_metrics"]["roc_auc"] > 0.7


def test_holdout_validation_is_named_on_the_leaderboard(german, tmp_path):
    result = train_credit(german, tmp_path, "--validation", "holdout")
    assert result.returncode == 0, result.stderr
    assert "holdout roc_auc" in result.stdout and "cv roc_auc" not in result.stdout
    text = " ".join(result.stdout.split())
    assert "scored on one split of 80 of the 800 training rows (validation='holdout')" in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--time-budget", "0"], ["--time-budget"]),
        (["--models", "lgbm,gbdt"], ["gbdt"]),
        (["--target-transform", "sqrt"], ["target_transform", "sqrt"]),
        (["--validation", "kfold"], ["validation", "auto, cv or holdout", "kfold"]),
        (["--metric", "auc"], ["Unknown metric"]),
        (["--target", "nope"], ["nope"]),
        (["--parallel-trials", "0"], ["parallel_trials", "at least 1"]),
        (["--memory-limit", "lots"], ["memory_limit", "2GB"]),
        (["--memory-limit", "70MB"], ["memory_limit", "leaves nothing for the search"]),
    ],
)
def test_bad_input_exits_2_with_one_line(german, tmp_path, args, words):
    path = tmp_path / "credit.csv"
    german.to_csv(path, index=False)
    base = ["train", str(path)]
    if "--target" not in args:
        base += ["--target", "class"]
    result = forgeml(*base, *args, home=tmp_path / "ws")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0]


def test_constant_target_file_exits_2(tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("x,y\n" + "".join(f"{i},1\n" for i in range(40)))
    result = forgeml(
        "train", str(path), "--target", "y", "--time-budget", "3", home=tmp_path / "ws"
    )
    assert result.returncode == 2
    assert "constant" in result.stderr
    missing = forgeml("train", str(tmp_path / "none.csv"), "--target", "y", home=tmp_path / "ws")
    assert missing.returncode == 2 and "No data file" in missing.stderr
