"""Run filters of many clauses: a correct answer up to the documented limit, a clear refusal
past it (never a database join limit or a RecursionError), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from forgeml.config import Settings
from forgeml.errors import InvalidFilterError
from forgeml.store import Metric, Workspace
from forgeml.store._filter import MAX_CLAUSES, MAX_IN_VALUES


def _runs(ws: Workspace, n_runs: int, n_metrics: int, seed: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    logged = {}
    for r in range(n_runs):
        run_id = ws.runs.create_run("wide", name=f"run-{r}")
        values = {f"m{k}": float(rng.uniform()) for k in range(n_metrics)}
        ws.runs.log_batch(
            run_id,
            params={"p": r % 3},
            tags={"t": "even" if r % 2 == 0 else "odd"},
            metrics=[Metric(k, v) for k, v in values.items()],
        )
        logged[run_id] = values
    return logged


def test_seventy_clauses_give_the_right_runs(workspace):
    logged = _runs(workspace, 40, 70, seed=3)
    # 68 metric clauses that most runs pass, one parameter and one tag clause
    clauses = [f"metrics.m{k} > 0.005" for k in range(68)]
    text = " and ".join([*clauses, "params.p != 1", "tags.t = 'even'"])
    expected = sorted(
        run_id
        for i, (run_id, values) in enumerate(logged.items())
        if all(values[f"m{k}"] > 0.005 for k in range(68)) and i % 3 != 1 and i % 2 == 0
    )
    found = sorted(r.run_id for r in workspace.runs.search_runs(filter=text).items)
    assert found == expected and len(expected) >= 1
    # the null tests take the same path
    assert len(workspace.runs.search_runs(filter="metrics.nope is null").items) == 40
    assert workspace.runs.search_runs(filter="metrics.m0 is null").items == ()


def test_a_filter_past_the_limit_is_refused(workspace):
    _runs(workspace, 2, 1, seed=0)
    at_limit = " and ".join(f"metrics.m0 > -{k}" for k in range(MAX_CLAUSES))
    assert len(workspace.runs.search_runs(filter=at_limit).items) == 2
    huge = " and ".join(f"metrics.m{k} > 0.5" for k in range(5000))
    with pytest.raises(InvalidFilterError, match=f"at most {MAX_CLAUSES} clauses"):
        workspace.runs.search_runs(filter=huge)
    long_in = "params.p in (" + ", ".join(str(v) for v in range(MAX_IN_VALUES + 1)) + ")"
    with pytest.raises(InvalidFilterError, match="IN list"):
        workspace.runs.search_runs(filter=long_in)
    with pytest.raises(InvalidFilterError, match="at most 16 terms"):
        workspace.runs.search_runs(order_by=[f"metrics.m{k}" for k in range(17)])


def test_the_cli_refuses_5000_clauses_with_exit_2(tmp_path):
    home = tmp_path / "ws"
    with Workspace(Settings(home=home)) as ws:
        _runs(ws, 2, 1, seed=0)
    huge = " and ".join(f"metrics.m{k} > 0.5" for k in range(5000))
    result = subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), "runs", "list", "-f", huge],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "at most 100 clauses" in lines[0]
