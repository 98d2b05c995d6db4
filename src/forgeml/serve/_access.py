"""The structured access log: one JSON line per HTTP request, written off the event loop."""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

from forgeml._json import dumps_text

__all__ = ["AccessLogMiddleware", "AccessLogWriter"]

_access = logging.getLogger("forgeml.serve.access")


class AccessLogMiddleware:
    """Pure ASGI middleware: one JSON line per HTTP request (time, method, path, status,
    milliseconds, client; model, version and request id for predictions).

    The event loop only appends a tuple to a queue; a writer thread turns them into JSON
    lines and hands them to the ``forgeml.serve.access`` logger, several lines per record.
    """

    def __init__(self, app: Any, log: AccessLogWriter) -> None:
        self.app = app
        self.enabled = log.enabled
        self._pending = log.pending

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self._pending.append(
                (
                    time.time(),
                    scope["method"],
                    scope["path"],
                    status[0],
                    time.perf_counter() - started,
                    scope.get("client"),
                    scope.get("forgeml"),
                )
            )


class AccessLogWriter:
    """The access log's queue and the thread that writes it."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and _access.isEnabledFor(logging.INFO)
        self.pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        if self.enabled:
            self._writer = threading.Thread(
                target=self._write_loop, name="forgeml-access-log", daemon=True
            )
            self._writer.start()

    def _write_loop(self) -> None:
        while not self._stop.wait(0.05):
            self._write()
        self._write()

    def _write(self) -> None:
        pending = self.pending
        lines = []
        while pending:
            at, method, path, status, seconds, client, info = pending.popleft()
            line: dict[str, Any] = {
                "time": round(at, 3),
                "method": method,
                "path": path,
                "status": status,
                "ms": round(seconds * 1000, 3),
                "client": client[0] if client else "",
            }
            if info:
                line.update(zip(("model", "version", "request_id"), info, strict=False))
            lines.append(dumps_text(line))
        if lines:
            _access.info("\n".join(lines))

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
