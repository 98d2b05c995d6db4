"""The prediction log loses no answered prediction, on real server processes: a server killed
with SIGKILL under load, and a SIGTERMed server whose PostgreSQL table is locked, leave what
they answered in the spool, and the next server writes it to the store."""

from __future__ import annotations

import concurrent.futures as cf
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from forgeml.config import Settings
from forgeml.serve._app import spool_folder
from forgeml.store import Workspace
from forgeml.testing import auth_headers

from .conftest import records, register_lgbm, serve_process

PATH = "/v1/models/m/predict"


@pytest.fixture
def served(store_url: str, tmp_path, adult: pd.DataFrame) -> Iterator[Workspace]:
    """A workspace on each back end with model ``m`` version 1 (LightGBM on adult rows)."""
    ws = Workspace(Settings(home=tmp_path / "ws", store_url=store_url))
    register_lgbm(ws, adult.iloc[:1500], "m", 10, 0)
    yield ws
    ws.close()


class Load:
    """Eight clients asking one row at a time; the request ids of the answers they received."""

    def __init__(self, url: str, rows: list[dict], headers: dict[str, str]) -> None:
        self.url, self.rows, self.headers = url, rows, headers
        self.answered: list[str] = []
        self.failed: list[int] = []
        self.stop = threading.Event()
        self.pool = cf.ThreadPoolExecutor(8)
        self.futures = [self.pool.submit(self._hammer, i) for i in range(8)]

    def _hammer(self, i: int) -> None:
        with httpx.Client(timeout=30, headers=self.headers) as client:
            while not self.stop.is_set():
                try:
                    r = client.post(f"{self.url}{PATH}", json={"records": [self.rows[i]]})
                    body = r.json() if r.status_code == 200 else None
                except (httpx.TransportError, ValueError):
                    return  # the server went away mid-answer: not an answer received
                if body is not None:
                    self.answered.append(body["request_id"])
                else:
                    self.failed.append(r.status_code)
                i = (i + 8) % len(self.rows)

    def wait_for(self, n: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while len(self.answered) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.answered) >= n, f"only {len(self.answered)} answers"

    def end(self) -> list[str]:
        self.stop.set()
        for f in self.futures:
            f.result()
        self.pool.shutdown()
        return list(self.answered)


def _all_logged(ws: Workspace, ids: list[str], seconds: float = 90) -> set[str]:
    """The answered ids still missing from the store once the restarted server replayed its
    spool (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        missing = set(ids) - ws.predlog.known_requests(ids)
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.2)


def test_kill_9_under_load_loses_no_answered_prediction(served, adult):
    ws = served
    rows = records(adult, 64, start=2000)
    with serve_process(ws, "m@1", "--no-access-log") as (url, process):
        load = Load(url, rows, auth_headers(ws))
        load.wait_for(300)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        answered = load.end()
    assert not load.failed
    spooled = list(spool_folder(ws).glob("*.jsonl"))
    assert spooled, "the killed server left its journal"
    with serve_process(ws, "m@1", "--no-access-log") as (url, process):
        missing = _all_logged(ws, answered)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not missing, f"{len(missing)} of {len(answered)} answered predictions are not logged"
    assert list(spool_folder(ws).glob("*")) == []  # replayed and removed


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_locked_table_at_sigterm_loses_no_answered_prediction(served, adult, store_url):
    ws = served
    rows = records(adult, 64, start=2100)
    engine = sa.create_engine(store_url)
    locker = engine.connect()
    try:
        with serve_process(ws, "m@1", "--no-access-log") as (url, process):
            load = Load(url, rows, auth_headers(ws))
            load.wait_for(100)
            # Another session holds the prediction table: the log's writes wait on it.
            locker.begin()
            locker.exec_driver_sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
            load.wait_for(len(load.answered) + 200)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
            seconds = time.monotonic() - started
            answered = load.end()
        assert code == 0
        assert seconds < 30, f"the server took {seconds:.1f} s to stop"  # Kubernetes' limit
        assert not load.failed
        assert list(spool_folder(ws).glob("*.jsonl"))
    finally:
        locker.rollback()
        locker.close()
        engine.dispose()
    with serve_process(ws, "m@1", "--no-access-log") as (url, process):
        missing = _all_logged(ws, answered)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not missing, f"{len(missing)} of {len(answered)} answered predictions are not logged"
    assert list(spool_folder(ws).glob("*")) == []
