"""The memory model behind ``--memory-limit``, checked against measured memory.

Each case runs one cross-validated trial (a family and its parameters) in a fresh process on a
real table and samples the process's resident set size every 5 ms; the measured peak is the
highest sample minus the resident size just before the trial (data loaded, libraries
imported). Beside it: the bytes ``MemoryModel.trial_bytes`` predicts. The model is meant to
err high (a ratio measured / predicted under 1); a ratio above 1 is a case it underestimates.

    python benchmarks/memory_model.py [--cases california-rf,adult-lgbm,...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"

# name -> (csv, target, drop, rows, family, params)
CASES: dict[str, tuple[str, str, tuple[str, ...], int, str, dict[str, Any]]] = {
    "california-rf": (
        "california-housing.csv",
        "median_house_value",
        (),
        20640,
        "rf",
        {"n_estimators": 60, "max_features": 0.5, "min_samples_leaf": 1},
    ),
    "california-et": (
        "california-housing.csv",
        "median_house_value",
        (),
        20640,
        "et",
        {"n_estimators": 60, "max_features": 0.5, "min_samples_leaf": 2},
    ),
    "california-lgbm": (
        "california-housing.csv",
        "median_house_value",
        (),
        20640,
        "lgbm",
        {"num_leaves": 255, "learning_rate": 0.1, "min_child_samples": 5},
    ),
    "california-xgb": (
        "california-housing.csv",
        "median_house_value",
        (),
        20640,
        "xgb",
        {"max_depth": 10, "learning_rate": 0.1},
    ),
    "california-mlp": (
        "california-housing.csv",
        "median_house_value",
        (),
        20640,
        "mlp",
        {"layers": "256-128", "batch_size": 256},
    ),
    "adult-rf": ("adult.csv", "income", ("split",), 20000, "rf", {"n_estimators": 60}),
    "adult-lgbm": ("adult.csv", "income", ("split",), 48842, "lgbm", {"num_leaves": 63}),
    "adult-linear": ("adult.csv", "income", ("split",), 48842, "linear", {}),
    "adult-hgb": ("adult.csv", "income", ("split",), 48842, "hgb", {"max_leaf_nodes": 63}),
    "hotel-lgbm": (
        "hotel-bookings.csv.gz",
        "customer_type",
        ("reservation_status", "reservation_status_date", "is_canceled"),
        119390,
        "lgbm",
        {"num_leaves": 63},
    ),
}


def child(name: str) -> None:
    """Run the case in this process and print JSON: measured and predicted bytes."""
    import numpy as np
    import pandas as pd

    from forgeml.train._memory import MemoryModel, process_rss
    from forgeml.train._metrics import get_metric
    from forgeml.train._search import Problem, TrialRecord, evaluate_config
    from forgeml.train._task import infer_column_kinds
    from forgeml.train._validation import make_folds
    from forgeml.train._zoo import FAMILIES, load_libraries

    csv, target, drop, rows, family, own = CASES[name]
    frame = pd.read_csv(DATASETS / csv).drop(columns=list(drop))
    frame = frame.sample(n=min(rows, len(frame)), random_state=0).reset_index(drop=True)
    regression = pd.api.types.is_float_dtype(frame[target])
    y_raw = frame.pop(target)
    if regression:
        y, task, n_classes = y_raw.to_numpy(dtype=float), "regression", 0
    else:
        codes = pd.Categorical(y_raw).codes
        y, n_classes = codes.astype(int), int(codes.max()) + 1
        task = "binary" if n_classes == 2 else "multiclass"
    kinds = infer_column_kinds(frame, {})
    problem = Problem(
        X=frame,
        y=y,
        kinds=kinds,
        task=task,
        n_classes=n_classes,
        metric=get_metric(None, task),
        folds=make_folds(len(y), None if regression else y, n_folds=5, seed=0, time_ordered=False),
        seed=0,
        n_jobs=1,
        time_ordered=False,
        imbalanced=False,
    )
    load_libraries([family])
    start = FAMILIES[family].start(task, False, len(y))
    params = {**start, **{f"{family}.{k}": v for k, v in own.items()}}
    predicted = MemoryModel.for_problem(problem).trial_bytes(family, params)
    base = process_rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process_rss())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    record = evaluate_config(
        problem,
        TrialRecord(0, family, params),
        deadline=time.monotonic() + 3600,
        cost_aware=False,
    )
    done.set()
    watcher.join()
    print(
        json.dumps(
            {
                "measured": peak[0] - base,
                "predicted": predicted,
                "state": record.state,
                "shape": list(problem.X.shape),
                "n": int(np.size(y)),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    table = Table(title="Trial peak memory: measured (RSS) vs predicted")
    for column in ("case", "rows x cols", "measured MB", "predicted MB", "measured / predicted"):
        table.add_column(column)
    for name in args.cases.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--child", name], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name}: {done.stderr.strip()[-800:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        mb = 1024**2
        row = (
            name,
            f"{out['shape'][0]:,} x {out['shape'][1]}",
            f"{out['measured'] / mb:.0f}",
            f"{out['predicted'] / mb:.0f}",
            f"{out['measured'] / out['predicted']:.2f}",
        )
        print(*row, out["state"], flush=True)
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
