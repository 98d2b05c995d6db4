"""Run listing at scale: forgeml against MLflow, both on SQLite, in one process run.

Fills a store with RUNS runs of METRICS metrics (plus 10 parameters) each, then times the
first page of 100 runs three ways: newest first, filtered on a metric, ordered by a metric.
Each page carries every run's parameters and latest metrics, as both tools return them.

    python benchmarks/listing.py                       # 2,000 runs x 200 metrics, both tools
    python benchmarks/listing.py --runs 10000 --metrics 1000 --no-mlflow
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

QUERIES = {
    "newest first": {"filter": None, "order_by": None},
    "metrics.m0 > 0.5": {"filter": "metrics.m0 > 0.5", "order_by": None},
    "order by metrics.m0 desc": {"filter": None, "order_by": "metrics.m0 desc"},
}


def _values(seed: int, metrics: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(metrics)]


def _fill_forgeml(home: Path, runs: int, metrics: int, progress: Progress):
    from forgeml.config import Settings
    from forgeml.store import Metric, Workspace

    ws = Workspace(Settings(home=home))
    task = progress.add_task("forgeml: filling", total=runs)
    for r in range(runs):
        run_id = ws.runs.create_run("bench", name=f"run-{r}")
        values = _values(r, metrics)
        ws.runs.log_batch(
            run_id,
            params={f"p{i}": i * r for i in range(10)},
            metrics=[Metric(f"m{i}", v, 0, 0) for i, v in enumerate(values)],
        )
        ws.runs.end_run(run_id)
        progress.advance(task)
    return ws


def _fill_mlflow(home: Path, runs: int, metrics: int, progress: Progress):
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.create_experiment("bench", artifact_location=str(home / "mlruns"))
    task = progress.add_task("MLflow: filling", total=runs)
    for r in range(runs):
        run_id = client.create_run(experiment, run_name=f"run-{r}").info.run_id
        values = _values(r, metrics)
        points = [Metric(f"m{i}", v, 0, 0) for i, v in enumerate(values)]
        client.log_batch(run_id, params=[Param(f"p{i}", str(i * r)) for i in range(10)])
        for first in range(0, len(points), 1000):
            client.log_batch(run_id, metrics=points[first : first + 1000])
        client.set_terminated(run_id)
        progress.advance(task)
    return client, experiment


def _time(fn: Callable[[], int], repeat: int = 5) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        found = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=200)
    parser.add_argument("--no-mlflow", action="store_true", help="time forgeml only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    console = Console()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console, transient=True) as bar:
        ws = _fill_forgeml(Path(tmp) / "fm", args.runs, args.metrics, bar)
        for label, q in QUERIES.items():
            seconds, found = _time(
                lambda q=q: len(
                    ws.runs.search_runs(
                        filter=q["filter"], order_by=q["order_by"], max_results=100
                    ).items
                )
            )
            assert found == 100
            results.setdefault(label, {})["forgeml"] = seconds
        ws.close()
        if not args.no_mlflow:
            client, experiment = _fill_mlflow(Path(tmp) / "mlflow", args.runs, args.metrics, bar)
            for label, q in QUERIES.items():
                order = [f"metrics.m0 {'DESC'}"] if q["order_by"] else None
                seconds, found = _time(
                    lambda q=q, order=order: len(
                        client.search_runs(
                            [experiment],
                            filter_string=q["filter"] or "",
                            order_by=order,
                            max_results=100,
                        )
                    )
                )
                assert found == 100
                results[label]["MLflow"] = seconds
    table = Table(
        title=f"First page of 100 runs; {args.runs:,} runs x {args.metrics:,} metrics, SQLite"
    )
    columns = ["query", "forgeml ms"] + (
        [] if args.no_mlflow else ["MLflow ms", "MLflow / forgeml"]
    )
    for column in columns:
        table.add_column(column, justify="right")
    for label, row in results.items():
        cells = [label, f"{row['forgeml'] * 1000:,.1f}"]
        if "MLflow" in row:
            cells += [f"{row['MLflow'] * 1000:,.1f}", f"{row['MLflow'] / row['forgeml']:,.1f}x"]
        table.add_row(*cells)
    console.print(table)
    console.print("target: every listing under 2 s at 10,000 runs x 1,000 metrics")


if __name__ == "__main__":
    main()
