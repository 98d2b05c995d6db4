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
        ws.close()


if __name__ == "__main__":
    main()
