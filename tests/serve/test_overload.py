"""A flood past a one-worker server's queue: 503 with Retry-After, nothing else, memory bounded,
every answered prediction in the log."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from .conftest import records, serve_process

CLIENTS = 32
REQUESTS_PER_CLIENT = 15
ROWS = 50
# The server's resident memory may grow by at most this much during the flood: the queue holds
# at most --max-queue requests per version and a refused request is answered before its rows
# are kept anywhere.
RSS_GROWTH_BOUND_MB = 60.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc")


def test_a_flood_gets_503_with_retry_after_bounded_memory_and_a_complete_log(serve_ws, adult):
    rows = records(adult, ROWS, start=1000)
    args = ("adult-lgbm@2", "--no-access-log", "--max-queue", "2", "--max-batch-rows", "50")
    with serve_process(serve_ws, *args) as (url, process):
        predict = f"{url}/v1/models/adult-lgbm/predict"
        with httpx.Client(timeout=60) as client:  # warm up: code paths, caches, the allocator
            for _ in range(40):
                assert client.post(predict, json={"records": rows}).status_code == 200
        before = _rss_mb(process.pid)
        lock = threading.Lock()
        answered: list[str] = []
        refused: list[httpx.Response] = []
        others: list[httpx.Response] = []

        def flood(i: int) -> None:
            with httpx.Client(timeout=60) as client:
                for _ in range(REQUESTS_PER_CLIENT):
                    r = client.post(predict, json={"records": rows})
                    with lock:
                        if r.status_code == 200:
                            answered.append(r.json()["request_id"])
                        elif r.status_code == 503:
                            refused.append(r)
                        else:
                            others.append(r)

        with cf.ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(flood, range(CLIENTS)))
        after = _rss_mb(process.pid)
        process.send_signal(signal.SIGTERM)  # writes the prediction log, then exits
        assert process.wait(timeout=120) == 0, process.stderr.read().decode()[-2000:]

    assert not others, [(r.status_code, r.text[:200]) for r in others[:5]]
    assert refused, "the flood never went past the queue"
    assert answered
    assert len(answered) + len(refused) == CLIENTS * REQUESTS_PER_CLIENT
    for r in refused:
        assert int(r.headers["retry-after"]) >= 1
        error = r.json()["error"]
        assert error["code"] == "overloaded" and "retry in" in error["message"]
    growth = after - before
    assert growth < RSS_GROWTH_BOUND_MB, f"RSS grew {growth:.1f} MB ({before:.0f} -> {after:.0f})"
    logged = serve_ws.predlog.predictions("adult-lgbm", version=2)
    missing = set(answered) - set(logged["request_id"])
    assert not missing, f"{len(missing)} of {len(answered)} answered predictions are not logged"
    print(  # shown with -s: what the flood measured
        f"flood: {len(answered)} answered, {len(refused)} refused with 503, "
        f"RSS {before:.0f} -> {after:.0f} MB"
    )


def test_a_bad_queue_option_exits_2_naming_it(serve_ws) -> None:
    for option, value in (("--max-queue", "0"), ("--latency-budget-ms", "-5")):
        run = subprocess.run(
            [sys.executable, "-m", "forgeml", "serve", "adult-lgbm@2", option, value],
            env={**os.environ, "FORGEML_HOME": str(serve_ws.home)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and option in lines[0], run.stderr
