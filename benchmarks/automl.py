"""AutoML: forgeml against FLAML with the same time budget, seed and train/test split.

Each dataset is split once (80/20, stratified for classification, seed 0); both tools get the
training rows and the same budget, and both models are scored here, by the same function, on
the same test rows: ROC AUC for classification (one-vs-rest macro for several classes), RMSE
for regression. Wall time is measured around each tool's fit call. Needs the ``bench`` extra
(``flaml[automl]``) and the shared datasets folder.

    python benchmarks/automl.py [--budget 60] [--datasets adult,german-credit] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@dataclass(frozen=True)
class Case:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str  # binary, multiclass, regression


def _csv(name: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        return pd.read_csv(DATASETS / name).drop(columns=list(drop))

    return load


def _sklearn(loader: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        data = getattr(sklearn.datasets, loader)(as_frame=True)
        return data.frame

    return load


CASES = {
    c.name: c
    for c in (
        Case("adult", _csv("adult.csv", ("split",)), "income", "binary"),
        Case(
            "bank-marketing",
            _csv("bank-additional-full.csv", ("duration",)),
            "y",
            "binary",
        ),
        Case("german-credit", _csv("german-credit.csv"), "class", "binary"),
        Case("breast-cancer", _sklearn("load_breast_cancer"), "target", "binary"),
        Case("wine", _sklearn("load_wine"), "target", "multiclass"),
        Case("digits", _sklearn("load_digits"), "target", "multiclass"),
        Case(
            "california-housing", _csv("california-housing.csv"), "median_house_value", "regression"
        ),
        Case(
            "bike-sharing",
            _csv("bike-sharing-hour.csv", ("casual", "registered", "instant")),
            "cnt",
            "regression",
        ),
    )
}


def _split(frame: pd.DataFrame, case: Case, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    stratify = frame[case.target] if case.task != "regression" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _score(case: Case, classes: list, y_true: pd.Series, pred: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if case.task == "regression":
        return float(np.sqrt(np.mean((y_true.to_numpy(dtype=float) - pred) ** 2)))
    codes = pd.Categorical(y_true, categories=classes).codes
    if case.task == "binary":
        return float(roc_auc_score(codes, pred[:, 1]))
    return float(roc_auc_score(codes, pred, multi_class="ovr", labels=range(len(classes))))


def run_forgeml(case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int):
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.train import train as fm_train

    metric = "rmse" if case.task == "regression" else "roc_auc"
    with tempfile.TemporaryDirectory() as home, Workspace(Settings(home=Path(home))) as ws:
        started = time.perf_counter()
        result = fm_train(
            train,
            target=case.target,
            task=case.task,
            metric=metric,
            time_budget=budget,
            seed=seed,
            test_data=test,
            workspace=ws,
        )
        wall = time.perf_counter() - started
    X = test.drop(columns=[case.target])
    if case.task == "regression":
        pred = result.model.predict(X)
        classes: list = []
    else:
        pred = result.model.predict_proba(X)
        classes = list(result.classes_ or [])
    desc = (
        result.best["model"]
        if not result.ensemble
        else "ens(" + "+".join(e["model"] for e in result.ensemble) + ")"
    )
    return _score(case, classes, test[case.target], pred), wall, desc


def run_flaml(case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int):
    from flaml import AutoML

    automl = AutoML()
    X, y = train.drop(columns=[case.target]), train[case.target]
    metric = (
        "rmse"
        if case.task == "regression"
        else ("roc_auc" if case.task == "binary" else "roc_auc_ovr")
    )
    task = "regression" if case.task == "regression" else "classification"
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(
            X, y, task=task, metric=metric, time_budget=budget, seed=seed, verbose=0, n_jobs=-1
        )
    wall = time.perf_counter() - started
    X_test = test.drop(columns=[case.target])
    if case.task == "regression":
        pred = np.asarray(automl.predict(X_test), dtype=float)
        classes: list = []
    else:
        pred = np.asarray(automl.predict_proba(X_test))
        classes = list(automl.classes_)
    return _score(case, classes, test[case.target], pred), wall, str(automl.best_estimator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per tool and dataset")
    parser.add_argument("--datasets", default=",".join(CASES), help="comma-separated names")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("flaml").setLevel(logging.ERROR)
    console = Console(width=160)
    if not DATASETS.is_dir():
        console.print(f"The shared datasets folder {DATASETS} is absent")
        return
    rows = []
    for name in args.datasets.split(","):
        case = CASES[name]
        frame = case.load()
        train, test = _split(frame, case, args.seed)
        fm = run_forgeml(case, train, test, args.budget, args.seed)
        fl = run_flaml(case, train, test, args.budget, args.seed)
        rows.append((case, fm, fl))
        console.print(
            f"{name}: forgeml {fm[0]:.5g} in {fm[1]:.1f}s ({fm[2]}), "
            f"FLAML {fl[0]:.5g} in {fl[1]:.1f}s ({fl[2]})",
            markup=False,
        )

    table = Table(
        title=f"AutoML, {args.budget:g} s budget, seed {args.seed}, same 80/20 split",
        header_style="bold",
    )
    for column in (
        "dataset",
        "metric",
        "forgeml",
        "FLAML",
        "gap",
        "forgeml s",
        "FLAML s",
        "forgeml model",
        "FLAML model",
    ):
        table.add_column(column)
    ranks = {"forgeml": [], "FLAML": []}
    for case, fm, fl in rows:
        higher = case.task != "regression"
        metric = "RMSE" if not higher else "ROC AUC"
        better = (fm[0] > fl[0]) if higher else (fm[0] < fl[0])
        tie = fm[0] == fl[0]
        ranks["forgeml"].append(1.5 if tie else (1 if better else 2))
        ranks["FLAML"].append(1.5 if tie else (2 if better else 1))
        gap = (fm[0] - fl[0]) if higher else (fm[0] - fl[0]) / fl[0]
        gap_text = f"{gap:+.4f}" if higher else f"{gap:+.2%}"
        table.add_row(
            case.name,
            metric,
            f"{fm[0]:.5g}",
            f"{fl[0]:.5g}",
            gap_text,
            f"{fm[1]:.1f}",
            f"{fl[1]:.1f}",
            fm[2],
            fl[2],
        )
    console.print(table)
    console.print(
        f"mean rank: forgeml {np.mean(ranks['forgeml']):.2f}, FLAML {np.mean(ranks['FLAML']):.2f}"
        " (1 = best; gap: AUC difference, or RMSE relative to FLAML, negative = forgeml lower)"
    )


if __name__ == "__main__":
    main()
