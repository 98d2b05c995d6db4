"""Runs across real processes: concurrent writers, killed processes, interpreter exit."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from forgeml.config import Settings
from forgeml.store import RunStatus, Workspace

WRITER = textwrap.dedent(
    """
    import sys
    from forgeml.config import Settings
    from forgeml.store import Metric, Workspace
    from forgeml.tracking import start_run

    url, artifacts, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ws = Workspace(Settings(home=artifacts, store_url=url, artifacts=artifacts,
                            flush_interval=0.005))
    for r in range(2):
        with start_run("load", name=f"w{worker}-r{r}", workspace=ws) as run:
            run.log_params({"worker": worker, "round": r})
            for i in range(500):                      # the single-call path, buffered
                run.log_metric("m", float(i), step=i)
            run.log_batch([Metric("m", float(i), i, 0) for i in range(500, 1000)])
            print(run.run_id, flush=True)
    ws.close()
    """
)


def _python(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_eight_processes_log_into_one_fresh_store(store_url, tmp_path):
    # The store is brand new: the eight processes also race to create its schema.
    procs = [_python(WRITER, store_url, str(tmp_path / "a"), str(w)) for w in range(8)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    run_ids = [line for out, _ in outputs for line in out.split()]
    assert len(run_ids) == len(set(run_ids)) == 16
    ws = Workspace(Settings(home=tmp_path / "a", store_url=store_url, artifacts=tmp_path / "a"))
    try:
        records = ws.runs.search_runs(experiments=["load"]).items
        assert len(records) == 16
        assert {r.status for r in records} == {RunStatus.FINISHED}
        for run_id in run_ids:
            history = ws.runs.metric_history(run_id, "m")
            assert [p.step for p in history] == list(range(1000))  # nothing lost or doubled
            assert [p.value for p in history] == [float(i) for i in range(1000)]
            assert ws.runs.get_run(run_id).metrics["m"] == 999.0
        assert len(ws.runs.list_experiments()) == 1
    finally:
        ws.close()


KILLED = textwrap.dedent(
    """
    import sys, time
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.tracking import start_run

    ws = Workspace(Settings(home=sys.argv[1], flush_interval=0.005, heartbeat_interval=0.2))
    run = start_run("crash", workspace=ws)
    run.log_params({"lr": 0.1})
    run.flush()
    print(run.run_id, flush=True)
    i = 0
    while True:                     # keep writing until killed
        run.log_metric("loss", 1.0 / (i + 1), step=i)
        i += 1
        if i % 100 == 0:
            time.sleep(0.001)
    """
)


@pytest.mark.slow
def test_a_killed_process_leaves_a_readable_store_and_an_unfinished_run(tmp_path):
    home = tmp_path / "ws"
    proc = _python(KILLED, str(home))
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(1.0)  # let it write many batches
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)  # reaps it and closes the pipes
    db = home / "forgeml.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ws = Workspace(Settings(home=home, heartbeat_timeout=0.5))
    try:
        time.sleep(0.6)
        record = ws.runs.get_run(run_id)
        assert record.status is RunStatus.LOST
        assert record.end_time is None
        assert record.params == {"lr": 0.1}
        history = ws.runs.metric_history(run_id, "loss")
        assert len(history) > 100
        assert [p.step for p in history] == list(range(len(history)))  # a prefix, no gaps
        lost = ws.runs.search_runs(filter="status = 'lost'").items
        assert [r.run_id for r in lost] == [run_id]
    finally:
        ws.close()


EXITS = textwrap.dedent(
    """
    import sys
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.tracking import start_run

    ws = Workspace(Settings(home=sys.argv[1], flush_interval=60))
    run = start_run("exits", workspace=ws)
    for i in range(2000):
        run.log_metric("x", i)
    print(run.run_id, flush=True)
    if sys.argv[2] == "crash":
        raise RuntimeError("boom")
    """
)


@pytest.mark.parametrize(("mode", "status"), [("normal", "finished"), ("crash", "failed")])
def test_interpreter_exit_flushes_and_ends_open_runs(tmp_path, mode, status):
    home = tmp_path / "ws"
    proc = _python(EXITS, str(home), mode)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == (0 if mode == "normal" else 1), err
    run_id = out.strip()
    with Workspace(Settings(home=home)) as ws:
        record = ws.runs.get_run(run_id)
        assert record.status.value == status
        # buffered points written at exit although the flush interval never came round
        assert len(ws.runs.metric_history(run_id, "x")) == 2000
        if mode == "crash":
            assert "RuntimeError" in (record.error or "")


def test_workspace_folder_is_created(tmp_path: Path):
    with Workspace(Settings(home=tmp_path / "new" / "ws")) as ws:
        assert (tmp_path / "new" / "ws" / "forgeml.db").is_file()
        assert ws.db.current_revision() is not None
