"""The memory limit: sizes read, configurations shrunk to a budget, and a tight limit on a
real table keeping the training process's peak memory under it (measured in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forgeml.train._memory import MemoryModel, parse_memory

ROOT = Path(__file__).resolve().parents[2]


def test_sizes_are_read_with_their_units() -> None:
    assert parse_memory("512MB") == 512 * 1024**2
    assert parse_memory("2G") == 2 * 1024**3
    assert parse_memory("1.5GiB") == int(1.5 * 1024**3)
    assert parse_memory(100 * 1024**2) == 100 * 1024**2
    for bad in ("lots", "2 bananas", "-1GB", "", True):
        with pytest.raises(ValueError, match="memory_limit is a size"):
            parse_memory(bad)
    with pytest.raises(ValueError, match="at least 64MB"):
        parse_memory("10MB")


def test_a_forest_is_shrunk_to_the_budget_and_a_hopeless_one_skipped() -> None:
    model = MemoryModel(
        rows=16_000, widths={"native": 8, "ordinal": 8, "dense": 8}, n_classes=0, n_folds=5
    )
    params = {"rf.n_estimators": 400, "rf.max_features": 0.5, "rf.min_samples_leaf": 1}
    full = model.trial_bytes("rf", params)
    assert full > 1024**3  # 400 deep trees on 16,000 rows, kept for 5 folds
    fit = model.fit("rf", params, 200 * 1024**2)
    assert fit is not None and fit.bytes <= 200 * 1024**2
    assert fit.params["rf.n_estimators"] < 400
    assert fit.note.startswith("shrunk to fit the memory limit: n_estimators 400->")
    assert model.fit("rf", params, 2 * full).params == params  # type: ignore[union-attr]
    assert model.fit("rf", params, 1024) is None  # not even ten shallow trees fit
    lgbm = {"lgbm.num_leaves": 256}
    small = model.fit("lgbm", lgbm, model.trial_bytes("lgbm", {"lgbm.num_leaves": 16}))
    assert small is not None and small.params["lgbm.num_leaves"] <= 16


_CHILD = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    import pandas as pd
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.train import train

    frame = pd.read_csv(sys.argv[1]).sample(n=3000, random_state=0)
    with Workspace(Settings(home=Path(tempfile.mkdtemp()))) as ws:
        result = train(
            frame,
            target="median_house_value",
            models=["rf"],
            max_trials=2,
            memory_limit=sys.argv[2],
            time_budget=300,
            seed=0,
            workspace=ws,
            warm_start=[{"model": "rf", "params": {
                "n_estimators": 300, "max_features": 0.5, "min_samples_leaf": 1}}],
        )
    board = result.leaderboard
    # the peak of this program's own memory (VmHWM): ru_maxrss would also count the pytest
    # process it was forked from, whose memory it held until exec
    with open("/proc/self/status") as status:
        hwm = next(line for line in status if line.startswith("VmHWM:"))
    print(json.dumps({
        "peak": int(hwm.split()[1]) * 1024,
        "notes": list(board["memory_note"]),
        "predicted_mb": [float(x) for x in board["predicted_mb"]],
        "limit_notes": [n for n in result.notes if n.startswith("memory limit")],
    }))
    """
)


def test_a_tight_limit_keeps_the_peak_memory_under_it(dataset, tmp_path) -> None:
    """300 fully grown trees on 2,400 rows for each of 5 folds would take over 500 MB above
    the process's own; with a 400 MB limit they are shrunk and the peak stays under it."""
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    limit = 400 * 1024**2
    done = subprocess.run(
        [sys.executable, str(script), str(dataset("california-housing.csv")), "400MB"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["peak"] < limit, out
    shrunk = [n for n in out["notes"] if n.startswith("shrunk to fit the memory limit")]
    assert shrunk, out
    # the configuration asked for was predicted well over the limit before it was shrunk
    before = float(shrunk[0].split("(predicted ")[1].split(" MB")[0])
    assert before * 1024**2 > limit - 200 * 1024**2
    predicted = [mb for mb in out["predicted_mb"] if mb == mb]  # the ensemble row has none
    assert predicted and all(mb * 1024**2 < limit for mb in predicted)
    assert out["limit_notes"]
