"""Evaluation right after a short training: exact explanations against SHAP's permutation
explainer (the anchor: what ``fm.evaluate`` used for every forgeml model before).

One LightGBM trial is trained on 8,000 rows of UCI Adult (a budget that leaves time for the
refit), saved, and each way of explaining is timed in a fresh process, because the
permutation explainer's cost is mostly the first-call compilation of SHAP's numba functions,
paid by every new process (the CLI's ``forgeml evaluate``, the quickstart). The evaluation is
``fm.evaluate`` on 5,000 held-out rows with 200 bootstrap replicates.

    python benchmarks/evaluate_after_training.py [--budget 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

_CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import joblib, pandas as pd
import forgeml as fm
model = joblib.load(sys.argv[1])
test = pd.read_csv(sys.argv[2]).drop(columns=["split"]).iloc[40000:45000]
X, y = test.drop(columns=["income"]), test["income"]
explained = model if sys.argv[3] == "exact" else _Whole(model)
started = time.perf_counter()
report = fm.evaluate(explained, X, y, n_bootstrap=200)
print(json.dumps({"total": time.perf_counter() - started, "timings": report.timings,
                  "method": report.explanation_method, "rows": len(X)}))
"""

_WRAPPER = """
class _Whole:
    # the model seen as one opaque estimator: what the explainer got before
    def __init__(self, model):
        self.model, self.classes_, self.task = model, model.classes_, model.task
        self.threshold = model.threshold
    def predict(self, X):
        return self.model.predict(X)
    def predict_proba(self, X):
        return self.model.predict_proba(X)
"""


def main() -> None:
    """Train once, then time each evaluation in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=20.0)
    args = parser.parse_args()
    import joblib
    import pandas as pd

    import forgeml as fm
    from forgeml.config import Settings
    from forgeml.store import Workspace

    source = DATASETS / "adult.csv"
    frame = pd.read_csv(source).drop(columns=["split"]).iloc[:8000]
    with tempfile.TemporaryDirectory() as tmp, Workspace(Settings(home=Path(tmp) / "ws")) as ws:
        result = fm.train(
            frame, target="income", time_budget=args.budget, models=["lgbm"], workspace=ws,
            max_trials=1,
        )  # fmt: skip
        model_path = Path(tmp) / "model.joblib"  # a benchmark's own scratch file
        joblib.dump(result.model, model_path)
        rows = {}
        for way in ("permutation", "exact"):
            code = _WRAPPER + _CHILD
            out = subprocess.run(
                [sys.executable, "-c", code, str(model_path), str(source), way],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows[way] = json.loads(out.stdout.strip().splitlines()[-1])
    table = Table(
        title=f"fm.evaluate on {rows['exact']['rows']:,} held-out Adult rows, new process"
    )
    for column in ("explainer", "explanations s", "total s", "vs anchor"):
        table.add_column(column)
    anchor = rows["permutation"]["total"]
    for way, row in rows.items():
        table.add_row(
            f"{row['method']}{' (anchor)' if way == 'permutation' else ''}",
            f"{row['timings']['explanations']:.1f}",
            f"{row['total']:.1f}",
            f"{anchor / row['total']:.1f}x",
        )
    Console().print(table)
    print(f"model: {result.model!r}")


if __name__ == "__main__":
    main()
