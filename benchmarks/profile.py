"""Profile a 1,000,000 x 50 mixed-type table: forgeml vs pandas' ``describe(include="all")``.

    python benchmarks/profile.py [--rows 1000000] [--repeat 3] [--seed 0]

Both run on the same seeded table in the same run, each in a forked child process so that one
does not inherit the other's freed memory. Time is the best of ``--repeat`` runs. Peak memory is
the peak resident set size above the size at the start of the call (Linux: the child resets its
high-water mark through /proc/self/clear_refs, then reads VmHWM), which counts Arrow and NumPy
buffers that tracemalloc would miss.

forgeml's profile computes more than ``describe``: per column also missing values, distinct
values, seven quantiles, a histogram, the top values with counts, outliers, text lengths and
number/date parse rates, the inferred kind, and the association of every column with the target.
Targets: no slower than ``describe``; peak memory under 3x the table's in-memory size.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_table(rows: int, seed: int) -> pd.DataFrame:
    """50 columns: 25 floats (5 with 10% missing), 10 integers, 10 strings (3 to 1,000
    categories), 3 booleans, 1 datetime, and a binary string target."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for i in range(20):
        columns[f"num_{i}"] = rng.normal(i, 1 + i, rows)
    for i in range(5):
        values = rng.lognormal(0, 1, rows)
        values[rng.random(rows) < 0.1] = np.nan
        columns[f"num_missing_{i}"] = values
    for i in range(10):
        columns[f"int_{i}"] = rng.integers(0, 10 ** (1 + i % 6), rows)
    for i in range(10):
        k = (3, 10, 50, 200, 1000)[i % 5]
        labels = np.array([f"cat_{i}_{j}" for j in range(k)], dtype=object)
        columns[f"str_{i}"] = pd.array(labels[rng.integers(0, k, rows)], dtype="str")
    for i in range(3):
        columns[f"bool_{i}"] = rng.random(rows) < 0.3
    columns["when"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(
        rng.integers(0, 10**8, rows), unit="s"
    )
    columns["target"] = pd.array(np.where(rng.random(rows) < 0.25, "yes", "no"), dtype="str")
    return pd.DataFrame(columns)


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _measure(task: str, conn) -> None:  # runs in the forked child
    frame = TABLE
    if task == "describe":

        def call():
            return frame.describe(include="all")

    elif task == "forgeml":
        from forgeml.data._analyze import analyze

        def call():
            return analyze(frame, target="target")

    else:
        from forgeml.data._hash import hash_table

        def call():
            return hash_table(frame)

    with contextlib.suppress(OSError):  # reset the peak RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    before = _rss_kb("VmRSS")
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    conn.send((seconds, (_rss_kb("VmHWM") - before) * 1024))
    conn.close()


def run(task: str) -> tuple[float, int]:
    parent, child = mp.Pipe(duplex=False)
    process = mp.get_context("fork").Process(target=_measure, args=(task, child))
    process.start()
    result = parent.recv()
    process.join()
    return result


TABLE: pd.DataFrame


def main() -> None:
    global TABLE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    TABLE = make_table(args.rows, args.seed)
    size = int(TABLE.memory_usage(deep=True, index=False).sum())
    print(
        f"table: {TABLE.shape[0]:,} rows x {TABLE.shape[1]} columns, {size / 1e6:.0f} MB in memory"
    )
    results = {}
    for task in ("describe", "forgeml", "hash"):
        runs = [run(task) for _ in range(args.repeat)]
        results[task] = (min(r[0] for r in runs), max(r[1] for r in runs))
    print()
    print(f"{'':42s} {'time (s)':>9s} {'peak memory':>12s} {'x table':>8s}")
    labels = {
        "describe": 'pandas DataFrame.describe(include="all")',
        "forgeml": "forgeml profile (schema + profile)",
        "hash": "forgeml content hash (for reference)",
    }
    for task, (seconds, peak) in results.items():
        print(f"{labels[task]:42s} {seconds:9.2f} {peak / 1e6:9.0f} MB {peak / size:8.2f}")
    ratio = results["forgeml"][0] / results["describe"][0]
    memory = results["forgeml"][1] / size
    print()
    print(
        f"forgeml / describe time: {ratio:.2f}x (target <= 1.0)   peak memory: {memory:.2f}x "
        "table (target < 3)"
    )


if __name__ == "__main__":
    main()
