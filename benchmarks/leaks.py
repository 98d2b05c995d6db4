"""Leak checks: the cost of training's leak gate against the profile pass that ``data add``
already pays (the anchor), on real tables up to 100k+ rows.

The gate reads at most 50,000 rows (a seeded sample), computes the correlation matrix once
and derives every pair's and triple's linear fit from it, so its time should stay within a
small multiple of the profile pass whatever the table's length. Needs the shared datasets.

    python benchmarks/leaks.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _cases() -> list[tuple[str, pd.DataFrame, str]]:
    bike = pd.read_csv(DATASETS / "bike-sharing-hour.csv")
    bank = pd.read_csv(DATASETS / "bank-additional-full.csv")
    compas = pd.read_csv(DATASETS / "compas-scores-two-years.csv")
    california = pd.read_csv(DATASETS / "california-housing.csv")
    bike_104k = pd.concat([bike] * 6, ignore_index=True)
    wide = california.copy()
    for i in range(60):  # 60 extra numeric columns: 2,016 pairs, 37,820 triples
        wide[f"noise_{i}"] = california["households"].sample(frac=1, random_state=i).to_numpy()
    return [
        ("bike-sharing-hour", bike, "cnt"),
        ("bike x6 (104k rows)", bike_104k, "cnt"),
        ("bank-additional-full", bank, "y"),
        ("compas (53 columns)", compas, "two_year_recid"),
        ("california + 60 numeric", wide, "median_house_value"),
    ]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from forgeml.data import leak_gate, profile
    from forgeml.train._task import detect_task, infer_column_kinds

    table = Table(title="Leak gate vs the profile pass (best of repeats, seconds)")
    for column in ("table", "rows", "columns", "profile (anchor)", "leak gate", "ratio", "found"):
        table.add_column(column)
    for name, frame, target in _cases():
        kinds = infer_column_kinds(frame)
        task = detect_task(frame[target].dropna(), kinds[target])
        anchor, _ = _best(lambda f=frame, t=target: profile(f, target=t), args.repeat)
        seconds, found = _best(
            lambda f=frame, t=target, k=kinds, s=task: leak_gate(f, target=t, kinds=k, task=s),
            args.repeat,
        )
        table.add_row(
            name,
            f"{len(frame):,}",
            str(frame.shape[1]),
            f"{anchor:.2f}",
            f"{seconds:.2f}",
            f"{seconds / anchor:.1f}x",
            ", ".join(sorted({f.column or "" for f in found})) or "-",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
