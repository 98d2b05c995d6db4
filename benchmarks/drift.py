"""Drift of a 1,000,000-row table against a 100,000-row reference: forgeml beside Evidently.

Two real tables, each resampled (rows drawn with replacement, seeded) to a reference of
REFERENCE rows and a current table of CURRENT rows:

- bike sharing (``bike-sharing-hour.csv``, 17 columns): reference drawn from 2011, current
  from 2012 (a real drift: the service grew, the dates moved on);
- hotel bookings (``hotel-bookings.csv.gz``, 32 columns): reference drawn from bookings arriving
  in 2015 and 2016, current from 2017.

and, for the false-alarm rate, PAIRS same-distribution pairs per table: the table split into
two disjoint random halves, the reference drawn from one and the current from the other (the
halves differ only by the chance of the split, so any drift claimed is a false alarm).

Each case runs in a fresh process that builds its two tables, imports its tool, then measures
the comparison alone: wall time, and peak resident memory above what the process held before
(``VmHWM`` reset by ``clear_refs``; covers NumPy, Arrow and LightGBM buffers as well as
Python's), set against the two tables' own size (``memory_usage(deep=True)``).

- forgeml: ``DriftDetector().fit(reference).score(current)`` with its defaults (per-column
  effect sizes against thresholds calibrated at both sizes, a minimum effect of 0.1, the
  domain classifier, Bonferroni over the tests at alpha 0.05).
- Evidently: ``Report([DataDriftPreset()]).run(current, reference)`` with its defaults
  (above 1,000 rows: normed Wasserstein distance for numbers and Jensen-Shannon distance for
  categories, each against 0.1; the table drifts when half the columns do).

Evidently 0.7 does not import under pandas 3 (it uses ``infer_dtype_from_object``, which
pandas removed), so its cases run in an interpreter of their own, given with
``--evidently-python`` (a virtual environment with ``pip install evidently "pandas<3"``); the
same seeds draw the same rows there.

    python benchmarks/drift.py --evidently-python .bench/evidently/bin/python
    python benchmarks/drift.py --current-rows 200000 --pairs 1     # quicker
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
FILES = {"bike": "bike-sharing-hour.csv", "hotel": "hotel-bookings.csv.gz"}
TOOLS = ("forgeml", "evidently")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def _tables(dataset: str, kind: str, seed: int, reference_rows: int, current_rows: int) -> Any:
    """The (reference, current) pair of one case, drawn with NumPy only (same rows in every
    pandas version)."""
    import numpy as np
    import pandas as pd

    path = DATASETS / FILES[dataset]
    if not path.is_file():
        sys.exit(f"The dataset {path} is absent")
    frame = pd.read_csv(path)
    rng = np.random.default_rng(seed)
    if kind == "drift":
        if dataset == "bike":
            year = pd.to_datetime(frame["dteday"]).dt.year.to_numpy()
            old, new = np.flatnonzero(year == 2011), np.flatnonzero(year == 2012)
        else:
            year = frame["arrival_date_year"].to_numpy()
            old, new = np.flatnonzero(year <= 2016), np.flatnonzero(year == 2017)
    else:
        order = rng.permutation(len(frame))
        half = len(frame) // 2
        old, new = order[:half], order[half : 2 * half]
    reference = frame.iloc[rng.choice(old, reference_rows)].reset_index(drop=True)
    current = frame.iloc[rng.choice(new, current_rows)].reset_index(drop=True)
    return reference, current


def _run_forgeml(reference: Any, current: Any) -> dict[str, Any]:
    from forgeml.monitor import DriftDetector

    report = DriftDetector().fit(reference).score(current)
    mv = report.multivariate
    return {
        "drifted": report.drifted,
        "columns": len(report.columns),
        "flagged": list(report.drifted_columns),
        "note": f"AUC {mv.auc:.3f}" if mv is not None and mv.auc is not None else "",
    }


def _warm_forgeml() -> None:
    import lightgbm  # noqa: F401
    import sklearn.metrics  # noqa: F401

    from forgeml.data import infer_schema  # noqa: F401
    from forgeml.monitor import _detector, _domain  # noqa: F401


def _run_evidently(reference: Any, current: Any) -> dict[str, Any]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(current, reference)
    flagged, count, share = [], None, None
    for metric in snapshot.dict()["metrics"]:
        config, value = metric["config"], metric["value"]
        if config["type"].endswith("DriftedColumnsCount"):
            count, share = int(value["count"]), float(value["share"])
        elif config["type"].endswith("ValueDrift"):
            # p-value tests drift below their threshold, distances at or above it
            is_p_value = "p_value" in config["method"]
            hit = value < config["threshold"] if is_p_value else value >= config["threshold"]
            if hit:
                flagged.append(config["column"])
    assert count is not None and share is not None
    return {
        "drifted": share >= 0.5,
        "columns": round(count / share) if share else len(reference.columns),
        "flagged": flagged,
        "note": "",
    }


def case(tool: str, dataset: str, kind: str, seed: int, reference_rows: int, current_rows: int):
    """Run one case in this process and print its measurements as JSON."""
    import warnings

    warnings.filterwarnings("ignore")
    reference, current = _tables(dataset, kind, seed, reference_rows, current_rows)
    size_mb = (
        float(reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum())
        / 2**20
    )
    if tool == "forgeml":
        _warm_forgeml()
        run = _run_forgeml
    else:
        import evidently.presets  # noqa: F401

        run = _run_evidently
    gc.collect()
    before = _status_mb("VmRSS")
    _reset_peak_rss()
    start = time.perf_counter()
    result = run(reference, current)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM") - before
    print(json.dumps({**result, "seconds": seconds, "peak_mb": peak, "tables_mb": size_mb}))


def _spawn(python: str, args: list[str]) -> dict[str, Any]:
    command = [python, str(Path(__file__).resolve()), "--case", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--current-rows", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=3, help="same-distribution pairs per table")
    parser.add_argument("--datasets", default="bike,hotel")
    parser.add_argument("--evidently-python", default=sys.executable)
    parser.add_argument("--case", nargs=4, metavar=("TOOL", "DATASET", "KIND", "SEED"))
    args = parser.parse_args()
    if args.case:
        tool, dataset, kind, seed = args.case
        case(tool, dataset, kind, int(seed), args.reference_rows, args.current_rows)
        return
    sizes = [f"--reference-rows={args.reference_rows}", f"--current-rows={args.current_rows}"]
    pythons = {"forgeml": sys.executable, "evidently": args.evidently_python}
    rows: list[tuple[str, str, str, dict[str, Any]]] = []
    for dataset in args.datasets.split(","):
        kinds = [("drift", 0)] + [("same", seed) for seed in range(1, args.pairs + 1)]
        for kind, seed in kinds:
            for tool in TOOLS:
                result = _spawn(pythons[tool], [tool, dataset, kind, str(seed), *sizes])
                rows.append((dataset, f"{kind}#{seed}" if kind == "same" else kind, tool, result))
                print(dataset, kind, seed, tool, json.dumps(result), file=sys.stderr, flush=True)
    print(
        f"\nreference {args.reference_rows:,} rows, current {args.current_rows:,} rows "
        "(resampled); 'drift' = a later period, 'same#k' = disjoint random halves of the table"
    )
    header = ("table", "pair", "tool", "seconds", "peak MB", "tables MB", "peak/tables",
              "table drift", "columns flagged")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for dataset, pair, tool, r in rows:
        if "error" in r:
            print(f"| {dataset} | {pair} | {tool} | failed: {r['error']} |" + " |" * 5)
            continue
        flagged = f"{len(r['flagged'])} of {r['columns']}"
        if pair.startswith("same") and r["flagged"]:
            flagged += " (" + ", ".join(r["flagged"][:4]) + ")"
        if r["note"]:
            flagged += f"; classifier {r['note']}"
        print(
            f"| {dataset} | {pair} | {tool} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | "
            f"{r['tables_mb']:.0f} | {r['peak_mb'] / r['tables_mb']:.2f} | "
            f"{'yes' if r['drifted'] else 'no'} | {flagged} |"
        )
    print()
    for dataset in args.datasets.split(","):
        got = {t: [r for d, _, tt, r in rows if d == dataset and tt == t and "error" not in r]
               for t in TOOLS}  # fmt: skip
        if not all(got.values()):
            continue
        speed = sum(r["seconds"] for r in got["evidently"]) / sum(
            r["seconds"] for r in got["forgeml"]
        )
        same = {t: [r for d, p, tt, r in rows if d == dataset and tt == t and p.startswith("same")
                    and "error" not in r] for t in TOOLS}  # fmt: skip
        alarms = {t: sum(r["drifted"] for r in same[t]) for t in TOOLS}
        columns = {t: sum(len(r["flagged"]) for r in same[t]) for t in TOOLS}
        print(
            f"{dataset}: forgeml {speed:.1f}x faster than Evidently over its {len(got['forgeml'])}"
            f" cases; same-distribution pairs: table-level alarms forgeml {alarms['forgeml']} of"
            f" {len(same['forgeml'])}, Evidently {alarms['evidently']} of {len(same['evidently'])};"
            f" columns wrongly flagged forgeml {columns['forgeml']}, Evidently"
            f" {columns['evidently']}"
        )


if __name__ == "__main__":
    main()
