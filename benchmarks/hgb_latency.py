"""HistGradientBoosting models as ``fm.train`` returns them: one-row latency compiled vs the
DataFrame path, and the two ways the compiled trees predict.

For each table (80/20 split, seed 0), ``fm.train`` searches the ``hgb`` family only, a fixed
number of trials with no latency bound (so the same model comes back under any load). On the
returned ``TrainedModel``, in one run and alternating so that both see the same load:

- ``compiled``: the median of ``--calls`` ``predict_proba`` (``predict`` for a regressor) calls
  on a one-row DataFrame, the default path (members compiled to their trees);
- ``frame``: the same calls with the compiled form switched off, each member's pipeline called
  on the DataFrame, which is how an HGB member answered before it compiled;
- what ``train._latency.measure_latency`` reports for the model (the number the latency
  bound compares);
- for the first member's estimator, ``compile_hist_gradient_boosting`` on its code matrix at 1
  and 1,000 rows, forced through the NumPy walk and through scikit-learn's predictor.

Both paths' answers are checked equal (within 1e-12) on the test rows before timing.

    PYTHONPATH=src nice -n 5 python benchmarks/hgb_latency.py
    PYTHONPATH=src python benchmarks/hgb_latency.py --datasets wine --trials 4 --calls 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _load(name: str) -> tuple[pd.DataFrame, str, str]:
    if name == "wine":
        from sklearn.datasets import load_wine

        return load_wine(as_frame=True).frame, "target", "multiclass"
    if name == "german-credit":
        return pd.read_csv(DATASETS / "german-credit.csv"), "class", "binary"
    if name == "adult":
        frame = pd.read_csv(DATASETS / "adult.csv").drop(columns=["split"])
        return frame.sample(n=10_000, random_state=0), "income", "binary"
    if name == "bike-sharing":
        frame = pd.read_csv(DATASETS / "bike-sharing-hour.csv")
        return frame.drop(columns=["casual", "registered", "instant"]), "cnt", "regression"
    raise SystemExit(f"unknown table {name!r}: wine, german-credit, adult, bike-sharing")


def _median_ms(call: Callable[[], Any], calls: int) -> float:
    call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _paired(first: Callable[[], Any], second: Callable[[], Any], calls: int) -> tuple[float, float]:
    """Median times of two calls, measured in alternating rounds of ``calls // 5``."""
    a: list[float] = []
    b: list[float] = []
    rounds = max(1, calls // 5)
    for _ in range(5):
        a.append(_median_ms(first, rounds))
        b.append(_median_ms(second, rounds))
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="wine,german-credit,bike-sharing")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    for name in args.datasets.split(","):
        _measure(name, args.trials, args.calls)


def _measure(name: str, trials: int, calls: int) -> None:
    from sklearn.model_selection import train_test_split

    import forgeml as fm
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.train._latency import measure_latency
    from forgeml.train._model import FoldBag
    from forgeml.train._sklearn_compiled import compile_hist_gradient_boosting

    frame, target, task = _load(name)
    stratify = frame[target] if task != "regression" else None
    fit, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=stratify)
    with (
        tempfile.TemporaryDirectory() as home,
        Workspace(Settings(home=Path(home))) as ws,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        result = fm.train(
            fit,
            target=target,
            models=["hgb"],
            max_trials=trials,
            max_latency_ms=None,
            time_budget=600,
            seed=0,
            workspace=ws,
        )
    model = result.model
    X = test.drop(columns=[target]).reset_index(drop=True)
    predict = model.predict if task == "regression" else model.predict_proba
    one = X.iloc[:1]

    def frame_path(rows: pd.DataFrame) -> Any:
        saved = model.__dict__.get("_compiled_model")
        model.__dict__["_compiled_model"] = None  # members through their pipelines
        try:
            return predict(rows)
        finally:
            model.__dict__["_compiled_model"] = saved

    assert model._compiled() is not None, "the model did not compile"
    for i in range(0, min(len(X), 400), 7):
        got, expected = predict(X.iloc[i : i + 1]), frame_path(X.iloc[i : i + 1])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    compiled_ms, frame_ms = _paired(lambda: predict(one), lambda: frame_path(one), calls)
    reported = measure_latency(model, X, task, seed=0)
    members = [m.pipelines[0] if isinstance(m, FoldBag) else m for m in model.members]
    encoder, estimator = members[0].steps[0][1], members[0].steps[1][1]
    trees = sum(len(t) for t in estimator._predictors)
    codes = encoder.codes(X)
    thousand = codes[np.arange(1000) % len(codes)]
    timings = {}
    for way, walk_rows in (("NumPy walk", 10**9), ("scikit-learn predictor", 0)):
        compiled = compile_hist_gradient_boosting(estimator, walk_rows=walk_rows)
        timings[way] = (
            _median_ms(lambda c=compiled: c(codes[:1]), calls),
            _median_ms(lambda c=compiled: c(thousand), max(3, calls // 10)),
        )
    print(
        f"{name} ({task}, {len(model.members)} member(s) {list(model.families)}, "
        f"first: {trees} trees, test score {result.test_metrics})"
    )
    print(
        f"  one row predict_proba/predict on a DataFrame, median: compiled "
        f"{compiled_ms:.3f} ms, frame path {frame_ms:.3f} ms ({frame_ms / compiled_ms:.0f}x)"
    )
    print(f"  measure_latency (what the bound reads): {reported}")
    for way, (one_ms, many_ms) in timings.items():
        print(f"  first member, {way}: 1 row {one_ms:.3f} ms, 1,000 rows {many_ms:.1f} ms")


if __name__ == "__main__":
    main()
