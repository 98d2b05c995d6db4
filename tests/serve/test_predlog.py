"""The prediction log: nothing lost, nothing duplicated, bounded, never blocking in drop mode."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from forgeml.errors import InputError, StoreError
from forgeml.serve._predlog import PredictionLog
from forgeml.store import Database, PredictionLogStore, PredictionRecord

T0 = 1_780_000_000_000
OUTPUTS = {"predictions": ["<=50K"], "probabilities": [[0.75, 0.25]], "classes": ["<=50K", ">50K"]}


@cache
def adult_inputs() -> tuple[dict[str, list[Any]], ...]:
    """Every adult row as one request's inputs (column -> one value)."""
    with resources.as_file(resources.files("forgeml.examples") / "adult.csv.gz") as path:
        frame = pd.read_csv(path).drop(columns=["income", "split"])
    return tuple({c: [v] for c, v in row.items()} for row in frame.to_dict("records"))


def record(i: int, *, request_id: str | None = None) -> PredictionRecord:
    rows = adult_inputs()
    return PredictionRecord(
        request_id=request_id or str(uuid.uuid4()),
        model="adult",
        version=1,
        role="primary",
        time_ms=T0 + i,
        latency_ms=0.8,
        n_rows=1,
        inputs=rows[i % len(rows)],
        outputs=OUTPUTS,
        protocol="json",
    )


@pytest.fixture
def store(store_url: str) -> Iterator[PredictionLogStore]:
    db = Database(store_url)
    yield PredictionLogStore(db)
    db.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[PredictionLogStore]:
    db = Database(f"sqlite:///{tmp_path / 'forgeml.db'}")
    yield PredictionLogStore(db)
    db.close()


class SlowStore:
    """A store whose writes take ``delay`` seconds longer."""

    def __init__(self, store: PredictionLogStore, delay: float) -> None:
        self.store, self.delay = store, delay

    def write_predictions(self, records: Sequence[PredictionRecord], **kwargs: Any) -> int:
        time.sleep(self.delay)
        return self.store.write_predictions(records, **kwargs)


class FailingStore:
    """A store whose first ``failures`` writes raise, after writing nothing."""

    def __init__(self, store: PredictionLogStore, failures: int) -> None:
        self.store, self.failures, self.calls = store, failures, 0

    def write_predictions(self, records: Sequence[PredictionRecord], **kwargs: Any) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreError("The metadata store failed (test): connection refused")
        return self.store.write_predictions(records, **kwargs)


def submit_from_threads(log: PredictionLog, n_threads: int, per_thread: int) -> list[int]:
    """Submit ``n_threads * per_thread`` records at once; the count each thread had accepted."""
    adult_inputs()  # loaded once, before the threads race for it
    accepted = [0] * n_threads
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            accepted[t] += log.submit(record(t * per_thread + i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted


def stored_ids(store: PredictionLogStore) -> tuple[int, int]:
    """(rows, distinct request ids) in the predictions table."""
    with store._db.transaction(write=False) as conn:
        row = conn.exec_driver_sql(
            "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM predictions"
        ).one()
    return int(row[0]), int(row[1])


def test_records_from_eight_threads_are_written_exactly_once(store: PredictionLogStore):
    log = PredictionLog(store).start()
    accepted = submit_from_threads(log, 8, 6_250)
    log.close()
    assert sum(accepted) == 50_000
    assert stored_ids(store) == (50_000, 50_000)
    assert (log.submitted, log.written, log.dropped, log.depth) == (50_000, 50_000, 0, 0)
    assert log.write_errors == 0


def test_drop_mode_drops_when_full_and_the_counters_add_up(sqlite_store: PredictionLogStore):
    log = PredictionLog(SlowStore(sqlite_store, 0.05), capacity=50, batch_size=10, interval=0)
    log.start()
    accepted = submit_from_threads(log, 4, 500)
    log.close()
    # submitters did not wait for the store: what did not fit was dropped (how long the
    # submits take is checked in benchmarks/budgets.py)
    assert log.dropped > 0
    assert log.submitted == 2_000 == log.written + log.dropped
    assert sum(accepted) == log.written
    assert stored_ids(sqlite_store) == (log.written, log.written)


def test_block_mode_waits_for_room_and_loses_nothing(sqlite_store: PredictionLogStore):
    log = PredictionLog(
        SlowStore(sqlite_store, 0.01), capacity=20, batch_size=10, when_full="block"
    ).start()
    depths: list[int] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            depths.append(log.depth)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    accepted = submit_from_threads(log, 4, 250)
    log.close()
    watching.set()
    watcher.join()
    assert sum(accepted) == 1_000
    assert (log.written, log.dropped) == (1_000, 0)
    assert stored_ids(sqlite_store) == (1_000, 1_000)
    assert max(depths) <= 20


def test_a_failing_store_is_retried_until_everything_is_written(store: PredictionLogStore):
    failing = FailingStore(store, failures=3)
    log = PredictionLog(failing, batch_size=100, interval=0.01).start()
    for i in range(1_000):
        assert log.submit(record(i))
    assert log.flush(timeout=30)
    log.close()
    assert log.write_errors == 3
    assert (log.written, log.dropped) == (1_000, 0)
    assert stored_ids(store) == (1_000, 1_000)


def test_flush_waits_for_earlier_records(sqlite_store: PredictionLogStore):
    log = PredictionLog(sqlite_store, interval=10.0).start()  # flush must not wait 10 s
    for i in range(300):
        log.submit(record(i))
    assert log.flush(timeout=5)  # not the 10 s interval (benchmarks/budgets.py times it)
    assert sqlite_store.count_predictions() == 300
    assert log.depth == 0
    assert log.flush() is True  # nothing pending
    log.close()


def test_flush_times_out_while_the_store_fails(sqlite_store: PredictionLogStore):
    log = PredictionLog(FailingStore(sqlite_store, failures=10**9), interval=0).start()
    log.submit(record(0))
    assert log.flush(timeout=0.3) is False
    log.close(timeout=0.3)
    assert log.write_errors >= 1
    # the batch being retried is given up once the attempt under way ends
    deadline = time.monotonic() + 10
    while log.depth and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (log.submitted, log.written, log.dropped, log.depth) == (1, 0, 1, 0)


def test_invalid_records_are_rejected_not_retried(sqlite_store: PredictionLogStore):
    log = PredictionLog(sqlite_store).start()
    log.submit(record(0))
    log.submit(record(1, request_id="r" * 37))  # longer than a request id may be
    log.submit(record(2))
    log.close()
    assert (log.written, log.rejected, log.write_errors) == (2, 1, 0)
    assert log.submitted == log.written + log.rejected + log.dropped


def test_records_submitted_before_start_or_after_close(sqlite_store: PredictionLogStore):
    log = PredictionLog(sqlite_store)
    assert log.submit(record(0))
    assert log.flush(timeout=0.1) is False  # no writer yet
    log.close()  # starts a writer for what is left
    assert sqlite_store.count_predictions() == 1
    assert log.submit(record(1)) is False
    assert (log.submitted, log.written, log.dropped) == (2, 1, 1)
    log.close()  # twice is fine


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"interval": -1}, "interval"),
        ({"when_full": "wait"}, "when_full"),
    ],
)
def test_parameters_are_checked(
    sqlite_store: PredictionLogStore, kwargs: dict[str, Any], match: str
):
    with pytest.raises(InputError, match=match):
        PredictionLog(sqlite_store, **kwargs)


# -- the spool: what the store cannot take is kept on disk and written at the next start ----


def spool_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_records_the_store_cannot_take_are_spooled_and_replayed_at_the_next_start(
    store: PredictionLogStore, tmp_path: Path
):
    folder = tmp_path / "spool"
    log = PredictionLog(FailingStore(store, failures=10**9), spool=folder, interval=0).start()
    for i in range(500):
        assert log.submit(record(i))
    log.close(timeout=0.5)
    assert (log.submitted, log.written, log.dropped, log.spooled) == (500, 0, 0, 500)
    assert any(name.endswith(".jsonl") for name in spool_files(folder))
    assert stored_ids(store) == (0, 0)

    again = PredictionLog(store, spool=folder).start()
    again.close()
    assert again.replayed == 500
    assert stored_ids(store) == (500, 500)
    assert spool_files(folder) == []  # replayed files and their lock are removed


def test_a_working_store_leaves_no_spool_behind(sqlite_store: PredictionLogStore, tmp_path):
    folder = tmp_path / "spool"
    log = PredictionLog(sqlite_store, spool=folder, segment_records=100, interval=0).start()
    for i in range(1_000):
        log.submit(record(i))
    assert log.flush(timeout=30)
    # written segments are removed as soon as every record in them is in the store
    assert len([n for n in spool_files(folder) if n.endswith(".jsonl")]) <= 1
    log.close()
    assert (log.written, log.spooled) == (1_000, 0)
    assert spool_files(folder) == []


def test_a_torn_last_line_is_skipped_when_replaying(sqlite_store: PredictionLogStore, tmp_path):
    folder = tmp_path / "spool"
    log = PredictionLog(FailingStore(sqlite_store, 10**9), spool=folder, interval=0).start()
    for i in range(50):
        log.submit(record(i))
    log.close(timeout=0.3)
    segment = next(p for p in folder.iterdir() if p.suffix == ".jsonl")
    with segment.open("ab") as f:
        f.write(b'{"request_id": "torn-by-a-cr')  # a machine crash mid-line
    again = PredictionLog(sqlite_store, spool=folder).start()
    again.close()
    assert again.replayed == 50
    assert stored_ids(sqlite_store) == (50, 50)
    assert spool_files(folder) == []


def test_the_spool_of_a_running_log_is_not_replayed_by_another(
    sqlite_store: PredictionLogStore, tmp_path: Path
):
    folder = tmp_path / "spool"
    first = PredictionLog(FailingStore(sqlite_store, 10**9), spool=folder, interval=0).start()
    for i in range(20):
        first.submit(record(i))
    second = PredictionLog(sqlite_store, spool=folder).start()  # another worker process
    second.close()
    assert second.replayed == 0
    first.close(timeout=0.3)
    assert first.spooled == 20
    third = PredictionLog(sqlite_store, spool=folder).start()
    third.close()
    assert third.replayed == 20
    assert stored_ids(sqlite_store) == (20, 20)


def test_drop_mode_with_a_spool_keeps_what_does_not_fit(
    sqlite_store: PredictionLogStore, tmp_path: Path
):
    folder = tmp_path / "spool"
    slow = SlowStore(sqlite_store, 0.05)
    log = PredictionLog(slow, capacity=50, batch_size=10, interval=0, spool=folder).start()
    submit_from_threads(log, 4, 200)
    log.close()
    assert log.dropped == 0 and log.spooled > 0
    assert log.submitted == 800 == log.written + log.spooled
    again = PredictionLog(sqlite_store, spool=folder).start()
    again.close()
    # whole files are replayed: records of them already stored are written again, harmlessly
    assert log.spooled <= again.replayed <= 800
    assert stored_ids(sqlite_store) == (800, 800)


def test_a_journal_line_is_the_records_fields_as_json(tmp_path: Path):
    import dataclasses

    import numpy as np

    from forgeml._json import dumps, loads
    from forgeml.serve._spool import PredictionSpool

    spool = PredictionSpool(tmp_path / "spool")
    given = dataclasses.replace(
        record(3),
        inputs={"age": [float("nan")], "workclass": [None], "hours": [40]},
        outputs={"predictions": [">50K"], "probabilities": np.array([[0.25, 0.75]])},
        quality={"age": {"missing": 1}},
    )
    assert spool.append(given) == 0
    spool.close()
    line = next(p for p in (tmp_path / "spool").iterdir() if p.suffix == ".jsonl").read_bytes()
    fields = {f.name: getattr(given, f.name) for f in dataclasses.fields(given)}
    assert line == dumps(fields) + b"\n"
    assert loads(line)["inputs"] == {"age": [None], "workclass": [None], "hours": [40]}


def test_a_journal_line_is_written_without_releasing_the_gil(tmp_path: Path) -> None:
    """The event loop's journal writes keep the GIL: a thread waiting for it does not run
    during them (forced switches are off, so a release is its only way in)."""
    from forgeml.serve._spool import _write_all

    ran: list[int] = []
    go = threading.Event()

    def waiting() -> None:
        go.wait()
        ran.append(1)

    thread = threading.Thread(target=waiting)
    thread.start()
    fd = os.open(tmp_path / "journal.jsonl", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        go.set()
        for _ in range(2000):
            _write_all(fd, b'{"request_id": "r"}\n')
        during = len(ran)
    finally:
        sys.setswitchinterval(interval)
        os.close(fd)
    thread.join()
    assert during == 0 and ran == [1]
    assert (tmp_path / "journal.jsonl").read_bytes() == b'{"request_id": "r"}\n' * 2000
