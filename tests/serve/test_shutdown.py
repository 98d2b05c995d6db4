"""``forgeml serve`` as a real process: SIGTERM under load loses no prediction."""

from __future__ import annotations

import concurrent.futures as cf
import signal
import threading
import time

import httpx

from .conftest import records, serve_process


def test_sigterm_under_load_answers_in_flight_requests_and_loses_no_prediction(serve_ws, adult):
    with serve_process(serve_ws, "adult-lgbm@2", "--no-access-log") as (url, process):
        rows = records(adult, 40, start=300)
        answered: list[str] = []
        failures: list[int] = []
        stop = threading.Event()

        def hammer(i: int) -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    try:
                        r = client.post(
                            f"{url}/v1/models/adult-lgbm/predict",
                            json={"records": [rows[i % len(rows)], rows[(i + 1) % len(rows)]]},
                        )
                    except httpx.TransportError:  # the server stopped accepting
                        return
                    if r.status_code == 200:
                        answered.append(r.json()["request_id"])
                    else:
                        failures.append(r.status_code)

        with cf.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(hammer, i) for i in range(8)]
            # SIGTERM once the server is busy: after 60 answers, however slow the machine.
            deadline = time.monotonic() + 120
            while len(answered) < 60 and time.monotonic() < deadline and not failures:
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, process.stderr.read().decode()[-2000:]
            stop.set()
            for f in futures:
                f.result()
    assert not failures, failures
    assert len(answered) >= 60
    logged = serve_ws.predlog.predictions("adult-lgbm", version=2)
    logged_ids = set(logged["request_id"])
    missing = set(answered) - logged_ids
    assert not missing, f"{len(missing)} answered predictions are not in the log"
    assert (logged[logged["request_id"].isin(answered)].groupby("request_id").size() == 2).all()


def test_two_workers_serve_with_structured_access_logs_and_stop_cleanly(serve_ws, adult):
    import json

    with serve_process(serve_ws, "adult-hgb@1", "--workers", "2") as (url, process):
        ids = set()
        with httpx.Client(timeout=30) as client:
            for row in records(adult, 20, start=500):
                r = client.post(f"{url}/v1/models/adult-hgb/predict", json={"records": [row]})
                assert r.status_code == 200, r.text
                ids.add(r.json()["request_id"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        lines = process.stderr.read().decode().splitlines()
    access = [json.loads(line) for line in lines if line.startswith("{")]
    logged = {a["request_id"] for a in access if a.get("path") == "/v1/models/adult-hgb/predict"}
    assert ids <= logged
    entry = next(a for a in access if a.get("request_id") in ids)
    assert entry["status"] == 200 and entry["model"] == "adult-hgb" and entry["version"] == 1
    assert entry["method"] == "POST" and entry["ms"] > 0
    stored = set(serve_ws.predlog.predictions("adult-hgb")["request_id"])
    assert ids <= stored
