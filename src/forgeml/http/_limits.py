"""Connection limits that Uvicorn does not have: header and body read timeouts, a connection cap.

Uvicorn times out idle keep-alive connections (5 s) and, on shutdown, waits for in-flight
requests up to ``timeout_graceful_shutdown``, but a client that opens a connection and sends its
headers or its body one byte at a time (slowloris) holds that connection, a file descriptor and,
during shutdown, the whole process, for as long as it likes. Its ``limit_concurrency`` answers
503 only once a request's headers are complete, which a slowloris client never sends.

``LimitedProtocol`` adds, to the HTTP protocol class Uvicorn would use (httptools, else h11):

* a header timeout: a request whose headers are not complete ``header_timeout`` seconds after
  the connection opened (or after the previous answer on a kept-alive connection) gets
  ``408`` and the connection is closed (a connection that sent nothing is closed silently);
* a body timeout: a request whose body is not complete ``body_timeout`` seconds after its
  headers gets ``408`` (when no answer started) and the connection is closed; the handler
  reading it sees a disconnect;
* a connection cap: a connection accepted while ``max_connections`` are open gets ``503`` with
  ``Retry-After: 1`` at once and is closed, before it sends anything.

It also writes an answer with one system call (``_Coalesced``): Uvicorn writes an answer's
status line and headers, then its body, as two writes, and each write to a socket costs more of
the event loop's time than the rest of a small answer's framing. The two are held and written
together when the answer is complete (``on_response_complete``); anything else (a streamed
body, ``100 Continue``) leaves at the end of the loop iteration, in order, and before the
connection closes. Holding every answer of an iteration to the iteration's end instead would
save nothing more per answer and delay the answers answered first: measured, the server then
waited for its clients more often and served fewer requests.

It relies on the protocol classes' ``cycle`` (the request being answered, set when its headers
are complete), ``transport``, ``connections`` and ``on_response_complete``; the tests in
``tests/serve/test_limits.py`` exercise each limit on a real server and real sockets.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from forgeml._json import dumps

__all__ = ["ConnectionLimits", "limited_protocol"]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits of one server (seconds, connections)."""

    header_timeout: float
    body_timeout: float
    max_connections: int


def _raw_answer(status: int, reason: str, message: str, field: str, code: str) -> bytes:
    body = dumps({"error": {"code": code, "message": message, "field": field}})
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if status == 503:
        head.append("retry-after: 1")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Coalesced:
    """A connection's transport that holds what is written until ``flush``.

    The protocol flushes when an answer is complete; the first write held also schedules a
    flush at the end of the loop iteration (``call_soon``), for what no completed answer
    flushes. ``close`` and ``write_eof`` flush first, ``abort`` drops what is held, as the
    transport's own buffer would be. Everything else is the transport's.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Write what is pending now."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        if self._transport.is_closing():  # the peer went away meanwhile
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Limits:
    """The mixin; ``limited_protocol`` puts it before Uvicorn's protocol class."""

    # set by Uvicorn's protocol classes
    transport: asyncio.Transport
    connections: set[Any]
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        self._limits = limits
        self._cycle: Any = None
        # One timer per connection, re-armed lazily: a request moves the deadline, and the
        # timer, when it fires before it, sleeps again until then (two timers scheduled and
        # cancelled per request would cost more than the rest of the protocol's work).
        self._timer: asyncio.TimerHandle | None = None
        self._fires_at = 0.0
        self._deadline = 0.0
        self._late: Any = None  # what runs at the deadline, given ``_armed``
        self._armed: Any = None
        self._partial = False  # bytes of a request whose headers are not complete yet
        self._out: _Coalesced | None = None  # the connection's transport, once made
        super().__init__(*args, **kwargs)

    # Uvicorn assigns ``self.cycle`` when a request's headers are complete.
    @property
    def cycle(self) -> Any:
        return self._cycle

    @cycle.setter
    def cycle(self, value: Any) -> None:
        self._cycle = value
        if value is not None:
            self._partial = False
            self._arm(self._limits.body_timeout, self._body_late, value)

    def connection_made(self, transport: Any) -> None:
        self._out = _Coalesced(transport, self.loop)
        super().connection_made(self._out)  # type: ignore[misc]
        if len(self.connections) > self._limits.max_connections:
            self._refuse(
                _raw_answer(
                    503,
                    "Service Unavailable",
                    f"The server holds its maximum of {self._limits.max_connections} "
                    "connections; retry",
                    "connection",
                    "too_many_connections",
                )
            )
            return
        self._arm(self._limits.header_timeout, self._headers_late, None)

    def data_received(self, data: bytes) -> None:
        cycle = self._cycle
        if cycle is None or cycle.response_complete:
            self._partial = True
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        if self._out is not None:
            self._out.flush()  # the answer's head and body, in one write
        super().on_response_complete()  # type: ignore[misc]
        cycle = self._cycle
        if (cycle is None or cycle.response_complete) and not self.transport.is_closing():
            self._partial = False
            self._arm(self._limits.header_timeout, self._headers_late, cycle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self, seconds: float, callback: Any, cycle: Any) -> None:
        deadline = self.loop.time() + seconds
        self._deadline, self._late, self._armed = deadline, callback, cycle
        if self._timer is not None and self._fires_at <= deadline:
            return  # it wakes first and sleeps on until the deadline
        if self._timer is not None:
            self._timer.cancel()
        self._fires_at = deadline
        self._timer = self.loop.call_at(deadline, self._wake)

    def _wake(self) -> None:
        self._timer = None
        late = self._late
        if late is None:
            return
        if self.loop.time() < self._deadline:  # moved since: sleep until the new deadline
            self._fires_at = self._deadline
            self._timer = self.loop.call_at(self._deadline, self._wake)
            return
        self._late = None
        late(self._armed)

    def _disarm(self) -> None:
        self._late = self._armed = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, answer: bytes | None) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        if answer:
            self.transport.write(answer)
        self.transport.close()

    def _headers_late(self, armed: Any) -> None:
        self._timer = None
        if self._cycle is not armed:
            return  # a request's headers arrived since
        if not self._partial:
            self._refuse(None)  # nothing sent: just close
            return
        seconds = self._limits.header_timeout
        self._refuse(
            _raw_answer(
                408,
                "Request Timeout",
                f"The request headers did not arrive within {seconds:g} s",
                "headers",
                "request_timeout",
            )
        )

    def _body_late(self, cycle: Any) -> None:
        self._timer = None
        if cycle is not self._cycle or not cycle.more_body or cycle.response_complete:
            return
        seconds = self._limits.body_timeout
        answer = _raw_answer(
            408,
            "Request Timeout",
            f"The request body did not arrive within {seconds:g} s of its headers",
            "body",
            "request_timeout",
        )
        self._refuse(None if cycle.response_started else answer)


def _base() -> type[asyncio.Protocol]:
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - httptools is a dependency of uvicorn[standard]
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return HttpToolsProtocol


def _make() -> type[asyncio.Protocol]:
    base = _base()
    namespace = {
        "__module__": __name__,
        "__qualname__": "LimitedProtocol",
        "__doc__": f"Uvicorn's {base.__name__} with header and body timeouts and a cap.",
    }
    return type("LimitedProtocol", (_Limits, base), namespace)


# Built over the class Uvicorn would choose; module-level, so that pickle finds it by name.
LimitedProtocol: type[asyncio.Protocol] = _make()


def limited_protocol(limits: ConnectionLimits) -> Any:
    """The HTTP protocol factory to give Uvicorn (``http=``): its usual protocol with
    ``limits``. A ``functools.partial`` of a module-level class, so worker processes can
    receive it."""
    return functools.partial(LimitedProtocol, limits=limits)  # type: ignore[call-arg]
