"""Server limits against hostile clients, on a real server process and real sockets: header and
body read timeouts (slowloris), the connection cap, the graceful-shutdown deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from forgeml.serve import ServeOptions

from .conftest import records, serve_process

PATH = "/v1/models/adult-lgbm/predict"


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def _read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {seconds} s; got {data[:200]!r}")
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def _read_answer(sock: socket.socket) -> bytes:
    """One answer with a body of ``content-length`` bytes."""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return data


def test_defaults_are_documented_values() -> None:
    options = ServeOptions(models=("m@1",))
    assert options.header_timeout == 10.0
    assert options.body_timeout == 30.0
    assert options.max_connections == 1000
    assert options.graceful_shutdown == 20.0  # below Kubernetes' 30 s grace period


def test_a_client_that_never_finishes_its_headers_is_cut_off(serve_ws, adult):
    with serve_process(serve_ws, "adult-lgbm@1", "--header-timeout", "1") as (url, _):
        with _connect(url) as sock:
            sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty".encode())
            data, seconds = _read_until_closed(sock, 10)
        assert data.startswith(b"HTTP/1.1 408 ")
        assert b'"field":"headers"' in data.replace(b" ", b"")
        assert 0.5 < seconds < 5
        # A connection that sends nothing at all is closed without an answer.
        with _connect(url) as idle:
            data, seconds = _read_until_closed(idle, 10)
        assert data == b"" and seconds < 5
        # Ordinary clients are unaffected.
        answer = httpx.post(f"{url}{PATH}", json={"records": records(adult, 1)}, timeout=30)
        assert answer.status_code == 200
        # On a kept-alive connection the timeout counts from the previous answer: requests
        # spaced under it are answered however long the connection lives, and headers left
        # unfinished after an answer are cut off.
        body = json.dumps({"records": records(adult, 1)}).encode()
        request = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        with _connect(url) as kept:
            for _ in range(4):
                kept.sendall(request)
                assert _read_answer(kept).startswith(b"HTTP/1.1 200 ")
                time.sleep(0.6)
            kept.sendall(f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            data, seconds = _read_until_closed(kept, 10)
        assert data.startswith(b"HTTP/1.1 408 ") and seconds < 5


def test_a_client_that_never_finishes_its_body_is_cut_off(serve_ws, adult):
    with serve_process(serve_ws, "adult-lgbm@1", "--body-timeout", "1") as (url, _):
        with _connect(url) as sock:
            sock.sendall(
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                'Content-Length: 1000\r\n\r\n{"records": ['.encode()
            )
            data, seconds = _read_until_closed(sock, 10)
        assert data.startswith(b"HTTP/1.1 408 ")
        assert b'"field":"body"' in data.replace(b" ", b"")
        assert seconds < 5
        answer = httpx.post(f"{url}{PATH}", json={"records": records(adult, 1)}, timeout=30)
        assert answer.status_code == 200


def test_connections_beyond_the_cap_get_a_quick_503(serve_ws, adult):
    args = ("adult-lgbm@1", "--max-connections", "20", "--header-timeout", "4")
    with serve_process(serve_ws, *args) as (url, _), contextlib.ExitStack() as sockets:
        hostages = []
        for _ in range(20):
            sock = sockets.enter_context(_connect(url))
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow")
            hostages.append(sock)
        time.sleep(0.3)
        started = time.monotonic()
        refused = httpx.post(f"{url}{PATH}", json={"records": records(adult, 1)}, timeout=10)
        assert time.monotonic() - started < 2
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "too_many_connections"
        # The hostages are cut at the header timeout; the server takes clients again.
        deadline = time.monotonic() + 15
        while True:
            answer = httpx.post(f"{url}{PATH}", json={"records": records(adult, 1)}, timeout=10)
            if answer.status_code == 200:
                break
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.5)


def test_a_sigtermed_server_with_slow_body_clients_exits_within_its_deadline(serve_ws, adult):
    # The body timeout is longer than the shutdown deadline: the deadline is what ends them.
    args = ("adult-lgbm@1", "--body-timeout", "120", "--graceful-shutdown", "3")
    with serve_process(serve_ws, *args) as (url, process), contextlib.ExitStack() as sockets:
        slow = []
        for _ in range(5):
            sock = sockets.enter_context(_connect(url))
            sock.sendall(
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000\r\n\r\n{".encode()
            )
            slow.append(sock)
        answered = httpx.post(f"{url}{PATH}", json={"records": records(adult, 1)}, timeout=30)
        assert answered.status_code == 200
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stop = started + 40
        while process.poll() is None and time.monotonic() < stop:
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b" ")  # one byte at a time keeps the body coming
            time.sleep(0.2)
        seconds = time.monotonic() - started
        assert process.poll() == 0, process.stderr.read().decode()[-2000:]
        assert seconds < 3 + 10  # the deadline, plus the prediction log's and the exit's time


class _CountingTransport:
    """A real transport whose writes are recorded."""

    def __init__(self, transport) -> None:
        self.transport, self.writes = transport, []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


def _available(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def test_what_a_connection_writes_is_held_until_flushed_or_the_iteration_ends():
    from forgeml.http._limits import _Coalesced

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        counting = _CountingTransport(transport)
        out = _Coalesced(counting, loop)  # type: ignore[arg-type]
        out.write(b"HTTP/1.1 200 OK\r\n\r\n")
        out.write(b"body")
        assert counting.writes == []
        out.flush()  # an answer complete: head and body in one write
        assert counting.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        await asyncio.sleep(0)
        assert _available(theirs) == b"HTTP/1.1 200 OK\r\n\r\nbody"
        out.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # nothing completes it: the iteration's end
        assert _available(theirs) == b""
        for _ in range(3):
            await asyncio.sleep(0)
        assert counting.writes[-1] == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert _available(theirs) == b"HTTP/1.1 100 Continue\r\n\r\n"
        out.write(b"last")
        out.close()  # what is held leaves first
        assert counting.writes[-1] == b"last" and out.is_closing()
        for _ in range(3):
            await asyncio.sleep(0)
        theirs.setblocking(True)
        theirs.settimeout(5)
        assert theirs.recv(100) == b"last"
        assert theirs.recv(100) == b""  # closed
        theirs.close()

    asyncio.run(main())
