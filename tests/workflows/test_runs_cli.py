"""``forgeml runs list --columns`` and ``forgeml runs artifacts``: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import forgeml as fm
from forgeml.config import Settings
from forgeml.store import Workspace


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), "runs", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("runs")
    report = root / "evaluation"
    report.mkdir()
    (report / "report.html").write_text("<h1>report</h1>", encoding="utf-8")
    (root / "leaderboard.csv").write_text("rank,model\n1,lgbm\n", encoding="utf-8")
    with Workspace(Settings(home=root / "ws")) as ws:
        for i in range(3):
            with fm.start_run("train", name=f"r{i}", workspace=ws, actor="ana") as run:
                run.log_params({"model": ["lgbm", "xgb", "rf"][i]})
                run.log_metrics({f"m{k}": float(k) for k in range(7)})
                run.log_metrics({"zeta": 0.1 * i})
                if i == 0:
                    run.log_artifact(report, name="evaluation")
                    run.log_artifact(root / "leaderboard.csv")
                    first = run.run_id
    return root / "ws", first


def test_list_shows_what_it_sorts_and_filters_by(home: tuple[Path, str]) -> None:
    ws, _ = home
    result = _cli(ws, "list", "--order-by", "metrics.zeta desc", "--filter", "params.model != 'rf'")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    assert "zeta" in header  # the 8th metric would not be among the first five otherwise
    assert "params.model" in header
    lines = result.stdout.splitlines()
    assert [line.split("│")[2].strip() for line in lines[2:]] == ["r1", "r0"]


def test_list_takes_columns(home: tuple[Path, str]) -> None:
    ws, _ = home
    result = _cli(ws, "list", "--columns", "zeta,params.model")
    assert result.returncode == 0, result.stderr
    header = [c.strip() for c in result.stdout.splitlines()[0].split("┃")]
    assert header[-2:] == ["zeta", "params.model"]
    assert "m0" not in header
    bad = _cli(ws, "list", "--columns", " , ")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --columns names at least one column, e.g. metrics.test_roc_auc"
    )


def test_artifacts_list_and_download(home: tuple[Path, str], tmp_path: Path) -> None:
    ws, run_id = home
    listed = _cli(ws, "artifacts", run_id, "--json")
    assert listed.returncode == 0, listed.stderr
    paths = [f["path"] for f in json.loads(listed.stdout)]
    assert paths == ["evaluation/report.html", "leaderboard.csv"]
    out = tmp_path / "dl"
    fetched = _cli(ws, "artifacts", run_id[:8], "--download", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert (out / "evaluation" / "report.html").read_text(encoding="utf-8") == "<h1>report</h1>"
    assert (out / "leaderboard.csv").is_file()
    missing = _cli(ws, "artifacts", run_id, "--download", str(out), "--path", "nope")
    assert missing.returncode == 2
    assert "has no artifact at 'nope'" in missing.stderr
