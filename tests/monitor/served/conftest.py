"""A model registered on real data (UCI Adult) and a real server on 127.0.0.1 that logs its
predictions, for the served-model monitoring tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import forgeml as fm
from forgeml.store import PredictionRecord, Workspace
from forgeml.testing import ServerThread

TARGET = "income"
POSITIVE = ">50K"
MODEL = "adult"
REF = f"{MODEL}@production"


def adult_frame(path: Path, rows: int = 6000) -> pd.DataFrame:
    """UCI Adult rows with the text columns as pandas categoricals."""
    frame = pd.read_csv(path, nrows=rows).drop(columns=["split"])
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and column != TARGET:
            frame[column] = frame[column].astype("category")
    return frame


@pytest.fixture(scope="session")
def adult(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    return adult_frame(shared_dataset("adult.csv"))


def register_adult(ws: Workspace, frame: pd.DataFrame, *, with_holdout: bool = False) -> int:
    """A classifier on the first 3,000 rows as ``adult``, promoted to production: LightGBM
    registered with sample rows, or (``with_holdout``) a scikit-learn pipeline trained on the
    first 3,000 rows of a 4,000-row dataset version whose last 1,000 rows are recorded as the
    held-out test part, registered from its run as a training would."""
    train = frame.iloc[:3000]
    X, y = train.drop(columns=[TARGET]), train[TARGET]
    if with_holdout:
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OrdinalEncoder

        text = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        plain = frame.iloc[:4000].astype({c: object for c in text})
        data = fm.data.add(plain, name="adult-train", target=TARGET, workspace=ws)
        parts = np.where(np.arange(len(plain)) < 3000, 0, 2)
        fm.data.record_split(data, parts, name="holdout", strategy="given", seed=0, workspace=ws)
        encode = ColumnTransformer(
            [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), text)],
            remainder="passthrough",
        )
        model = Pipeline(
            [
                ("encode", encode),
                ("model", HistGradientBoostingClassifier(max_iter=60, random_state=0)),
            ]
        ).fit(plain.iloc[:3000].drop(columns=[TARGET]), plain[TARGET].iloc[:3000])
        with fm.start_run(workspace=ws) as run:
            run.log_params({"dataset": f"{data.name}@{data.version}", "split": "holdout"})
        version = fm.register(model, name=MODEL, run_id=run.run_id, workspace=ws).version
    else:
        model = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, random_state=0, verbose=-1)
        model.fit(X, y)
        version = fm.register(model, name=MODEL, sample=X, workspace=ws).version
    fm.registry.promote(MODEL, version, workspace=ws)
    return version


DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def log_day(ws: Workspace, rows: pd.DataFrame, day: int, *, failed: int = 0, per: int = 25) -> None:
    """Log ``rows`` (Adult inputs) as requests of ``per`` rows on day ``day`` with the served
    model's real predictions, plus ``failed`` failed requests."""
    model = fm.load(REF, workspace=ws)
    X = rows.drop(columns=[TARGET])
    records = []
    predicted, proba = model.predict_both(X) if len(X) else (np.empty(0), np.empty((0, 2)))
    for k, start in enumerate(range(0, len(X), per)):
        part = X.iloc[start : start + per].astype(object)
        part = part.where(part.notna(), None)
        records.append(
            PredictionRecord(
                request_id=str(uuid.uuid4()),
                model=MODEL,
                version=model.version,
                role="primary",
                time_ms=T0 + day * DAY + k * 1000,
                latency_ms=2.0 + k % 3,
                n_rows=len(part),
                inputs={c: part[c].tolist() for c in part.columns},
                outputs={
                    "predictions": predicted[start : start + per].tolist(),
                    "probabilities": proba[start : start + per].tolist(),
                    "classes": list(model.classes),
                },
                protocol="json",
            )
        )
    for k in range(failed):
        records.append(
            PredictionRecord(
                request_id=str(uuid.uuid4()),
                model=MODEL,
                version=model.version,
                role="primary",
                time_ms=T0 + day * DAY + 500 + k,
                latency_ms=1.0,
                n_rows=0,
                inputs={},
                outputs={},
                protocol="json",
                error="schema_mismatch",
            )
        )
    ws.predlog.write_predictions(records)


def shifted(rows: pd.DataFrame) -> pd.DataFrame:
    """Older people working longer hours: a shift of two inputs."""
    out = rows.copy()
    out["age"] = out["age"] + 25
    out["hours_per_week"] = np.minimum(out["hours_per_week"] + 30, 99)
    return out


def populate(ws: Workspace, adult: pd.DataFrame) -> Workspace:
    """Day 0 and 1 like training, days 2 and 3 shifted, day 4 only failed requests."""
    register_adult(ws, adult)
    log_day(ws, adult.iloc[3000:3400], 0)
    log_day(ws, adult.iloc[3400:3800], 1, failed=2)
    log_day(ws, shifted(adult.iloc[3800:4200]), 2)
    log_day(ws, shifted(adult.iloc[4200:4600]), 3)
    log_day(ws, adult.iloc[:0], 4, failed=5)
    return ws


@pytest.fixture
def logged(workspace: Workspace, adult: pd.DataFrame) -> Workspace:
    """``populate`` on each back end."""
    return populate(workspace, adult)


@pytest.fixture
def logged_sqlite(sqlite_workspace: Workspace, adult: pd.DataFrame) -> Workspace:
    """``populate`` in an embedded workspace (for the CLI tests)."""
    return populate(sqlite_workspace, adult)


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerThread]]:
    started: list[ServerThread] = []

    def start(ws: Workspace, **options: Any) -> ServerThread:
        server = ServerThread(ws, **options).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


def records(frame: pd.DataFrame, start: int, n: int) -> list[dict[str, Any]]:
    """``n`` rows as JSON records (missing values as null), without the target."""
    part = frame.drop(columns=[TARGET]).iloc[start : start + n].astype(object)
    part = part.where(part.notna(), None)
    return part.to_dict(orient="records")


def wait_logged(ws: Workspace, model: str, n: int, seconds: float = 60) -> None:
    """Wait until ``n`` records of ``model`` are in the log."""
    deadline = time.monotonic() + seconds
    while ws.predlog.count_predictions(model) < n:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{ws.predlog.count_predictions(model)} of {n} records logged in {seconds} s"
            )
        time.sleep(0.1)
