"""Commands leave nothing in the system temporary folder (real processes, a private TMPDIR).
Real data: German credit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def test_train_evaluate_and_register_leave_no_temporary_folder(
    tmp_path: Path, shared_dataset: Callable[[str], Path]
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    home = tmp_path / "ws"
    env = {**os.environ, "TMPDIR": str(scratch), "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "forgeml", "--home", str(home), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )

    trained = cli(
        "train", str(shared_dataset("german-credit.csv")), "--target", "class",
        "--time-budget", "6", "--models", "linear", "--jobs", "1",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "report: the run's evaluation/report.html artifact" in trained.stdout
    evaluated = cli("evaluate", "german-credit@1", "--data", "german-credit@1")
    assert evaluated.returncode == 0, evaluated.stderr
    threshold = cli("models", "threshold", "german-credit@1", "0.4")
    assert threshold.returncode == 0, threshold.stderr
    assert sorted(p.name for p in scratch.iterdir()) == []
