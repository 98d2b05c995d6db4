"""One AutoGluon fit for benchmarks/automl.py, run in AutoGluon's own interpreter.

AutoGluon 1.x pins pandas below 3 and NumPy below forgeml's, so it cannot share forgeml's
environment. ``benchmarks/automl.py --autogluon-python PATH`` runs this script in that
interpreter once per table and preset; it imports nothing from forgeml. Set-up (AutoGluon's
tabular part with its LightGBM, XGBoost and CatBoost extras; no torch, so its neural networks
are skipped; check with ``pip install --dry-run`` first that nothing pulls torch):

    python3 -m venv /work/venvs/autogluon
    /work/venvs/autogluon/bin/pip install 'autogluon.tabular[lightgbm,xgboost,catboost]'

It reads the split automl.py wrote (``train.parquet``, ``test.parquet``), fits
``TabularPredictor`` with the preset and ``time_limit`` asked for (models seeded with ``--seed``;
bagged folds start from it through ``ag_args_ensemble``), then predicts the test rows and times
20 one-row calls of the persisted predictor. It prints one JSON line: the test predictions (class
probabilities in ``classes`` order, or values), the fit's wall time, the median one-row latency
and the best model's name. automl.py scores the predictions, by the same function as for the
other systems.

    python benchmarks/automl_autogluon.py --train T --test T --target y --task binary \
        --preset medium_quality --budget 60 --seed 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings

METRICS = {
    "binary": "roc_auc",
    "multiclass": "roc_auc_ovr",  # macro one-vs-rest
    "regression": "root_mean_squared_error",
}


def _keep_learner_after_failed_dystack() -> None:
    """AutoGluon 1.6.3's ``_dystack`` returns early when its sub-fit raises (on a short budget
    or a loaded machine: "No models were trained successfully") without putting the unfitted
    learner back, so the full fit then stops with "Learner is already fit". Put it back, as
    the function does when the sub-fit succeeds; the full fit then runs as the preset says."""
    import copy

    from autogluon.tabular.predictor import predictor as module

    original = module._dystack

    def dystack(predictor, **kwargs):
        learner = copy.deepcopy(predictor._learner)
        result = original(predictor=predictor, **kwargs)
        if result[2] is not None:  # (stacked_overfitting, leaderboard, exception)
            predictor._learner = learner
        return result

    module._dystack = dystack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", required=True, choices=sorted(METRICS))
    parser.add_argument("--preset", required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-dystack",
        action="store_true",
        help="dynamic_stacking=False (best_quality spends a quarter of the time on a sub-fit)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import numpy as np
    import pandas as pd
    from autogluon.tabular import TabularPredictor

    _keep_learner_after_failed_dystack()
    train = pd.read_parquet(args.train)
    test = pd.read_parquet(args.test)
    X_test = test.drop(columns=[args.target])
    with tempfile.TemporaryDirectory(prefix="ag-bench-") as path:
        started = time.perf_counter()
        predictor = TabularPredictor(
            label=args.target,
            problem_type=args.task,
            eval_metric=METRICS[args.task],
            path=path,
            verbosity=0,
        ).fit(
            train,
            presets=args.preset,
            time_limit=args.budget,
            ag_args_fit={"random_seed": args.seed},
            ag_args_ensemble={"model_random_seed": args.seed},
            excluded_model_types=["NN_TORCH", "FASTAI"],  # need torch, not installed
            **({"dynamic_stacking": False} if args.no_dystack else {}),
        )
        wall = time.perf_counter() - started
        predictor.persist()
        if args.task == "regression":
            pred = np.asarray(predictor.predict(X_test), dtype=float).tolist()
            classes: list = []
            call = predictor.predict
        else:
            proba = predictor.predict_proba(X_test)
            classes = [c.item() if hasattr(c, "item") else c for c in proba.columns]
            pred = proba.to_numpy(dtype=float).tolist()
            call = predictor.predict_proba
        one_row = X_test.iloc[[0]]
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            call(one_row)
            times.append(time.perf_counter() - t0)
        best = str(predictor.model_best)
    print(
        json.dumps(
            {
                "pred": pred,
                "classes": classes,
                "wall": wall,
                "latency_ms": statistics.median(times) * 1000,
                "model": best,
            }
        )
    )


if __name__ == "__main__":
    main()
