"""A stored route a server cannot serve: it serves the reference it was started with and says so."""

from __future__ import annotations

import logging
import time

import httpx
import pandas as pd
import pytest

from forgeml import workflows
from forgeml.config import Settings
from forgeml.security import Principal
from forgeml.store import Workspace
from forgeml.workflows import Context

from .conftest import ServerThread, records, register_lgbm


@pytest.fixture
def route_ws(tmp_path, adult: pd.DataFrame):
    ws = Workspace(Settings(home=tmp_path / "ws"))
    for seed in (0, 1):
        register_lgbm(ws, adult.iloc[:1500], "m", 10, seed)
    ctx = Context(ws, Principal("ana"))
    workflows.promote(ctx, "m", 1, alias="production")
    yield ws, ctx
    ws.close()


def test_a_server_falls_back_to_its_reference_when_the_stored_route_is_unservable(
    route_ws, adult, caplog
):
    ws, ctx = route_ws
    # Valid when written; version 2 is retired afterwards (no alias holds it, so that is allowed).
    workflows.set_route(ctx, "m", {"split": {"production": 50, "2": 50}})
    workflows.change_status(ctx, "m", 2, "retired")
    row = records(adult, 1)[0]
    caplog.set_level(logging.INFO, logger="forgeml.serve")
    with ServerThread(ws, models=("m@production",), poll_interval=0.1) as s:
        ready = httpx.get(f"{s.url}/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready"
        message = body["fallback"]["m"]
        assert "route revision 1" in message and "m@2 is retired" in message
        assert "serving m@production" in message
        for i in range(10):
            answer = httpx.post(
                f"{s.url}/v1/models/m/predict", json={"records": [row], "key": f"k{i}"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == 1
        time.sleep(0.6)  # several polls: the problem is logged once, not on every poll
        said = [r for r in caplog.records if "cannot serve the stored route" in r.getMessage()]
        assert len(said) == 1
        # A servable route again: served, and the fallback is gone.
        workflows.set_route(ctx, "m", {"split": {"1": 1}})
        deadline = time.monotonic() + 10
        while "fallback" in httpx.get(f"{s.url}/health/ready").json():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert s.state.entries["m"].route.revision == 2
