"""Reading a large prediction log per hour window, against ``pandas.read_sql`` of the period.

Writes LOGGED predictions of a 20-column model into an empty store (SQLite in a temporary
folder by default, or ``--store-url``): one request of one row each, their inputs the 20
feature columns of the Bank Marketing dataset (``bank-additional-full.csv``, 41,188 real rows
cycled), answers ``yes``/``no`` with probabilities, seeded log-normal latencies, 1% failed
requests, spread evenly over HOURS hours. Then each reading case runs in a fresh process:

- anchor: ``pandas.read_sql`` of the model's whole period (the raw rows, JSON not expanded);
- ``windows(output="arrow")``: one Arrow table per hour window, one row per predicted row
  with every input column expanded, read by keyset pages;
- ``windows(output="pandas")``: the same as pandas DataFrames;
- ``window_stats``: per-hour request counts, error rate and latency p50/p90/p99 in SQL.

Each case's process reports its time and its peak resident memory above what it held after
its imports (the peak is reset then: ``VmHWM`` after ``clear_refs``; resident memory covers
Arrow's and NumPy's buffers as well as Python's).

    python benchmarks/predlog.py                                  # 1,000,000 predictions
    python benchmarks/predlog.py --logged 200000
    python benchmarks/predlog.py --store-url postgresql+psycopg://127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

MODEL = "bank"
HOUR_MS = 3_600_000
START_MS = 1_780_000_000_000 - 1_780_000_000_000 % HOUR_MS  # a whole UTC hour
DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CASES = ("anchor", "windows-arrow", "windows-pandas", "window-stats")
LABELS = {
    "anchor": "anchor: pandas.read_sql, whole period",
    "windows-arrow": "windows(output='arrow'), 1 h",
    "windows-pandas": "windows(output='pandas'), 1 h",
    "window-stats": "window_stats (SQL), 1 h",
}


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def _features() -> list[dict[str, list[Any]]]:
    import pandas as pd

    path = DATASET / "bank-additional-full.csv"
    if not path.is_file():
        sys.exit(f"The dataset {path} is absent")
    frame = pd.read_csv(path, sep=None, engine="python").drop(columns=["y"])
    assert frame.shape[1] == 20, frame.shape
    return [{c: [v] for c, v in row.items()} for row in frame.to_dict("records")]


def write(url: str, logged: int, hours: int, seed: int) -> float:
    """Fill the store; return the seconds the writes took."""
    import numpy as np

    from forgeml.store import Database, PredictionLogStore, PredictionRecord

    rows = _features()
    rng = np.random.default_rng(seed)
    store = PredictionLogStore(Database(url))
    if store.count_predictions(MODEL) == logged:
        print(f"  reusing the {logged:,} predictions already logged", file=sys.stderr)
        return float("nan")
    if store.count_predictions(MODEL):
        sys.exit(f"The store {url} holds another log of {MODEL!r}; give an empty store")
    step = hours * HOUR_MS / logged
    elapsed = 0.0
    batch = 10_000
    for first in range(0, logged, batch):
        n = min(batch, logged - first)
        latencies = np.round(rng.lognormal(1.5, 0.6, n), 3)
        scores = rng.random(n)
        failed = rng.random(n) < 0.01
        records = []
        for j in range(n):
            i = first + j
            p = float(round(scores[j], 4))
            records.append(
                PredictionRecord(
                    request_id=str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | i)),
                    model=MODEL,
                    version=1 + (i % 10 == 0),
                    role="primary",
                    time_ms=START_MS + int(i * step),
                    latency_ms=float(latencies[j]),
                    n_rows=0 if failed[j] else 1,
                    inputs={} if failed[j] else rows[i % len(rows)],
                    outputs={}
                    if failed[j]
                    else {
                        "predictions": ["yes" if p > 0.5 else "no"],
                        "probabilities": [[1 - p, p]],
                        "classes": ["no", "yes"],
                    },
                    protocol="json",
                    error="schema_mismatch" if failed[j] else None,
                )
            )
        start = time.perf_counter()
        store.write_predictions(records)
        elapsed += time.perf_counter() - start
        print(f"  wrote {first + n:,} / {logged:,}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return elapsed


def run_case(case: str, url: str) -> dict[str, Any]:
    """One reading case, in this (fresh) process."""
    import pandas as pd
    import pyarrow as pa  # noqa: F401  (imported before the baseline, as the anchor's pandas)
    import sqlalchemy as sa

    from forgeml.store import Database, PredictionLogStore

    db = Database(url)
    store = PredictionLogStore(db)
    _reset_peak_rss()
    baseline = _status_mb("VmRSS")
    rows = windows = 0
    start = time.perf_counter()
    if case == "anchor":
        query = sa.text("SELECT * FROM predictions WHERE model = :model ORDER BY time_ms, id")
        with db.engine.connect() as conn:
            frame = pd.read_sql(query, conn, params={"model": MODEL})
        rows, windows = len(frame), 1
        del frame
    elif case in ("windows-arrow", "windows-pandas"):
        output = "arrow" if case == "windows-arrow" else "pandas"
        for _start, table in store.windows(MODEL, every_ms=HOUR_MS, output=output):
            rows += len(table)
            windows += 1
    elif case == "window-stats":
        stats = store.window_stats(MODEL, every_ms=HOUR_MS)
        rows, windows = sum(s.requests for s in stats), len(stats)
    else:
        raise SystemExit(f"unknown case {case!r}")
    seconds = time.perf_counter() - start
    db.close()
    return {
        "case": case,
        "seconds": seconds,
        "peak_mb": _status_mb("VmHWM") - baseline,
        "rows": rows,
        "windows": windows,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logged", type=int, default=1_000_000, help="predictions to log")
    parser.add_argument("--hours", type=int, default=24, help="hours they are spread over")
    parser.add_argument(
        "--store-url",
        help="an empty store, or one this script filled with as many predictions (default: "
        "SQLite in a temporary folder)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one reading case, in a child
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.store_url)))
        return

    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="forgeml-predlog-") as folder:
        url = args.store_url or f"sqlite:///{Path(folder) / 'forgeml.db'}"
        write_s = write(url, args.logged, args.hours, args.seed)
        results = []
        for case in CASES:
            out = subprocess.run(
                [sys.executable, __file__, "--case", case, "--store-url", url],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    anchor = results[0]
    backend = url.split(":", 1)[0]
    written = (
        "already written"
        if write_s != write_s  # NaN: a store filled by an earlier run
        else f"written in {write_s:.1f} s ({args.logged / write_s:,.0f} records/s)"
    )
    table = Table(
        title=f"Prediction log: {args.logged:,} logged requests of a 20-column model over "
        f"{args.hours} h ({backend}); {written}"
    )
    for column in ("case", "rows read", "windows", "seconds", "x anchor", "peak MB", "x anchor"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in results:
        table.add_row(
            LABELS[r["case"]],
            f"{r['rows']:,}",
            f"{r['windows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['seconds'] / anchor['seconds']:.2f}",
            f"{r['peak_mb']:.0f}",
            f"{r['peak_mb'] / max(anchor['peak_mb'], 1):.2f}",
        )
    Console(width=150).print(table)
    print(
        "rows read: the anchor's are logged requests (JSON not expanded), the windows' are "
        "predicted rows (failed requests hold none), window_stats' are requests aggregated."
    )


if __name__ == "__main__":
    main(sys.argv[1:])
