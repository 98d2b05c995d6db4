"""A real drifting stream for the loop tests: Electricity (row order is time, 48 rows a day)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from forgeml.loop import loop_principal
from forgeml.security import Principal, access_control_on, authenticate, create_key
from forgeml.store import Workspace
from forgeml.workflows import Context, add_data, promote, train_model

DAY = 48  # half-hour rows per day
WEEKS8 = 8 * 7 * DAY
TARGET = "class"


@pytest.fixture(scope="session")
def elec2(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """The whole Electricity stream, in time order."""
    return pd.read_csv(shared_dataset("electricity-elec2.csv"))


def admin(ws: Workspace) -> tuple[Principal, str | None]:
    """Who sets the tests up, and the API key the loop runs with: the local user and no key
    without access control; an admin key with it (always on PostgreSQL)."""
    if not access_control_on(ws):
        return Principal("tester"), None
    created = create_key(ws, role="admin", name="tester")
    return authenticate(ws, created.token), created.token


def loop_context(ws: Workspace, key: Principal) -> Context:
    """The loop's own context, acting with ``key``'s role when access control is on."""
    return Context(ws, loop_principal(key))


def train_champion(
    ws: Workspace, frame: pd.DataFrame, key: Principal, *, name: str = "elec2"
) -> int:
    """Train on the first eight weeks (lgbm, 3 trials), register as ``name``, promote it."""
    ctx = Context(ws, key)
    first = add_data(ctx, frame.iloc[:WEEKS8], name=name, target=TARGET).version
    outcome = train_model(
        ctx,
        first.ref,
        {
            "target": TARGET,
            "models": ["lgbm"],
            "max_trials": 3,
            "time_budget": 60,
            "n_jobs": 1,
            "drop": ["date"],
            "seed": 0,
        },
        model_name=name,
    )
    assert outcome.registered is not None
    promote(ctx, name, outcome.registered.version)
    return outcome.registered.version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(home: Path, ref: str) -> Iterator[str]:
    """``forgeml serve REF`` as a real process on 127.0.0.1 (routes polled every 0.2 s)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "forgeml", "--home", str(home), "serve", ref]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--poll-interval", "0.2", "--no-access-log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode()[-2000:])
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stderr.close()


def records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON records without the target."""
    return rows.drop(columns=[TARGET]).astype(object).to_dict(orient="records")


def wait_logged(ws: Workspace, model: str, at_least: int, seconds: float = 60) -> None:
    """Wait until the server's log writer stored ``at_least`` requests of ``model``."""
    deadline = time.monotonic() + seconds
    while ws.predlog.count_predictions(model) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {ws.predlog.count_predictions(model)} logged")
        time.sleep(0.1)


def env_with_home(home: Path) -> dict[str, str]:
    return {**os.environ, "FORGEML_HOME": str(home), "COLUMNS": "200"}


def log_stream(
    ws: Workspace,
    model: str,
    version: int,
    rows: pd.DataFrame,
    *,
    start_ms: int,
    step_ms: int = 1_800_000,
    labelled: bool = True,
) -> list[str]:
    """Log ``rows`` as one-row requests answered by ``model@version`` (its real predictions),
    one every ``step_ms`` from ``start_ms``, with their labels as feedback; returns the ids."""
    import uuid

    from forgeml.registry import load
    from forgeml.store import PredictionRecord

    loaded = load(f"{model}@{version}", workspace=ws)
    X = rows.drop(columns=[TARGET])
    predictions, proba = loaded.predict_both(X)
    classes = list(loaded.classes)
    ids, batch = [], []
    for i, record in enumerate(X.astype(object).to_dict(orient="records")):
        request_id = uuid.uuid4().hex
        ids.append(request_id)
        batch.append(
            PredictionRecord(
                request_id=request_id,
                model=model,
                version=version,
                role="primary",
                time_ms=start_ms + i * step_ms,
                latency_ms=1.0,
                n_rows=1,
                inputs={k: [v] for k, v in record.items()},
                outputs={
                    "predictions": [predictions[i]],
                    "probabilities": [list(map(float, proba[i]))],
                    "classes": classes,
                },
                protocol="json",
            )
        )
    ws.predlog.write_predictions(batch)
    if labelled:
        ws.predlog.add_feedback(
            {r: [y] for r, y in zip(ids, rows[TARGET], strict=True)}, user="tester"
        )
    return ids


def write_policy(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
