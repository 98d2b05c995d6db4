"""The server's cache of the access-control state: one store read for every request that
arrives while it is under way, at most every 2 s while off, never again once on."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from forgeml import workflows
from forgeml.http import _access
from forgeml.security import Principal, access_control_on
from forgeml.store import Workspace


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every read of the state from the store, with what it found."""
    found: list[bool] = []

    def counted(ws: Workspace) -> bool:
        on = access_control_on(ws)
        found.append(on)
        return on

    monkeypatch.setattr(_access, "access_control_on", counted)
    return found


def test_requests_arriving_together_share_one_read(
    sqlite_workspace: Workspace, reads: list[bool]
) -> None:
    now = [0.0]
    cache = _access._KeyCache(2.0, lambda: now[0])

    async def requests(n: int) -> list[Any]:
        async def one() -> bool:
            on = cache.cached_on()
            return on if on is not None else await cache.refresh_on(sqlite_workspace)

        return await asyncio.gather(*(one() for _ in range(n)))

    assert asyncio.run(requests(32)) == [False] * 32
    assert reads == [False]
    now[0] = 1.9
    assert asyncio.run(requests(8)) == [False] * 8 and reads == [False]  # still fresh
    now[0] = 2.0
    assert asyncio.run(requests(8)) == [False] * 8 and reads == [False, False]
    workflows.create_key(
        workflows.Context(sqlite_workspace, Principal("setup")), role="admin", name="root"
    )
    now[0] = 4.1  # the first key turns access control on within the cache's time
    assert asyncio.run(requests(8)) == [True] * 8 and reads == [False, False, True]
    now[0] = 1e6  # keys are never deleted: once on it is not read again
    assert asyncio.run(requests(8)) == [True] * 8 and len(reads) == 3


def test_a_request_that_goes_away_leaves_the_read_to_the_others(
    sqlite_workspace: Workspace, reads: list[bool]
) -> None:
    cache = _access._KeyCache(2.0, lambda: 0.0)

    async def scenario() -> bool:
        first = asyncio.ensure_future(cache.refresh_on(sqlite_workspace))
        second = asyncio.ensure_future(cache.refresh_on(sqlite_workspace))
        await asyncio.sleep(0)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(scenario()) is False
    assert reads == [False]
    assert cache.cached_on() is False


def test_a_key_is_read_off_the_event_loop_and_cached_for_its_time(
    sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = workflows.create_key(
        workflows.Context(sqlite_workspace, Principal("setup")), role="admin", name="root"
    )
    readers: list[int] = []
    get = sqlite_workspace.keys.get

    def counted(key_id: str) -> Any:
        readers.append(threading.get_ident())
        return get(key_id)

    monkeypatch.setattr(sqlite_workspace.keys, "get", counted)
    now = [0.0]
    admitted: list[Any] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        admitted.append(scope[_access.SCOPE_KEY])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = _access.AccessMiddleware(
        inner,
        _access.AccessPolicy(local=Principal("local")),
        workspace=sqlite_workspace,
        clock=lambda: now[0],
    )

    async def request(token: str) -> tuple[int, int]:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/v1/models",
            "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        }
        await middleware(scope, None, send)
        return sent[0]["status"], threading.get_ident()

    status, loop_thread = asyncio.run(request(created.token))
    assert status == 200 and admitted[-1].key_id == created.record.key_id
    assert len(readers) == 1 and readers[0] != loop_thread  # read by a thread job
    now[0] = 1.9  # within the cache's time: no read
    assert asyncio.run(request(created.token))[0] == 200 and len(readers) == 1
    now[0] = 2.5  # expired: read again, off the loop
    status, loop_thread = asyncio.run(request(created.token))
    assert status == 200 and len(readers) == 2 and readers[1] != loop_thread
    wrong = created.token[:-4] + ("aaaa" if not created.token.endswith("aaaa") else "bbbb")
    assert asyncio.run(request(wrong))[0] == 401  # the cached record, a wrong secret
    unknown = "fml_" + "0" * 12 + "_" + "x" * 43  # well formed, no such key: read, refused
    assert asyncio.run(request(unknown))[0] == 401
    assert len(readers) == 3 and len(admitted) == 3
