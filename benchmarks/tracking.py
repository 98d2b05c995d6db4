"""Tracking throughput: forgeml against MLflow, both on SQLite, in one process run.

One run with 50 parameters and 5,000 metric points, logged one call per point and in batches
of 1,000. Each timing runs from creating the run to ending it, so forgeml's buffered points
are on disk when the clock stops. Needs the ``bench`` extra (MLflow).

    python benchmarks/tracking.py [--points 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

N_PARAMS = 50
BATCH = 1000


def _forgeml_single(home: Path, points: int) -> float:
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.tracking import start_run

    with Workspace(Settings(home=home)) as ws:
        start = time.perf_counter()
        with start_run("bench", workspace=ws, capture_code=False) as run:
            run.log_params({f"p{i}": i * 0.5 for i in range(N_PARAMS)})
            for i in range(points):
                run.log_metric("loss", 1.0 / (i + 1), step=i)
        elapsed = time.perf_counter() - start
        assert len(ws.runs.metric_history(run.run_id, "loss")) == points
    return elapsed


def _forgeml_batch(home: Path, points: int) -> float:
    from forgeml.config import Settings
    from forgeml.store import Metric, Workspace
    from forgeml.tracking import start_run

    with Workspace(Settings(home=home)) as ws:
        start = time.perf_counter()
        with start_run("bench", workspace=ws, capture_code=False) as run:
            run.log_params({f"p{i}": i * 0.5 for i in range(N_PARAMS)})
            now = int(time.time() * 1000)
            for first in range(0, points, BATCH):
                run.log_batch(
                    [
                        Metric("loss", 1.0 / (i + 1), i, now)
                        for i in range(first, min(points, first + BATCH))
                    ]
                )
                run.flush()  # each batch written before the next call, as MLflow does
        elapsed = time.perf_counter() - start
        assert len(ws.runs.metric_history(run.run_id, "loss")) == points
    return elapsed


def _mlflow_client(home: Path):
    import mlflow
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("bench", artifact_location=str(home / "mlruns"))
    return client, experiment


def _mlflow_single(home: Path, points: int) -> float:
    client, experiment = _mlflow_client(home)
    start = time.perf_counter()
    run = client.create_run(experiment)
    run_id = run.info.run_id
    for i in range(N_PARAMS):
        client.log_param(run_id, f"p{i}", i * 0.5)
    for i in range(points):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
    client.set_terminated(run_id)
    elapsed = time.perf_counter() - start
    assert len(client.get_metric_history(run_id, "loss")) == points
    return elapsed


def _mlflow_batch(home: Path, points: int) -> float:
    from mlflow.entities import Metric as MlflowMetric
    from mlflow.entities import Param

    client, experiment = _mlflow_client(home)
    start = time.perf_counter()
    run = client.create_run(experiment)
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(f"p{i}", str(i * 0.5)) for i in range(N_PARAMS)])
    now = int(time.time() * 1000)
    for first in range(0, points, BATCH):
        client.log_batch(
            run_id,
            metrics=[
                MlflowMetric("loss", 1.0 / (i + 1), now, i)
                for i in range(first, min(points, first + BATCH))
            ],
        )
    client.set_terminated(run_id)
    elapsed = time.perf_counter() - start
    assert len(client.get_metric_history(run_id, "loss")) == points
    return elapsed


def _measure(fn: Callable[[Path, int], float], points: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(fn(Path(tmp), points))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mlflow-repeat", type=int, default=1, help="MLflow's single path is slow")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    console = Console()
    rows = []
    for path, ours, theirs in (
        ("one call per point", _forgeml_single, _mlflow_single),
        (f"batches of {BATCH}", _forgeml_batch, _mlflow_batch),
    ):
        console.print(f"measuring {path} ...")
        mine = _measure(ours, args.points, args.repeat)
        anchor = _measure(theirs, args.points, args.mlflow_repeat)
        rows.append((path, args.points / mine, args.points / anchor, anchor / mine))
    table = Table(
        title=f"Tracking: 1 run, {N_PARAMS} params, {args.points:,} metric points, SQLite"
    )
    for column in ("path", "forgeml points/s", "MLflow points/s", "forgeml / MLflow"):
        table.add_column(column, justify="right")
    for path, mine, anchor, ratio in rows:
        table.add_row(path, f"{mine:,.0f}", f"{anchor:,.0f}", f"{ratio:,.1f}x")
    console.print(table)
    console.print("targets: one call per point >= 30x MLflow's log_metric; batches >= 5x log_batch")


if __name__ == "__main__":
    main()
