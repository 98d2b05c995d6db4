"""Batch scoring: ``predict_file`` against the model predicting on the whole table in memory.

Builds an adult-like table of ROWS rows (the shipped UCI Adult rows sampled with replacement,
seeded) as Parquet and CSV in a temporary folder and registers a LightGBM classifier trained
on Adult. Then times, each in a fresh process and REPEAT times (cases interleaved; median and best):

- the anchor: ``LoadedModel.predict_proba`` on the whole table, read from Parquet beforehand
  (the clock starts after the read), in one process with LightGBM's threads on every core;
- ``predict_file`` CSV -> CSV and Parquet -> Parquet, all input columns kept, with every core
  and with one process; and CSV -> Parquet, whose kept columns get their types from one more
  pass over the CSV. The clock covers the whole call (model load, worker start, read,
  score, write, rename); the libraries are imported before it starts, as for the anchor.

Peak memory is the largest proportional set size (PSS) of the case's whole process tree
(workers included), sampled every 20 ms from /proc; CPU s is the median CPU time of that tree
over the timed call (CPU s / seconds shows how many cores the case kept busy). The target:
``predict_file`` takes at most 1.5 times the anchor's time.

    python benchmarks/batch_scoring.py                   # 1,000,000 rows, 3 repeats
    python benchmarks/batch_scoring.py --rows 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from rich.console import Console
from rich.table import Table

TARGET_RATIO = 1.5
CASES = {
    "anchor": ("anchor", None),
    "CSV -> CSV": ("csv", None),
    "CSV -> Parquet (typed)": ("csv-parquet", None),
    "Parquet -> Parquet": ("parquet", None),
    "CSV -> CSV, jobs=1": ("csv", 1),
    "Parquet -> Parquet, jobs=1": ("parquet", 1),
}


# -- building the inputs ----------------------------------------------------------------------


def _build(folder: Path, rows: int, seed: int, trees: int) -> str:
    import lightgbm as lgb
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    import forgeml as fm
    from forgeml.config import Settings
    from forgeml.examples import load_adult
    from forgeml.store import Workspace

    adult = load_adult()
    picked = np.random.default_rng(seed).integers(0, len(adult), rows)
    table = pa.Table.from_pandas(adult.iloc[picked].reset_index(drop=True), preserve_index=False)
    pq.write_table(table, folder / "rows.parquet")
    pcsv.write_csv(table, folder / "rows.csv", pcsv.WriteOptions(quoting_style="none"))

    X = adult.drop(columns=["income", "split"])
    text = [c for c in X.columns if X[c].dtype.kind not in "biuf"]
    X = X.astype({c: "category" for c in text})
    model = lgb.LGBMClassifier(n_estimators=trees, verbose=-1, random_state=seed)
    model.fit(X, adult["income"])
    with Workspace(Settings(home=folder / "ws")) as ws:
        return fm.register(model, name="adult-bench", sample=X, workspace=ws).ref


# -- one case, in its own process -------------------------------------------------------------


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += [child for child, parent in parents.items() if parent == pid]
    return found


def _tree_memory(root: int) -> int:
    """Proportional set size (bytes) of the process tree from /proc: pages a worker shares
    with the process it was forked from count once, not once per process."""
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except OSError:
            continue
    return total


def _tree_cpu(root: int) -> float:
    """CPU seconds used by the process tree, reaped children included (the fork server
    reaps the workers; it lives until this process exits)."""
    ticks = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class _PeakMemory:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _tree_memory(os.getpid()))

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_memory(os.getpid()))


def _case(folder: Path, ref: str, kind: str, jobs: int | None, chunk_rows: int) -> dict:
    import lightgbm  # noqa: F401  (imported before the clock, for every case)
    import pandas as pd

    from forgeml.batch import predict_file
    from forgeml.config import Settings
    from forgeml.registry import load
    from forgeml.store import Workspace

    warnings.simplefilter("ignore")
    ws = Workspace(Settings(home=folder / "ws"))
    with _PeakMemory() as memory:
        if kind == "anchor":
            model = load(ref, workspace=ws)
            frame = pd.read_parquet(folder / "rows.parquet")
            cpu, start = _tree_cpu(os.getpid()), time.perf_counter()
            model.predict_proba(frame[list(model.signature.names)])
            seconds = time.perf_counter() - start
            rows = len(frame)
        else:
            suffix = ".csv" if kind.startswith("csv") else ".parquet"
            out = folder / f"scored-{os.getpid()}{'.csv' if kind == 'csv' else '.parquet'}"
            cpu, start = _tree_cpu(os.getpid()), time.perf_counter()
            result = predict_file(
                ref, folder / f"rows{suffix}", out, workspace=ws, chunk_rows=chunk_rows, jobs=jobs
            )
            seconds = time.perf_counter() - start
            rows = result.rows
            out.unlink()
        cpu = _tree_cpu(os.getpid()) - cpu
    return {"seconds": seconds, "cpu": cpu, "rows": rows, "peak_bytes": memory.peak}


def _run_case(folder: Path, ref: str, kind: str, jobs: int | None, chunk_rows: int) -> dict:
    args = [sys.executable, __file__, "--case", kind, "--folder", str(folder), "--ref", ref]
    args += ["--chunk-rows", str(chunk_rows)] + ([] if jobs is None else ["--jobs", str(jobs)])
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"case {kind} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--trees", type=int, default=100, help="LightGBM trees")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        case = _case(Path(args.folder), args.ref, args.case, args.jobs, args.chunk_rows)
        print(json.dumps(case))
        return

    console = Console()
    if not console.is_terminal:  # piped: keep the table's rows on one line each
        console = Console(width=max(console.width, 120))
    load = os.getloadavg()
    timings: dict[str, list[dict]] = {label: [] for label in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with console.status(f"building {args.rows:,} rows and training the model"):
            ref = _build(folder, args.rows, args.seed, args.trees)
        sizes = {s: (folder / f"rows.{s}").stat().st_size for s in ("csv", "parquet")}
        for repeat in range(args.repeat):
            for label, (kind, jobs) in CASES.items():
                with console.status(f"{label} ({repeat + 1}/{args.repeat})"):
                    timings[label].append(_run_case(folder, ref, kind, jobs, args.chunk_rows))

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    table = Table(title=f"Batch scoring {args.rows:,} adult-like rows, {args.repeat} runs each")
    columns = ("case", "median s", "rows/s", "median / anchor", "best s", "best / anchor", "CPU s")
    for column in (*columns, "peak PSS MB"):
        table.add_column(column, justify="right")
    anchor_runs = [t["seconds"] for t in timings[next(iter(CASES))]]
    anchor, anchor_best = statistics.median(anchor_runs), min(anchor_runs)
    for label, runs in timings.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        best = min(r["seconds"] for r in runs)
        peak = max(r["peak_bytes"] for r in runs)
        table.add_row(
            label,
            f"{seconds:,.2f}",
            f"{runs[0]['rows'] / seconds:,.0f}",
            f"{seconds / anchor:,.2f}x",
            f"{best:,.2f}",
            f"{best / anchor_best:,.2f}x",
            f"{statistics.median(r['cpu'] for r in runs):,.1f}",
            f"{peak / 2**20:,.0f}",
        )
    console.print(table)
    console.print(
        f"LightGBM {args.trees} trees; {cores} cores; chunks of {args.chunk_rows:,} rows; "
        f"CSV {sizes['csv'] / 1e6:,.0f} MB, Parquet {sizes['parquet'] / 1e6:,.1f} MB; "
        f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    every = "; ".join(
        label + " " + ", ".join(f"{r['seconds']:.2f}" for r in runs)
        for label, runs in timings.items()
    )
    console.print(f"target: predict_file within {TARGET_RATIO}x of the anchor's time")
    console.print(f"every run (s): {every}", markup=False)


if __name__ == "__main__":
    main()
