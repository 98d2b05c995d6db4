"""What access control costs, measured in one run on SQLite (and PostgreSQL with --store-url).

- The server's access middleware per request, called directly with an empty application
  inside: a workspace without keys (the embedded default) against one with keys and a bearer
  key on every request (keys cached, as in a running server), and the floor (the empty
  application alone).
- A change with its audit entry: ``RouteStore.set_route`` (one transaction with its chained
  entry) against the same write with the transaction's entries dropped, interleaved, so the
  difference is the entry: its JSON, its hash, and three statements in the driver's SQL (lock
  and read the head, insert the entry, move the head).
- ``audit verify`` over the chain written: entries per second.
- PII and encryption on the serving path, per one-row request of 14 columns: hashing its
  two PII columns (``PiiPolicy.apply_columns``, what the server's validator runs first)
  against the copy of the columns it replaces; journaling the record (``PredictionSpool
  .append``) and storing a batch of 2,000 records (``write_predictions``, per record) with
  and without the encryption key.

    python benchmarks/security.py [--requests 20000] [--changes 500] [--store-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from forgeml import workflows
from forgeml.config import Settings
from forgeml.http._access import AccessMiddleware, AccessPolicy
from forgeml.security import Principal, authenticate
from forgeml.store import Workspace


async def _empty(scope: Any, receive: Any, send: Any) -> None:
    return None


def _per_request_us(app: Any, headers: list[tuple[bytes, bytes]], n: int) -> float:
    scope_base = {
        "type": "http",
        "method": "POST",
        "path": "/v1/models/adult/predict",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
    }

    async def run() -> float:
        for _ in range(200):  # warm the key cache
            await app(dict(scope_base), None, None)
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope_base), None, None)
        return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(run())


def middleware(ws: Workspace, token: str | None, n: int) -> float:
    policy = AccessPolicy(local=Principal("bench"))
    app = AccessMiddleware(_empty, policy, workspace=ws)
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return _per_request_us(app, headers, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ws"
        ws = Workspace(Settings(home=home, store_url=args.store_url))
        backend = ws.db.dialect
        floor = _per_request_us(_empty, [], args.requests)
        open_us = (
            middleware(ws, None, args.requests) if backend == "sqlite" else float("nan")
        )  # PostgreSQL: access control is always on
        first = workflows.create_key(workflows.Context(ws, Principal("bench")), role="admin")
        assert authenticate(ws, first.token).role == "admin"
        keyed_us = middleware(ws, first.token, args.requests)
        print(f"access middleware per request ({backend}, {args.requests:,} requests):")
        print(f"  floor (empty application)       {floor:8.2f} us")
        print(f"  no keys (embedded default)      {open_us:8.2f} us")
        print(f"  bearer key checked (cached)     {keyed_us:8.2f} us")

        from forgeml.store._schema import models

        # a model row so that set_route's check passes
        with ws.db.transaction() as conn:
            conn.execute(
                models.insert(),
                {"name": "bench", "latest_version": 0, "created_at": 0, "updated_at": 0},
            )
        times_audited, times_bare = [], []
        saved = ws.db.before_commit
        for i in range(args.changes):  # interleaved, so both see the same machine load
            for audited, times in ((True, times_audited), (False, times_bare)):
                ws.db.before_commit = saved if audited else (lambda conn, pending: None)
                start = time.perf_counter()
                ws.routing.set_route("bench", {"split": {"1": i + 1}}, user="bench")
                times.append(time.perf_counter() - start)
        ws.db.before_commit = saved
        audited = statistics.median(times_audited) * 1e3
        bare = statistics.median(times_bare) * 1e3
        print(f"a route write with its audit entry ({backend}, {args.changes} writes, median):")
        print(f"  with the chained entry          {audited:8.3f} ms")
        print(f"  without (the bare write)        {bare:8.3f} ms")
        start = time.perf_counter()
        report = ws.audit.verify()
        seconds = time.perf_counter() - start
        print(
            f"audit verify: {report.entries:,} entries in {seconds:.3f} s "
            f"({report.entries / seconds:,.0f} entries/s), intact={report.ok}"
        )
        pii_and_encryption(ws, home, args.requests)
        ws.close()


def _request(i: int) -> dict[str, list[Any]]:
    return {
        "age": [39 + i % 40],
        "workclass": ["State-gov"],
        "education": ["Bachelors"],
        "education_num": [13],
        "marital_status": ["Never-married"],
        "occupation": ["Adm-clerical"],
        "relationship": ["Not-in-family"],
        "sex": ["Male"],
        "capital_gain": [2174],
        "capital_loss": [0],
        "hours_per_week": [40],
        "native_country": ["United-States"],
        "name": [f"ann smith {i}"],
        "email": [f"ann.smith{i}@example.org"],
    }


def _us(fn: Any, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def pii_and_encryption(ws: Workspace, home: Path, n: int) -> None:
    import secrets

    from forgeml.security import PiiKey, PiiPolicy, PiiRule
    from forgeml.serve._spool import PredictionSpool
    from forgeml.store import PredictionRecord
    from forgeml.store._encryption import PayloadCipher
    from forgeml.store._predlog import PredictionLogStore

    key = PiiKey(secrets.token_bytes(32))
    policy = PiiPolicy({c: PiiRule("hash", "bench") for c in ("name", "email")}, key.id)
    requests = [_request(i) for i in range(1000)]
    copy_us = _us(lambda i: dict(requests[i % 1000]), n)
    hash_us = _us(lambda i: policy.apply_columns(requests[i % 1000], key), n)
    print(f"PII on the serving path (one-row request, 14 columns, 2 hashed; {n:,} requests):")
    print(f"  copy of the columns (floor)     {copy_us:8.2f} us")
    print(f"  2 columns hashed (HMAC-SHA256)  {hash_us:8.2f} us")

    def record(i: int) -> PredictionRecord:
        return PredictionRecord(
            request_id=f"{i:036d}",
            model="bench",
            version=1,
            role="primary",
            time_ms=1_700_000_000_000 + i,
            latency_ms=1.0,
            n_rows=1,
            inputs=policy.apply_columns(requests[i % 1000], key),
            outputs={"predictions": [0], "probabilities": [[0.8, 0.2]], "classes": [0, 1]},
            protocol="json",
        )

    records = [record(i) for i in range(n)]
    cipher = PayloadCipher(secrets.token_bytes(32))
    print(f"prediction log per record, without / with the encryption key ({n:,} records):")
    for label, c in (("clear", None), ("encrypted", cipher)):
        spool = PredictionSpool(home / "spool" / label, cipher=c)
        spool_us = _us(lambda i, spool=spool: spool.append(records[i]), n)  # type: ignore[misc]
        spool.close()
        store = PredictionLogStore(ws.db, c)
        batch = 2_000
        start = time.perf_counter()
        for at in range(0, n, batch):
            store.write_predictions(
                [
                    _renamed(r, f"{label[0]}{at + j:035d}")
                    for j, r in enumerate(records[at : at + batch])
                ]
            )
        store_us = (time.perf_counter() - start) / n * 1e6
        print(
            f"  {label:9} journal line {spool_us:8.2f} us, "
            f"store (batches of 2,000) {store_us:8.2f} us"
        )
    start = time.perf_counter()
    frame = PredictionLogStore(ws.db, cipher).predictions("bench")
    read_s = time.perf_counter() - start
    print(f"  read back {len(frame):,} rows (half sealed) in {read_s:.2f} s")


def _renamed(record: Any, request_id: str) -> Any:
    from dataclasses import replace

    return replace(record, request_id=request_id)


if __name__ == "__main__":
    main()
