"""Build the zero-shot portfolio of starting configurations (``src/forgeml/train/portfolio.json``).

A meta-benchmark on real tables: the shared datasets, scikit-learn's bundled sets and tables
shipped inside registry packages (statsmodels, palmerpenguins, vega_datasets; install them for
this script only: ``pip install statsmodels palmerpenguins vega_datasets``). Every candidate
configuration (each family's starting point and a few configurations sampled from its search
space with ``--seed``) is cross-validated on every table of its task by the search's own trial
code (``_search.evaluate_config``: the same encoder, early stopping and deadlines). Then, per
task and size class, a greedy selection (TabRepo's zero-shot portfolio) picks the ordered
configurations that minimise the mean over tables of the best normalised rank reached so far.

The tables ``benchmarks/automl.py`` scores (adult, bank marketing, german credit, breast cancer,
wine, digits, california housing, bike sharing) and bank-full (the same bank's customers) are
held back: none of them is used here, so the benchmark measures the portfolio on tables it has
never seen.

Affordable on two loaded cores: tables of 5,000 rows and more are sampled to 5,000 rows
(seeded), each candidate has ``--small-seconds`` / ``--medium-seconds`` of wall time per table
(one that runs out counts as worst: it would not fit a short search either), three folds, one
thread. Tables marked ``extra`` are defined but run only when named with ``--tables``.
Every result is appended to ``--cache`` (JSON lines) as soon as it exists, so an interrupted run
continues where it stopped and a finished one rebuilds the portfolio without fitting anything.

    nice -n 5 python tools/build_portfolio.py [--seed 0] [--output src/forgeml/train/portfolio.json]
        [--cache tools/portfolio-scores.jsonl] [--tables a,b] [--only-select]
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml._json import dumps_text, loads
from forgeml.train._metrics import get_metric
from forgeml.train._portfolio import SIZE_CLASSES, size_class
from forgeml.train._search import Problem, TrialRecord, evaluate_config
from forgeml.train._task import infer_column_kinds
from forgeml.train._validation import make_folds
from forgeml.train._zoo import FAMILIES, available_families

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
HELD_BACK = (
    "adult",
    "bank-additional-full",
    "bank-full",
    "german-credit",
    "breast_cancer",
    "wine",
    "digits",
    "california-housing",
    "bike-sharing-hour",
)
# configurations sampled per family, besides its starting point (boosting gets more: its
# space matters most)
SAMPLED = {"lgbm": 3, "xgb": 2, "catboost": 2, "hgb": 1, "rf": 1, "et": 1, "linear": 0, "mlp": 0}
N_FOLDS = 3
# tables of 5,000 rows and more are sampled to this (the medium class's smallest size)
MEDIUM_ROWS = 5_000
PORTFOLIO_SIZE = 8
# a table's row count representing each size class in the starting points (rf/et/mlp's
# starting points depend on it)
_CLASS_ROWS = {"small": 2_000, "medium": 10_000}


@dataclass(frozen=True)
class MetaTable:
    name: str
    task: str
    target: str
    source: str
    load: Callable[[], pd.DataFrame]
    rows: int | None = None  # sample this many rows (seeded)
    extra: bool = False  # defined, run only when named with --tables (time)


def _shared(file: str, drop: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> Any:
    def load() -> pd.DataFrame:
        frame = pd.read_csv(DATASETS / file)
        if keep:
            frame = frame.loc[:, list(keep)]
        return frame.drop(columns=[c for c in drop if c in frame.columns])

    return load


def _statsmodels(name: str, fix: Callable[[pd.DataFrame], pd.DataFrame]) -> Any:
    def load() -> pd.DataFrame:
        import importlib

        return fix(importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data)

    return load


def _penguins(fix: Callable[[pd.DataFrame], pd.DataFrame]) -> Any:
    def load() -> pd.DataFrame:
        from palmerpenguins import load_penguins

        return fix(load_penguins())

    return load


def _vega(name: str, fix: Callable[[pd.DataFrame], pd.DataFrame]) -> Any:
    def load() -> pd.DataFrame:
        from vega_datasets import local_data

        return fix(getattr(local_data, name.replace("-", "_"))())

    return load


def _sklearn(loader: str) -> Any:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        return getattr(sklearn.datasets, loader)(as_frame=True).frame

    return load


def _cars(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=["Name"])
    frame["Year"] = pd.to_datetime(frame["Year"]).dt.year
    return frame


_COMPAS = (
    "sex",
    "age",
    "race",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
    "c_charge_desc",
    "days_b_screening_arrest",
    "two_year_recid",
)
_HOTEL_LEAKS = ("reservation_status", "reservation_status_date")


def _hotel(drop: tuple[str, ...]) -> Any:
    def load() -> pd.DataFrame:
        frame = pd.read_csv(DATASETS / "hotel-bookings.csv.gz")
        return frame.drop(columns=[*_HOTEL_LEAKS, *drop])

    return load


TABLES: tuple[MetaTable, ...] = (
    # -- binary
    MetaTable(
        "compas",
        "binary",
        "two_year_recid",
        "shared",
        _shared("compas-scores-two-years.csv", keep=_COMPAS),
        MEDIUM_ROWS,
    ),
    MetaTable(
        "electricity", "binary", "class", "shared", _shared("electricity-elec2.csv"), MEDIUM_ROWS
    ),
    MetaTable(
        "occupancy",
        "binary",
        "Occupancy",
        "shared",
        _shared("occupancy-detection.csv", ("date", "split")),
        MEDIUM_ROWS,
        extra=True,
    ),
    MetaTable("hotel-canceled", "binary", "is_canceled", "shared", _hotel(()), MEDIUM_ROWS),
    MetaTable(
        "fair-affair",
        "binary",
        "had_affair",
        "statsmodels",
        _statsmodels("fair", lambda f: f.assign(had_affair=(f.pop("affairs") > 0).astype(int))),
        extra=True,
    ),
    MetaTable(
        "randhie-visited",
        "binary",
        "visited",
        "statsmodels",
        _statsmodels("randhie", lambda f: f.assign(visited=(f.pop("mdvis") > 0).astype(int))),
        MEDIUM_ROWS,
        extra=True,
    ),
    MetaTable("anes96-vote", "binary", "vote", "statsmodels", _statsmodels("anes96", lambda f: f)),
    MetaTable("penguins-sex", "binary", "sex", "palmerpenguins", _penguins(lambda f: f)),
    MetaTable(
        "compas-1500",
        "binary",
        "two_year_recid",
        "shared",
        _shared("compas-scores-two-years.csv", keep=_COMPAS),
        1500,
    ),
    MetaTable(
        "electricity-1500", "binary", "class", "shared", _shared("electricity-elec2.csv"), 1500
    ),
    MetaTable("hotel-canceled-1500", "binary", "is_canceled", "shared", _hotel(()), 1500),
    # -- multiclass
    MetaTable(
        "penguins-species", "multiclass", "species", "palmerpenguins", _penguins(lambda f: f)
    ),
    MetaTable("iris", "multiclass", "target", "scikit-learn", _sklearn("load_iris")),
    MetaTable(
        "seattle-weather",
        "multiclass",
        "weather",
        "vega_datasets",
        _vega("seattle-weather", lambda f: f.drop(columns=["date"])),
    ),
    MetaTable("cars-origin", "multiclass", "Origin", "vega_datasets", _vega("cars", _cars)),
    MetaTable(
        "anes96-party", "multiclass", "PID", "statsmodels", _statsmodels("anes96", lambda f: f)
    ),
    MetaTable(
        "beijing-wind",
        "multiclass",
        "cbwd",
        "shared",
        _shared("beijing-pm25.csv", ("No",)),
        MEDIUM_ROWS,
    ),
    MetaTable(
        "hotel-segment",
        "multiclass",
        "market_segment",
        "shared",
        _hotel(("distribution_channel",)),
        MEDIUM_ROWS,
    ),
    MetaTable(
        "fair-rating",
        "multiclass",
        "rate_marriage",
        "statsmodels",
        _statsmodels("fair", lambda f: f),
        MEDIUM_ROWS,
    ),
    # -- regression
    MetaTable("diabetes", "regression", "target", "scikit-learn", _sklearn("load_diabetes")),
    MetaTable("cars-mpg", "regression", "Miles_per_Gallon", "vega_datasets", _vega("cars", _cars)),
    MetaTable(
        "penguins-mass", "regression", "body_mass_g", "palmerpenguins", _penguins(lambda f: f)
    ),
    MetaTable(
        "star98-above",
        "regression",
        "NABOVE",
        "statsmodels",
        _statsmodels("star98", lambda f: f.drop(columns=["NBELOW"])),
    ),
    MetaTable(
        "grunfeld-invest",
        "regression",
        "invest",
        "statsmodels",
        _statsmodels("grunfeld", lambda f: f),
    ),
    MetaTable(
        "beijing-pm25",
        "regression",
        "pm2.5",
        "shared",
        _shared("beijing-pm25.csv", ("No",)),
        MEDIUM_ROWS,
    ),
    MetaTable(
        "fair-affairs",
        "regression",
        "affairs",
        "statsmodels",
        _statsmodels("fair", lambda f: f),
        extra=True,
    ),
    MetaTable(
        "randhie-visits",
        "regression",
        "mdvis",
        "statsmodels",
        _statsmodels("randhie", lambda f: f),
        MEDIUM_ROWS,
        extra=True,
    ),
    MetaTable("hotel-adr", "regression", "adr", "shared", _hotel(("is_canceled",)), MEDIUM_ROWS),
    MetaTable(
        "electricity-price",
        "regression",
        "nswprice",
        "shared",
        _shared("electricity-elec2.csv", ("class",)),
        MEDIUM_ROWS,
    ),
)


# -- candidates ---------------------------------------------------------------------------------


def _config_id(family: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(
        dumps_text({"model": family, "params": params}, sort_keys=True).encode()
    ).hexdigest()[:12]


def candidates(task: str, size: str, seed: int) -> list[dict[str, Any]]:
    """Every family's starting point for ``size`` and ``SAMPLED`` random configurations of its
    space (Optuna's seeded random sampler), as ``{"id", "model", "params", "kind"}`` with
    parameters without the family prefix."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out: list[dict[str, Any]] = []
    for family in available_families():
        fam = FAMILIES[family]
        if task not in fam.tasks:
            continue
        configs = [("start", fam.start(task, False, _CLASS_ROWS[size]))]
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for _ in range(SAMPLED.get(family, 0)):
            configs.append(("sampled", fam.space(study.ask(), task, False)))
        for kind, prefixed in configs:
            params = {k[len(family) + 1 :]: v for k, v in prefixed.items()}
            out.append(
                {"id": _config_id(family, params), "model": family, "params": params, "kind": kind}
            )
    return out


# -- scoring ------------------------------------------------------------------------------------


def prepare(table: MetaTable, seed: int) -> tuple[pd.DataFrame, np.ndarray, dict[str, str], int]:
    frame = table.load()
    frame = frame.loc[frame[table.target].notna()].reset_index(drop=True)
    if table.rows is not None and len(frame) > table.rows:
        frame = frame.sample(n=table.rows, random_state=seed).reset_index(drop=True)
    if table.task != "regression":  # a class too rare for the folds' stratification goes
        counts = frame[table.target].astype(str).value_counts()
        rare = counts.index[counts < 2 * N_FOLDS]
        frame = frame.loc[~frame[table.target].astype(str).isin(rare)].reset_index(drop=True)
    y_raw = frame.pop(table.target)
    if table.task == "regression":
        y = y_raw.astype(float).to_numpy()
        n_classes = 0
    else:
        _, y = np.unique(y_raw.astype(str).to_numpy(), return_inverse=True)
        n_classes = int(y.max()) + 1
    kinds = infer_column_kinds(frame)
    return frame, y, kinds, n_classes


def make_problem(table: MetaTable, seed: int) -> Problem:
    X, y, kinds, n_classes = prepare(table, seed)
    classification = table.task != "regression"
    folds = make_folds(
        len(y), y if classification else None, n_folds=N_FOLDS, seed=seed, time_ordered=False
    )
    imbalanced = False
    if classification:
        shares = np.bincount(y) / len(y)
        imbalanced = bool(shares.min() < 0.5 / n_classes)
    return Problem(
        X=X,
        y=y,
        kinds=kinds,
        task=table.task,
        n_classes=n_classes,
        metric=get_metric(None, table.task),
        folds=folds,
        seed=seed,
        n_jobs=1,
        time_ordered=False,
        imbalanced=imbalanced,
    )


def score_candidate(problem: Problem, candidate: dict[str, Any], seconds: float) -> dict[str, Any]:
    family = candidate["model"]
    params = {f"{family}.{k}": v for k, v in candidate["params"].items()}
    record = TrialRecord(number=0, family=family, params=params)
    evaluate_config(problem, record, deadline=time.monotonic() + seconds, cost_aware=False)
    return {
        "state": record.state,
        "loss": record.loss,
        "score": record.score,
        "seconds": round(record.seconds, 3),
        "note": record.note,
    }


def read_cache(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = loads(line)
                done[(row["table"], row["candidate"])] = row
    return done


def run(tables: list[MetaTable], seed: int, cache: Path, seconds: dict[str, float]) -> None:
    done = read_cache(cache)
    # the small tables of every task first: a partial cache already covers every task
    tables = sorted(tables, key=lambda t: _size_of(t, seed) != "small")
    total = sum(len(candidates(t.task, _size_of(t, seed), seed)) for t in tables)
    count = 0
    started = time.monotonic()
    for table in tables:
        size = _size_of(table, seed)
        todo = [c for c in candidates(table.task, size, seed) if (table.name, c["id"]) not in done]
        count += len(candidates(table.task, size, seed)) - len(todo)
        if not todo:
            continue
        problem = make_problem(table, seed)
        for candidate in todo:
            result = score_candidate(problem, candidate, seconds[size])
            row = {"table": table.name, "candidate": candidate["id"], **result}
            with cache.open("a") as f:
                f.write(dumps_text(row) + "\n")
            count += 1
            print(
                f"[{count}/{total} {time.monotonic() - started:7.0f}s] {table.name} "
                f"({len(problem.y)} rows) {candidate['model']}/{candidate['kind']} "
                f"{result['state']} loss={result['loss']} {result['seconds']:.1f}s",
                flush=True,
            )


_ROWS: dict[str, int] = {}


def _size_of(table: MetaTable, seed: int) -> str:
    if table.name not in _ROWS:
        _ROWS[table.name] = len(prepare(table, seed)[1])
    return size_class(_ROWS[table.name])


# -- selection ----------------------------------------------------------------------------------


def normalized_ranks(losses: list[float | None]) -> np.ndarray:
    """Rank of each candidate on one table scaled to 0 (best) .. 1 (worst); a candidate that
    failed or ran out of time counts as worst."""
    from scipy.stats import rankdata

    values = np.array([np.inf if v is None else v for v in losses], dtype=float)
    ranks = rankdata(values, method="average")
    return (ranks - 1) / max(1, len(values) - 1)


def greedy(errors: np.ndarray, size: int) -> tuple[list[int], list[float]]:
    """TabRepo's zero-shot selection: repeatedly add the candidate that most lowers the mean
    over tables of the best (lowest) error among the chosen. Ties (every table already has its
    best once a few are chosen) go to the lower mean error, then to the earlier candidate."""
    chosen: list[int] = []
    reached: list[float] = []
    best = np.full(errors.shape[0], np.inf)
    own = errors.mean(axis=0)
    for _ in range(min(size, errors.shape[1])):
        keys = [
            (float(np.mean(np.minimum(best, errors[:, c]))), float(own[c]), c)
            for c in range(errors.shape[1])
            if c not in chosen
        ]
        value, _, pick = min(keys)
        chosen.append(pick)
        reached.append(round(value, 4))
        best = np.minimum(best, errors[:, pick])
    return chosen, reached


def select(tables: list[MetaTable], seed: int, cache: Path, command: str) -> dict[str, Any]:
    done = read_cache(cache)
    portfolios: dict[str, dict[str, Any]] = {}
    used: list[dict[str, Any]] = []
    for task in ("binary", "multiclass", "regression"):
        for size in _CLASS_ROWS:
            group = [t for t in tables if t.task == task and _size_of(t, seed) == size]
            cands = candidates(task, size, seed)
            group = [t for t in group if all((t.name, c["id"]) in done for c in cands)]
            if not group:
                continue
            errors = np.vstack(
                [normalized_ranks([done[(t.name, c["id"])]["loss"] for c in cands]) for t in group]
            )
            chosen, reached = greedy(errors, PORTFOLIO_SIZE)
            members = []
            for i, mean_best in zip(chosen, reached, strict=True):
                c = cands[i]
                secs = [done[(t.name, c["id"])]["seconds"] for t in group]
                members.append(
                    {
                        "model": c["model"],
                        "params": c["params"],
                        "kind": c["kind"],
                        "mean_rank": round(float(np.mean(errors[:, i])), 4),
                        "portfolio_mean_best_rank": mean_best,
                        "median_seconds": round(float(np.median(secs)), 2),
                    }
                )
            portfolios.setdefault(task, {})[size] = members
            for t in group:
                used.append(
                    {"name": t.name, "task": task, "rows": _ROWS[t.name], "source": t.source}
                )
    return {
        "format": 1,
        "size_classes": [{"name": n, "max_rows": m} for n, m in SIZE_CLASSES],
        "portfolios": portfolios,
        "provenance": {
            "built": datetime.now(UTC).strftime("%Y-%m-%d"),
            "command": command,
            "seed": seed,
            "folds": N_FOLDS,
            "metric": {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"},
            "candidates": {
                t: {s: len(candidates(t, s, seed)) for s in _CLASS_ROWS}
                for t in ("binary", "multiclass", "regression")
            },
            "selection": "greedy over normalised ranks (0 best, 1 worst; failed or out of "
            "time counts as worst), minimising the mean over tables of the best rank reached",
            "tables": used,
            "held_back": list(HELD_BACK),
            "large": "no table above 50,000 rows was affordable: the large class uses the "
            "medium portfolio",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "tools" / "portfolio-scores.jsonl", help="results"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "src" / "forgeml" / "train" / "portfolio.json"
    )
    parser.add_argument("--tables", default="", help="comma-separated names (default: all)")
    parser.add_argument("--small-seconds", type=float, default=20.0, help="per candidate")
    parser.add_argument("--medium-seconds", type=float, default=40.0, help="per candidate")
    parser.add_argument("--only-select", action="store_true", help="build from the cache only")
    args = parser.parse_args()
    names = [n for n in args.tables.split(",") if n]
    tables = [t for t in TABLES if t.name in names or (not names and not t.extra)]
    seconds = {"small": args.small_seconds, "medium": args.medium_seconds}
    if not args.only_select:
        run(tables, args.seed, args.cache, seconds)
    # the command that measures and selects again (the cache makes it resume, not refit)
    options = ["--seed", str(args.seed), "--small-seconds", f"{args.small_seconds:g}"]
    options += ["--medium-seconds", f"{args.medium_seconds:g}"]
    if names:
        options += ["--tables", ",".join(names)]
    command = "python tools/build_portfolio.py " + shlex.join(options)
    document = select(tables, args.seed, args.cache, command)
    document["provenance"]["seconds_per_candidate"] = seconds
    args.output.write_text(dumps_text(document, indent=True) + "\n")
    for task, by_size in document["portfolios"].items():
        for size, members in by_size.items():
            shown = ", ".join(f"{m['model']}/{m['kind']}" for m in members)
            print(f"{task} {size}: {shown}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
