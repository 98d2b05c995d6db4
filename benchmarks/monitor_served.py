"""Monitoring a served model over a large prediction log: the full report against reading the
same windows alone.

Registers a LightGBM classifier trained on 10,000 rows of UCI Adult (``adult.csv``) and logs
LOGGED predicted rows into an empty store (SQLite in a temporary folder by default, or
``--store-url``): requests of ROWS real Adult rows (resampled with a seed) spread evenly over
HOURS hours, the second half with ``age`` shifted by +10 years, answers and probabilities
computed by the model, seeded log-normal latencies; the true labels of half the requests are
sent back as feedback. Then, each in a fresh process:

- ``read``: the windows alone (the log read and expanded per window, nothing computed);
- ``report``: ``fm.monitor.served_report`` over the same windows (input and prediction drift,
  latency and errors, true metrics with 200 bootstrap replicates, CBPE estimates, cost).

Each case reports its time and its peak resident memory above what it held after its imports.

    python benchmarks/monitor_served.py                       # 200,000 predictions, 1 h windows
    python benchmarks/monitor_served.py --logged 1000000 --window 10000
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

MODEL = "adult"
HOUR_MS = 3_600_000
START_MS = 1_780_000_000_000 - 1_780_000_000_000 % HOUR_MS
DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult.csv"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _adult() -> Any:
    import pandas as pd

    if not DATASET.is_file():
        sys.exit(f"The dataset {DATASET} is absent")
    frame = pd.read_csv(DATASET).drop(columns=["split"])
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and column != "income":
            frame[column] = frame[column].astype("category")
    return frame


def setup(home: str, url: str | None, logged: int, per: int, hours: int, seed: int) -> float:
    """Register the model and fill the log; return the seconds the log writes took."""
    import lightgbm as lgb
    import numpy as np

    import forgeml as fm
    from forgeml.config import Settings
    from forgeml.store import PredictionRecord, Workspace

    settings = Settings(home=Path(home), **({"store_url": url} if url else {}))
    ws = Workspace(settings)
    frame = _adult()
    train = frame.iloc[:10_000]
    X, y = train.drop(columns=["income"]), train["income"]
    model = lgb.LGBMClassifier(n_estimators=60, num_leaves=31, random_state=seed, verbose=-1)
    model.fit(X, y)
    version = fm.register(model, name=MODEL, sample=X, workspace=ws).version
    fm.registry.promote(MODEL, version, workspace=ws)
    loaded = fm.load(f"{MODEL}@production", workspace=ws)
    pool = frame.iloc[10_000:]
    known = pool
    for column in X.columns:  # categories the model knows (the server refuses others)
        if isinstance(X[column].dtype, __import__("pandas").CategoricalDtype):
            known = known[known[column].isna() | known[column].isin(X[column].dropna().unique())]
    rng = np.random.default_rng(seed)
    requests = logged // per
    step = hours * HOUR_MS / requests
    elapsed = 0.0
    batch_requests = max(1, 20_000 // per)
    for first in range(0, requests, batch_requests):
        n = min(batch_requests, requests - first)
        rows = known.iloc[rng.integers(0, len(known), n * per)].reset_index(drop=True)
        late = (first + np.arange(n * per) // per) >= requests // 2
        rows.loc[late, "age"] = rows.loc[late, "age"] + 10
        inputs = rows.drop(columns=["income"])
        predicted, proba = loaded.predict_both(inputs)
        latencies = np.round(rng.lognormal(1.0, 0.5, n), 3)
        plain = inputs.astype(object).where(inputs.notna(), None)
        columns = {c: plain[c].tolist() for c in plain.columns}
        records, labels = [], {}
        for j in range(n):
            a, b = j * per, (j + 1) * per
            request_id = str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | (first + j)))
            records.append(
                PredictionRecord(
                    request_id=request_id,
                    model=MODEL,
                    version=version,
                    role="primary",
                    time_ms=START_MS + int((first + j) * step),
                    latency_ms=float(latencies[j]),
                    n_rows=per,
                    inputs={c: v[a:b] for c, v in columns.items()},
                    outputs={
                        "predictions": predicted[a:b].tolist(),
                        "probabilities": proba[a:b].tolist(),
                        "classes": list(loaded.classes),
                    },
                    protocol="json",
                )
            )
            if j % 2 == 0:
                labels[request_id] = rows["income"].iloc[a:b].tolist()
        start = time.perf_counter()
        ws.predlog.write_predictions(records)
        ws.predlog.add_feedback(labels)
        elapsed += time.perf_counter() - start
        print(f"  logged {(first + n) * per:,} / {logged:,}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    ws.close()
    return elapsed


def run_case(case: str, home: str, url: str | None, window: str) -> dict[str, Any]:
    import pandas as pd  # noqa: F401  (imported before the baseline)

    import forgeml.monitor as monitor
    from forgeml.config import Settings
    from forgeml.monitor._windows import log_windows, parse_window
    from forgeml.store import Workspace

    ws = Workspace(Settings(home=Path(home), **({"store_url": url} if url else {})))
    version = ws.models.resolve(MODEL, "production").version
    _reset_peak_rss()
    baseline = _status_mb("VmRSS")
    start = time.perf_counter()
    if case == "read":
        sizes = [
            len(w.rows)
            for w in log_windows(
                ws.predlog, MODEL, parse_window(window), version=version, now_ms=2**62
            )
        ]
        windows, rows = len(sizes), sum(sizes)
        extra: dict[str, Any] = {}
    else:
        report = monitor.served_report(
            f"{MODEL}@production", window=window, workspace=ws, n_bootstrap=200, now_ms=2**62
        )
        windows, rows = len(report.windows), sum(w.rows for w in report.windows)
        drifted = [w.input_drift["drifted"] for w in report.windows if w.input_drift]
        extra = {
            "drifted_windows": f"{sum(drifted[: len(drifted) // 2])} of first half, "
            f"{sum(drifted[len(drifted) // 2 :])} of second half",
        }
    seconds = time.perf_counter() - start
    return {
        "case": case,
        "seconds": seconds,
        "peak_mb": _status_mb("VmHWM") - baseline,
        "windows": windows,
        "rows": rows,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logged", type=int, default=200_000, help="predicted rows to log")
    parser.add_argument("--rows-per-request", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--window", default="1h")
    parser.add_argument("--store-url", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", choices=("read", "report"), help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.home, args.store_url, args.window)))
        return
    with tempfile.TemporaryDirectory() as home:
        print(f"logging {args.logged:,} predictions over {args.hours} h ...", file=sys.stderr)
        wrote = setup(
            home, args.store_url, args.logged, args.rows_per_request, args.hours, args.seed
        )
        print(f"log written in {wrote:.1f} s", file=sys.stderr)
        results = []
        for case in ("read", "report"):
            command = [
                sys.executable,
                __file__,
                "--case",
                case,
                "--home",
                home,
                "--window",
                args.window,
            ]
            if args.store_url:
                command += ["--store-url", args.store_url]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(done.stderr)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"\n{args.logged:,} logged predictions ({args.rows_per_request} rows per request, "
        f"{args.hours} h, second half shifted), window {args.window}, "
        f"store {args.store_url or 'SQLite'}:"
    )
    print(f"{'case':<8} {'windows':>8} {'rows':>10} {'seconds':>9} {'peak MB':>8}")
    for r in results:
        print(
            f"{r['case']:<8} {r['windows']:>8,} {r['rows']:>10,} {r['seconds']:>9.1f} "
            f"{r['peak_mb']:>8.0f}"
        )
    report = results[1]
    print(
        f"report / read time: {report['seconds'] / results[0]['seconds']:.2f}x; "
        f"drifted windows: {report['drifted_windows']}"
    )


if __name__ == "__main__":
    main()
