"""Parallel trials: the same fixed trials one at a time on every core against k at a time.

For each table and family, ``forgeml train`` runs ``--trials N`` (the deterministic mode, so
both sides fit exactly the same configurations up to the batching) with ``parallel_trials=1``
(one trial on all ``n_jobs`` threads) and with ``parallel_trials=k`` (k trials, ``n_jobs / k``
threads each). The time measured is the search's wall time (up to the start of the refit,
read from the progress events); the speed-up is the one-at-a-time search time over the
parallel one. The rule ``plan_lanes`` applies by default was decided from this table.

Tables: adult (48,842 rows), bank-marketing (41,188 rows, without ``duration``), california
housing (20,640 rows, regression) and hotel-bookings with ``customer_type`` as a 4-class target
(119,390 rows: a large multiclass table whose folds fit on several threads).

    python benchmarks/parallel_trials.py [--trials 4] [--families lgbm,xgb,hgb,rf,mlp]
        [--tables adult,bank,california,hotel] [--jobs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _tables() -> dict[str, tuple[Callable[[], pd.DataFrame], str]]:
    def csv(name: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
        return lambda: pd.read_csv(DATASETS / name).drop(columns=list(drop))

    return {
        "adult": (csv("adult.csv", ("split",)), "income"),
        "bank": (csv("bank-additional-full.csv", ("duration",)), "y"),
        "california": (csv("california-housing.csv"), "median_house_value"),
        "hotel": (
            csv(
                "hotel-bookings.csv.gz",
                ("reservation_status", "reservation_status_date", "is_canceled"),
            ),
            "customer_type",
        ),
    }


def search_seconds(
    frame: pd.DataFrame, target: str, family: str, trials: int, parallel: int, jobs: int
) -> tuple[float, str]:
    """The search's wall time for ``trials`` trials of ``family``, and the lanes note."""
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.train import train

    marks: dict[str, float] = {}

    def progress(event: Any) -> None:
        if event.phase != "searching" and "search" not in marks:
            marks["search"] = time.monotonic()

    with tempfile.TemporaryDirectory() as home, Workspace(Settings(home=Path(home))) as ws:
        started = time.monotonic()
        result = train(
            frame,
            target=target,
            models=[family],
            max_trials=trials,
            parallel_trials=parallel,
            n_jobs=jobs,
            time_budget=3600,
            seed=0,
            workspace=ws,
            progress=progress,
        )
    note = next((n for n in result.notes if "at a time" in n), "")
    return marks.get("search", time.monotonic()) - started, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--families", default="lgbm,xgb,hgb,rf,mlp")
    parser.add_argument("--tables", default="adult,bank,california,hotel")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    tables = _tables()
    k = args.jobs
    table = Table(title=f"{args.trials} trials: one at a time on {k} threads vs {k} at a time")
    columns = ("table", "rows x cols", "family", "1 at a time s", f"{k} at a time s", "speed-up")
    for column in columns:
        table.add_column(column)
    for name in args.tables.split(","):
        load, target = tables[name]
        frame = load()
        for family in args.families.split(","):
            one, _ = search_seconds(frame, target, family, args.trials, 1, k)
            many, _ = search_seconds(frame, target, family, args.trials, k, k)
            row = (name, f"{len(frame):,} x {frame.shape[1] - 1}", family, f"{one:.1f}")
            table.add_row(*row, f"{many:.1f}", f"{one / many:.2f}x")
            print(*row, f"{many:.1f}", f"{one / many:.2f}x", flush=True)
    Console().print(table)


if __name__ == "__main__":
    main()
