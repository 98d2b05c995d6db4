"""Registered models on real data and a real server on 127.0.0.1 for the serving tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import pandas as pd
import pytest

import forgeml as fm
from forgeml.config import Settings
from forgeml.store import Workspace
from forgeml.testing import ServerThread, admin_token, free_port

TARGET = "income"


def adult_frame(path: Path, rows: int = 4000) -> pd.DataFrame:
    """UCI Adult rows (real data) with the object columns as pandas categoricals."""
    frame = pd.read_csv(path, nrows=rows).drop(columns=["split"])
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and column != TARGET:
            frame[column] = frame[column].astype("category")
    return frame


@pytest.fixture(scope="session")
def adult(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    return adult_frame(shared_dataset("adult.csv"))


def register_lgbm(ws: Workspace, frame: pd.DataFrame, name: str, trees: int, seed: int) -> int:
    X, y = frame.drop(columns=[TARGET]), frame[TARGET]
    model = lgb.LGBMClassifier(n_estimators=trees, num_leaves=15, random_state=seed, verbose=-1)
    model.fit(X, y)
    return fm.register(model, name=name, sample=X, workspace=ws).version


@pytest.fixture(scope="session")
def serve_ws(tmp_path_factory: pytest.TempPathFactory, adult: pd.DataFrame) -> Iterator[Workspace]:
    """A workspace with ``adult-lgbm`` versions 1 to 3 (LightGBM, @production = 1) and
    ``adult-hgb`` version 1 (a scikit-learn pipeline)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    home = tmp_path_factory.mktemp("serve-ws")
    ws = Workspace(Settings(home=home))
    for trees, seed in ((30, 0), (60, 1), (20, 2)):
        register_lgbm(ws, adult, "adult-lgbm", trees, seed)
    fm.registry.promote("adult-lgbm", 1, workspace=ws)
    X, y = adult.drop(columns=[TARGET]), adult[TARGET]
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    pipeline = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        (
                            "cat",
                            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                            categorical,
                        )
                    ],
                    remainder="passthrough",
                ),
            ),
            ("model", HistGradientBoostingClassifier(max_iter=30, random_state=0)),
        ]
    ).fit(X, y)
    fm.register(pipeline, name="adult-hgb", sample=X, workspace=ws)
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def server(serve_ws: Workspace) -> Iterator[ServerThread]:
    """``adult-lgbm@production`` and ``adult-hgb@1`` behind one server."""
    with ServerThread(serve_ws, models=("adult-lgbm@production", "adult-hgb@1")) as s:
        yield s


def records(frame: pd.DataFrame, n: int, start: int = 0) -> list[dict[str, Any]]:
    """``n`` adult rows as JSON records (missing values as null), without the target."""
    part = frame.drop(columns=[TARGET]).iloc[start : start + n].astype(object)
    part = part.where(part.notna(), None)
    return part.to_dict(orient="records")


def _wait_ready(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


@contextlib.contextmanager
def serve_process(ws, *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``forgeml serve ARGS`` as a real process on a free port, ready; killed if still alive
    at the end. The process serves ``ws`` (its home, store and artifacts)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = ws.settings
    env = {**os.environ, "FORGEML_HOME": str(ws.home)}
    if settings.store_url:
        env["FORGEML_STORE_URL"] = settings.store_url
    if settings.artifacts:
        env["FORGEML_ARTIFACTS"] = str(settings.artifacts)
    token = admin_token(ws)
    if token:
        env["FORGEML_API_KEY"] = token
    process = subprocess.Popen(
        [sys.executable, "-m", "forgeml", "serve", *args, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
