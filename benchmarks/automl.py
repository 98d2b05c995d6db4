"""AutoML: forgeml against FLAML and AutoGluon with the same time budget, seed and split.

Each table is split 80/20 (stratified for classification, ``--seed``); every system gets the
training rows and the same budget (60 s by default), and every model is scored here, by the
same function, on the same test rows: ROC AUC for binary tables, macro one-vs-rest ROC AUC for
multiclass ones, RMSE for regression. A table of at most 1,250 rows (german-credit and its
``credit_amount``, wine) is split 5 times (``--small-splits``; seeds ``--seed`` to ``--seed``+4),
every system fitted and scored on each split, and its score is the mean of the five: on 200 test
rows one split's RMSE moves by several percent with the rows drawn (a paired bootstrap put
forgeml's +3.3% behind AutoGluon medium on ``credit_amount``'s first split anywhere from -0.7%
to +8.1%), more than the targets' slack. Four systems:

- forgeml: ``forgeml.train.train`` with its defaults (this process, forgeml's environment);
- FLAML: ``AutoML().fit(..., time_budget=budget)`` (a child process, stopped
  at 5x the budget: its final refit has no time limit by default; ``pip install flaml``);
- AG medium, AG best: AutoGluon's ``TabularPredictor`` with the presets ``medium_quality`` and
  ``best_quality``, ``time_limit=budget``, run by ``benchmarks/automl_autogluon.py`` in
  AutoGluon's own interpreter (``--autogluon-python``; AutoGluon 1.x needs pandas below 3).
  The split goes to it as Parquet files, its test predictions come back as JSON.

Nine tables by default: 3 binary (adult, bank-marketing without ``duration``, german-credit),
3 multiclass (scikit-learn's wine and digits; adult-occupation: adult.csv's ``occupation``,
14 classes, from the other columns, rows with it missing left out) and 3 regression
(california-housing, bike-sharing without ``casual``/``registered``, german-credit-amount:
german-credit.csv's ``credit_amount`` from the other columns, 1,000 rows). ``--datasets`` adds
breast-cancer. None of these tables is among those ``tools/build_portfolio.py`` builds
forgeml's starting portfolio from (it holds adult, german-credit and the rest back), so the
portfolio is measured on tables it has not seen.

Printed per table and system: the score, its gap to the best system on that table, wall time
of the fit against the budget, and one-row latency: the median of 20 ``predict_proba`` (or
``predict``) calls on a one-row DataFrame (the first test row), on the model the system returned
(AutoGluon: the predictor after ``persist()``). Then each system's mean rank (1 = best; ties
share the mean rank) and the three targets of issue 19, each met or unmet:

- forgeml's mean rank is the first (lowest) of the four;
- on no table is forgeml worse than the best system by more than 0.003 ROC AUC or 1.5% RMSE;
- forgeml's one-row latency is the lowest of the four on every table.

The targets are judged among the four systems the issue names (forgeml, FLAML, AG medium, AG
best); the ranks and targets against every other system run (``AG best (no DyStack)``, forgeml's
variants) are printed beside them, not judged.

``--systems forgeml,"forgeml (no portfolio)"`` measures forgeml's zero-shot portfolio: the same
training with ``portfolio=0`` (each family's starting point, then the Bayesian search) beside
the default (the starting points, then the portfolio's first 8 configurations); the two
``(..., no latency bound)`` variants compare them with ``max_latency_ms=None``;
``"forgeml (no bagging)"`` refits every member on all rows instead of bagging LightGBM and
XGBoost members, and tries no second stacking level.

``--systems "AG best (no DyStack)"`` runs a fifth: best_quality with ``dynamic_stacking=False``
(at 60 s on a loaded machine the preset's dynamic-stacking sub-fit can leave its full fit no
time; without it the preset bags and stacks at once).

``--reuse saved.json`` takes FLAML's and AutoGluon's outcomes from an earlier run with the same
budget and seed instead of fitting them again, split by split (their fits do not depend on
forgeml's code; the report names the run they came from; a run from before ``--small-splits``
holds the first split of each table); forgeml's systems are always measured.

Results go to ``benchmarks/results/automl.json`` (``--out``; rewritten after each table, so a
cut run keeps what it measured) and a plot of each system's score gap to the best per table
beside it (``automl.png``); ``--report-only`` prints and plots a saved JSON again.

AutoGluon's environment (no torch: its neural networks are left out of its model list):

    python3 -m venv /work/venvs/autogluon
    /work/venvs/autogluon/bin/pip install 'autogluon.tabular[lightgbm,xgboost,catboost]'

    nice -n 5 python benchmarks/automl.py --autogluon-python /work/venvs/autogluon/bin/python
    python benchmarks/automl.py --budget 20 --datasets wine,german-credit --systems forgeml,FLAML
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results"
RUNNER = Path(__file__).resolve().parent / "automl_autogluon.py"
SYSTEMS = ("forgeml", "FLAML", "AG medium", "AG best")
# forgeml with other options, run on request (``--systems``)
FORGEML_VARIANTS: dict[str, dict[str, Any]] = {
    "forgeml (no portfolio)": {"portfolio": 0},
    "forgeml (no latency bound)": {"max_latency_ms": None},
    "forgeml (no portfolio or latency bound)": {"portfolio": 0, "max_latency_ms": None},
    "forgeml (no bagging)": {"bagging": False},
}
# AutoGluon's preset per system; "AG best (no DyStack)" (not run unless named in --systems) is
# best_quality without its dynamic-stacking sub-fit, which at 60 s on a loaded machine can
# leave the full fit no time at all
PRESETS = {
    "AG medium": ("medium_quality", False),
    "AG best": ("best_quality", False),
    "AG best (no DyStack)": ("best_quality", True),
}
AUC_SLACK, RMSE_SLACK = 0.003, 0.015  # issue 19: no table worse than the best by more
# Tables of at most this many rows (a test split of at most 250) are scored on several 80/20
# splits (``--small-splits``): one split's score there is mostly the luck of its test rows.
SMALL_ROWS = 1_250


@dataclass(frozen=True)
class Case:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str
    task: str  # binary, multiclass, regression


@dataclass
class Outcome:
    score: float | None = None
    wall: float | None = None
    latency_ms: float | None = None
    model: str = ""
    error: str = ""
    reused: str = ""  # where a measurement taken by an earlier run came from
    split_scores: list[float] | None = None  # a small table's score on each of its splits


def _csv(name: str, drop: tuple[str, ...] = (), target: str | None = None):
    def load() -> pd.DataFrame:
        frame = pd.read_csv(DATASETS / name).drop(columns=list(drop))
        if target is not None:  # rows without a target are not a test of anything
            frame = frame.loc[frame[target].notna()].reset_index(drop=True)
        return frame

    return load


def _sklearn(loader: str):
    def load() -> pd.DataFrame:
        import sklearn.datasets

        data = getattr(sklearn.datasets, loader)(as_frame=True)
        return data.frame

    return load


CASES = {
    c.name: c
    for c in (
        Case("adult", _csv("adult.csv", ("split",)), "income", "binary"),
        Case("bank-marketing", _csv("bank-additional-full.csv", ("duration",)), "y", "binary"),
        Case("german-credit", _csv("german-credit.csv"), "class", "binary"),
        Case("breast-cancer", _sklearn("load_breast_cancer"), "target", "binary"),
        Case("wine", _sklearn("load_wine"), "target", "multiclass"),
        Case("digits", _sklearn("load_digits"), "target", "multiclass"),
        Case(
            "adult-occupation",
            _csv("adult.csv", ("split",), "occupation"),
            "occupation",
            "multiclass",
        ),
        Case(
            "california-housing", _csv("california-housing.csv"), "median_house_value", "regression"
        ),
        Case(
            "bike-sharing",
            _csv("bike-sharing-hour.csv", ("casual", "registered", "instant")),
            "cnt",
            "regression",
        ),
        Case(
            "german-credit-amount",
            _csv("german-credit.csv"),
            "credit_amount",
            "regression",
        ),
    )
}
DEFAULT = [c for c in CASES if c != "breast-cancer"]


def _split(frame: pd.DataFrame, case: Case, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    stratify = frame[case.target] if case.task != "regression" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def split_seeds(n_rows: int, seed: int, small_splits: int) -> list[int]:
    """The seeds of a table's 80/20 splits: ``seed`` alone, or ``small_splits`` of them from
    ``seed`` on for a table of at most ``SMALL_ROWS`` rows."""
    return list(range(seed, seed + small_splits)) if n_rows <= SMALL_ROWS else [seed]


def combine(outcomes: list[Outcome]) -> Outcome:
    """One system's outcome on a table from its outcomes on the table's splits: the mean score
    and wall time, the median one-row latency, the first split's model. A failed split fails
    the table (a mean over the other splits would not compare with the other systems')."""
    if len(outcomes) == 1:
        return outcomes[0]
    sources = list(dict.fromkeys(o.reused for o in outcomes if o.reused))
    n_reused = sum(bool(o.reused) for o in outcomes)
    reused = f"{n_reused} of {len(outcomes)} splits from {'; '.join(sources)}" if sources else ""
    failed = [(i, o) for i, o in enumerate(outcomes) if o.score is None]
    if failed:
        i, o = failed[0]
        return Outcome(error=f"split {i + 1} of {len(outcomes)}: {o.error}", reused=reused)
    scores = [float(o.score) for o in outcomes]  # type: ignore[arg-type]
    walls = [o.wall for o in outcomes if o.wall is not None]
    latencies = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    return Outcome(
        score=float(np.mean(scores)),
        wall=float(np.mean(walls)) if walls else None,
        latency_ms=float(np.median(latencies)) if latencies else None,
        model=outcomes[0].model,
        reused=reused,
        split_scores=scores,
    )


def _score(case: Case, classes: list, y_true: pd.Series, pred: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if case.task == "regression":
        return float(np.sqrt(np.mean((y_true.to_numpy(dtype=float) - pred) ** 2)))
    codes = pd.Categorical(y_true, categories=classes).codes
    if (codes < 0).any():
        raise ValueError(f"test labels outside the classes the model returned: {classes}")
    if case.task == "binary":
        return float(roc_auc_score(codes, pred[:, 1]))
    return float(roc_auc_score(codes, pred, multi_class="ovr", labels=range(len(classes))))


def _latency_ms(call: Callable[[pd.DataFrame], Any], row: pd.DataFrame) -> float:
    """Median of 20 calls on a one-row DataFrame, in milliseconds."""
    times = []
    for _ in range(20):
        started = time.perf_counter()
        call(row)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def run_forgeml(
    case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int, **options
):
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
            **options,
        )
        wall = time.perf_counter() - started
    X = test.drop(columns=[case.target])
    if case.task == "regression":
        pred = result.model.predict(X)
        classes: list = []
        call = result.model.predict
    else:
        pred = result.model.predict_proba(X)
        classes = list(result.classes_ or [])
        call = result.model.predict_proba
    desc = (
        result.best["model"]
        if not result.ensemble
        else "ens(" + "+".join(e["model"] for e in result.ensemble) + ")"
    )
    score = _score(case, classes, test[case.target], pred)
    return Outcome(score, wall, _latency_ms(call, X.iloc[[0]]), desc)


FLAML_LIMIT = 5  # FLAML runs in a child process, stopped at this many times the budget


def run_flaml(
    case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int
) -> Outcome:
    """FLAML in a child process, stopped at ``FLAML_LIMIT`` times the budget: its final refit
    has no time limit by default (``retrain_full=True``), and a multiclass CatBoost refit was
    seen still running after 40 minutes of a 60 s budget."""
    context = multiprocessing.get_context("spawn")  # a forked LightGBM can hang on OpenMP
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_flaml_child, args=(case.name, train, test, budget, seed, sender), daemon=True
    )
    process.start()
    limit = budget * FLAML_LIMIT + 60  # + the child's start-up and imports
    try:
        if receiver.poll(limit):
            return receiver.recv()
        return Outcome(
            error=f"still fitting after {limit:.0f} s (over {FLAML_LIMIT}x the budget); stopped"
        )
    finally:
        process.kill()
        process.join()


def _flaml_child(
    name: str, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int, sender: Any
) -> None:
    logging.getLogger("flaml").setLevel(logging.ERROR)
    try:
        sender.send(_run_flaml(CASES[name], train, test, budget, seed))
    except Exception as e:
        sender.send(Outcome(error=f"{type(e).__name__}: {e}"[:200]))


def _run_flaml(
    case: Case, train: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int
) -> Outcome:
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case.task == "regression":
            pred = np.asarray(automl.predict(X_test), dtype=float)
            classes: list = []
            call = automl.predict
        else:
            pred = np.asarray(automl.predict_proba(X_test))
            classes = list(automl.classes_)
            call = automl.predict_proba
        latency = _latency_ms(call, X_test.iloc[[0]])
    score = _score(case, classes, test[case.target], pred)
    return Outcome(score, wall, latency, str(automl.best_estimator))


def run_autogluon(
    case: Case,
    train: pd.DataFrame,
    test: pd.DataFrame,
    budget: float,
    seed: int,
    preset: tuple[str, bool],
    python: str,
) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="forgeml-automl-") as tmp:
        paths = {part: Path(tmp) / f"{part}.parquet" for part in ("train", "test")}
        train.to_parquet(paths["train"], index=False)
        test.to_parquet(paths["test"], index=False)
        command = [
            python,
            str(RUNNER),
            *("--train", str(paths["train"]), "--test", str(paths["test"])),
            *("--target", case.target, "--task", case.task, "--preset", preset[0]),
            *("--budget", str(budget), "--seed", str(seed)),
            *(["--no-dystack"] if preset[1] else []),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=budget * 10 + 600, cwd=tmp
        )
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.strip().splitlines() if line.strip()]
        # the exception's message, which may span lines, from its "...Error: " line on
        first = max((i for i, line in enumerate(lines) if "Error: " in line), default=-1)
        message = " ".join(lines[first:]) if first >= 0 else (lines or ["failed"])[-1]
        return Outcome(error=message[:200])
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    pred = np.asarray(answer["pred"], dtype=float)
    score = _score(case, answer["classes"], test[case.target], pred)
    return Outcome(score, answer["wall"], answer["latency_ms"], answer["model"])


def _ranks(scores: dict[str, float], higher: bool) -> dict[str, float]:
    """1 = best; tied systems share the mean of their places."""
    ordered = sorted(scores, key=lambda s: -scores[s] if higher else scores[s])
    ranks: dict[str, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and scores[ordered[j + 1]] == scores[ordered[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[ordered[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _gap(task: str, score: float, best: float) -> float:
    """How far behind the best: ROC AUC points, or RMSE relative to the best (0 = the best)."""
    return best - score if task != "regression" else score / best - 1


def report(saved: dict[str, Any], console: Console, plot: Path) -> bool:
    """Print the table, mean ranks and targets; plot the gaps to ``plot``. True when every
    target is met."""
    budget, systems = saved["budget"], saved["systems"]
    table = Table(
        title=f"AutoML, {budget:g} s budget, seed {saved['seed']}, the same 80/20 splits for "
        f"every system{_splits_said(saved)} (main at {saved['commit']}; {saved['note']})",
        header_style="bold",
    )
    for column in ("table", "metric", "splits", "system", "score", "gap to best", "rank",
                   "wall s", "1-row ms", "model"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("table", "model") else "right")
    per_split: list[str] = []
    for row in saved["tables"]:
        standing = _standing(row, systems)
        if standing is None:
            continue
        outcomes, _, best, table_ranks = standing
        task = row["task"]
        higher = task != "regression"
        n_splits = f"{len(row.get('split_seeds', [0]))}"
        for s, o in outcomes.items():
            if o.score is None:
                table.add_row(row["table"], "", n_splits, s, "failed", "", "", "", "", o.error)
                continue
            if o.split_scores:
                shown_scores = " / ".join(f"{x:.5g}" for x in o.split_scores)
                per_split.append(f"{row['table']} {s}: {shown_scores}")
            gap = _gap(task, o.score, best)
            table.add_row(
                row["table"],
                "ROC AUC" if task == "binary" else ("macro OvR AUC" if higher else "RMSE"),
                n_splits,
                s,
                f"{o.score:.5g}",
                f"{gap:.4f}" if higher else f"{gap:+.2%}",
                f"{table_ranks[s]:g}",
                f"{o.wall:.1f}" if o.wall is not None else "",
                f"{o.latency_ms:.2f}" if o.latency_ms is not None else "",
                o.model,
            )
        table.add_section()
    console.print(table)
    if per_split:
        console.print(
            "scores on each split of the small tables (their mean is the score above; latency is "
            "the median over the splits, the model the first split's):\n  "
            + "\n  ".join(per_split),
            markup=False,
        )
    reused = sorted(
        {
            f"{s} from {row['systems'][s]['reused']}"
            for row in saved["tables"]
            for s in systems
            if row["systems"].get(s, {}).get("reused")
        }
    )
    if reused:
        console.print(
            "measured by an earlier run (same machine, budget, seed and splits): "
            + "; ".join(reused)
        )
    named = [s for s in systems if s in SYSTEMS]
    checks = _targets(saved["tables"], named, console, "")
    if len(named) < len(systems) and "forgeml" in named:
        # systems beyond the four the targets name, against all of them: printed, not judged
        extra = ", ".join(s for s in systems if s not in named)
        for what, ok in _targets(saved["tables"], systems, console, f"with {extra} as well: "):
            console.print(f"  (with {extra}: {what}: {'yes' if ok else 'no'})", markup=False)
    for what, ok in checks:
        console.print(f"target: {what}: {'met' if ok else 'unmet'}", markup=False)
    _plot(saved, plot)
    console.print(f"plot: {plot}")
    return all(ok for _, ok in checks)


def _standing(
    row: dict[str, Any], systems: list[str]
) -> tuple[dict[str, Outcome], dict[str, float], float, dict[str, float]] | None:
    """A saved table's outcomes of ``systems``, their scores, the best of them and their ranks
    (``None`` when none of them scored)."""
    higher = row["task"] != "regression"
    outcomes = {s: Outcome(**row["systems"][s]) for s in systems if s in row["systems"]}
    scored = {s: o.score for s, o in outcomes.items() if o.score is not None}
    if not scored:
        return None
    best = max(scored.values()) if higher else min(scored.values())
    return outcomes, scored, best, _ranks(scored, higher)


def _targets(
    rows: list[dict[str, Any]], systems: list[str], console: Console, label: str
) -> list[tuple[str, bool]]:
    """Issue 19's targets for forgeml among ``systems`` (each table's best, ranks and latency
    among them only); prints their mean ranks, after ``label``."""
    ranks: dict[str, list[float]] = {s: [] for s in systems}
    worst_gap: list[tuple[str, str, bool]] = []
    fastest: list[tuple[str, bool]] = []
    for row in rows:
        standing = _standing(row, systems)
        if standing is None:
            continue
        outcomes, scored, best, table_ranks = standing
        task = row["task"]
        higher = task != "regression"
        # systems that failed or were not run share the last places of the table
        last = (len(scored) + 1 + len(systems)) / 2
        for s in systems:
            ranks[s].append(table_ranks.get(s, last))
        if "forgeml" in scored:
            gap = _gap(task, scored["forgeml"], best)
            slack = AUC_SLACK if higher else RMSE_SLACK
            shown = f"{gap:.4f} AUC" if higher else f"{gap:+.1%} RMSE"
            worst_gap.append((row["table"], shown, gap <= slack))
            others = [o.latency_ms for s, o in outcomes.items() if s != "forgeml" and o.latency_ms]
            fm_latency = outcomes["forgeml"].latency_ms or float("inf")
            fastest.append((row["table"], all(fm_latency < x for x in others)))
    means = {s: float(np.mean(r)) for s, r in ranks.items() if r}
    console.print(
        f"{label}mean rank (1 = best; failed fits share the last places): "
        + ", ".join(f"{s} {m:.2f}" for s, m in sorted(means.items(), key=lambda kv: kv[1])),
        markup=False,
    )
    checks: list[tuple[str, bool]] = []
    if "forgeml" in means and len(means) > 1:
        first = all(means["forgeml"] <= m for s, m in means.items() if s != "forgeml")
        checks.append((f"forgeml's mean rank first of the {len(means)}", first))
    if worst_gap:
        behind = [f"{t} {shown}" for t, shown, ok in worst_gap if not ok]
        checks.append(
            (
                f"no table worse than the best by more than {AUC_SLACK} ROC AUC or "
                f"{RMSE_SLACK:.1%} RMSE" + (f" (behind: {', '.join(behind)})" if behind else ""),
                not behind,
            )
        )
    if fastest:
        slower = [t for t, ok in fastest if not ok]
        checks.append(
            (
                "forgeml's one-row latency the lowest on every table"
                + (f" (not on: {', '.join(slower)})" if slower else ""),
                not slower,
            )
        )
    return checks


def _splits_said(saved: dict[str, Any]) -> str:
    """How the small tables were scored, for titles (nothing for a run of one split each)."""
    k = saved.get("small_splits", 1)
    if k <= 1:
        return ""
    first = saved["seed"]
    return (
        f"; tables of at most {SMALL_ROWS:,} rows: the mean of {k} splits "
        f"(seeds {first}-{first + k - 1})"
    )


def _plot(saved: dict[str, Any], path: Path) -> None:
    """Each system's gap to the best per table: ROC AUC points (classification) and RMSE % over
    the best (regression), with the target's slack drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = saved["systems"]
    panels = [
        ("classification: ROC AUC behind the best", lambda t: t != "regression", 1.0, AUC_SLACK),
        ("regression: RMSE above the best (%)", lambda t: t == "regression", 100.0, RMSE_SLACK),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), width_ratios=[2, 1])
    for ax, (title, keep, scale, slack) in zip(axes, panels, strict=True):
        rows = [r for r in saved["tables"] if keep(r["task"])]
        width = 0.8 / max(1, len(systems))
        for i, s in enumerate(systems):
            gaps = []
            for r in rows:
                scores = [o["score"] for o in r["systems"].values() if o["score"] is not None]
                o = r["systems"].get(s, {})
                if not scores or o.get("score") is None:
                    gaps.append(np.nan)
                    continue
                best = max(scores) if r["task"] != "regression" else min(scores)
                gaps.append(_gap(r["task"], o["score"], best) * scale)
            bars = ax.bar(np.arange(len(rows)) + i * width, gaps, width, label=s)
            for x, gap in zip(np.arange(len(rows)) + i * width, gaps, strict=True):
                if np.isnan(gap):  # failed or not run
                    ax.text(x, 0, "x", ha="center", va="bottom", color=bars.patches[0].get_fc())
        ax.axhline(slack * scale, color="grey", linestyle="--", linewidth=1, label="target slack")
        ax.set_xticks(np.arange(len(rows)) + width * (len(systems) - 1) / 2)
        ax.set_xticklabels([r["table"] for r in rows], rotation=20, ha="right")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Gap to the best system per table, {saved['budget']:g} s budget, seed {saved['seed']}"
        f"{_splits_said(saved)}\n"
        f"(0 = best, x = failed; main at {saved['commit']}, {saved['note']})",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


def _reusable(
    path: Path, budget: float, seed: int
) -> dict[tuple[str, str, int], tuple[list[int], Outcome]]:
    """The competitors' outcomes of a saved run, by table, system and split seed, with the
    split's sizes (a small table's splits one by one).

    Their fits do not depend on forgeml's code, so a run measuring a newer forgeml can take
    them from a run on the same machine with the same budget, seed and split; each reused
    outcome says which run measured it, and the report names them."""
    if not path.is_file():
        sys.exit(f"--reuse: {path} does not exist; expected a JSON written by --out")
    saved = json.loads(path.read_text())
    if saved.get("budget") != budget or saved.get("seed") != seed:
        sys.exit(
            f"--reuse: {path} was measured with budget {saved.get('budget')} and seed "
            f"{saved.get('seed')}; expected budget {budget:g} and seed {seed}"
        )
    source = f"{path.name} ({saved.get('note', '')})"
    out: dict[tuple[str, str, int], tuple[list[int], Outcome]] = {}
    for row in saved["tables"]:
        seeds = row.get("split_seeds", [seed])
        by_split = row.get("split_outcomes") or {s: [o] for s, o in row["systems"].items()}
        for system, outcomes in by_split.items():
            if system != "FLAML" and system not in PRESETS:
                continue
            for split_seed, outcome in zip(seeds, outcomes, strict=True):
                fields = {**outcome, "reused": outcome.get("reused") or source}
                # (the splits of one table have the same sizes)
                out[row["table"], system, split_seed] = (row["rows"], Outcome(**fields))
    return out


def _measure(
    system: str, case: Case, train: pd.DataFrame, test: pd.DataFrame, args: Any, seed: int
) -> Outcome:
    """``system`` fitted on ``train`` (the split drawn with ``seed``) and scored on ``test``;
    a failed fit is an outcome with its error, so it does not lose the other measurements."""
    try:
        if system == "forgeml":
            return run_forgeml(case, train, test, args.budget, seed)
        if system in FORGEML_VARIANTS:
            return run_forgeml(case, train, test, args.budget, seed, **FORGEML_VARIANTS[system])
        if system == "FLAML":
            return run_flaml(case, train, test, args.budget, seed)
        return run_autogluon(
            case, train, test, args.budget, seed, PRESETS[system], args.autogluon_python
        )
    except Exception as e:
        return Outcome(error=f"{type(e).__name__}: {e}"[:200])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per system and table")
    parser.add_argument("--datasets", default=",".join(DEFAULT), help="comma-separated names")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--small-splits",
        type=int,
        default=5,
        help=f"80/20 splits (seeds --seed, --seed+1, ...) of each table of at most {SMALL_ROWS:,} "
        "rows, every system scored on each; the table's score is their mean (1: one split)",
    )
    parser.add_argument(
        "--autogluon-python", help="AutoGluon's interpreter (needed for AG medium and AG best)"
    )
    parser.add_argument("--note", default="loaded machine", help="printed with the results")
    parser.add_argument(
        "--commit", default=None, help="the forgeml commit measured (default: git's HEAD)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "automl.json")
    parser.add_argument("--report-only", action="store_true", help="print and plot --out again")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a saved JSON whose FLAML and AutoGluon outcomes are taken rather than measured again "
        "(same budget, seed and split; forgeml's systems are always measured)",
    )
    args = parser.parse_args()
    logging.getLogger("flaml").setLevel(logging.ERROR)
    console = Console(width=170)
    if args.report_only:
        met = report(json.loads(args.out.read_text()), console, args.out.with_suffix(".png"))
        sys.exit(0 if met else 1)
    systems = [s.strip() for s in args.systems.split(",")]
    unknown = [
        s for s in systems if s not in SYSTEMS and s not in PRESETS and s not in FORGEML_VARIANTS
    ]
    if unknown:
        extra = [p for p in PRESETS if p not in SYSTEMS]
        known = ", ".join([*SYSTEMS, *extra, *FORGEML_VARIANTS])
        sys.exit(f"--systems: unknown {', '.join(unknown)}; expected some of {known}")
    if any(s in PRESETS for s in systems) and not args.autogluon_python:
        sys.exit("--autogluon-python is needed for AutoGluon's systems (see the docstring)")
    if not DATASETS.is_dir():
        sys.exit(f"The shared datasets folder {DATASETS} is absent")
    reusable = _reusable(args.reuse, args.budget, args.seed) if args.reuse else {}
    saved: dict[str, Any] = {
        "budget": args.budget,
        "seed": args.seed,
        "small_splits": args.small_splits,
        "systems": systems,
        "commit": args.commit or _commit(),
        "note": args.note,
        "tables": [],
    }
    for name in args.datasets.split(","):
        case = CASES[name]
        frame = case.load()
        seeds = split_seeds(len(frame), args.seed, args.small_splits)
        splits = [_split(frame, case, seed) for seed in seeds]
        outcomes: dict[str, Outcome] = {}
        per_split: dict[str, list[Outcome]] = {}
        for system in systems:
            per_split[system] = []
            for seed, (train, test) in zip(seeds, splits, strict=True):
                known = reusable.get((name, system, seed))
                if known is not None and known[0] == [len(train), len(test)]:
                    outcome = known[1]
                else:
                    outcome = _measure(system, case, train, test, args, seed)
                per_split[system].append(outcome)
                where = f" (split seed {seed})" if len(seeds) > 1 else ""
                console.print(f"{name} {system}{where}: {outcome}", markup=False)
            outcomes[system] = combine(per_split[system])
        row: dict[str, Any] = {
            "table": name,
            "task": case.task,
            "rows": [len(splits[0][0]), len(splits[0][1])],
            "split_seeds": seeds,
            "systems": {s: asdict(o) for s, o in outcomes.items()},
        }
        if len(seeds) > 1:
            row["split_outcomes"] = {s: [asdict(o) for o in os] for s, os in per_split.items()}
        saved["tables"].append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(saved, indent=1))
    report(saved, console, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
