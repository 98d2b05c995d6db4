"""A real prediction server on 127.0.0.1, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from forgeml.store import Workspace

__all__ = ["ServerThread", "free_port"]

_READY_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """``forgeml.http.create_app`` served by Uvicorn on a free port of 127.0.0.1.

    Use it as a context manager: entering starts the server and waits until
    ``/health/ready`` answers 200 (at most 60 s); leaving stops it and waits for its thread.
    ``options`` are ``ServeOptions`` fields (``access_log`` off and ``poll_interval`` 0.2 s
    unless given).

    Attributes:
        port, url: where it listens.
        options: its ``ServeOptions``.
        app: the ASGI application (``app.state.serving``).
    """

    def __init__(self, ws: Workspace, **options: Any) -> None:
        import uvicorn

        from forgeml.http import create_app
        from forgeml.serve import ServeOptions

        options.setdefault("access_log", False)
        options.setdefault("poll_interval", 0.2)
        self.workspace = ws
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.options = ServeOptions(port=self.port, **options)
        self.app = create_app(self.options, workspace=ws)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self._headers: dict[str, str] | None = None

    @property
    def state(self) -> Any:
        """The server's ``PredictionService``."""
        return self.app.state.serving.service

    @property
    def headers(self) -> dict[str, str]:
        """An admin key's ``Authorization`` header where access control is on, else none.

        Read on first use: in a workspace with keys it creates the test admin key
        (``forgeml.testing.admin_token``)."""
        if self._headers is None:
            from forgeml.testing._access import auth_headers

            self._headers = auth_headers(self.workspace)
        return self._headers

    def __enter__(self) -> ServerThread:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + _READY_SECONDS
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if not self.thread.is_alive():
                raise RuntimeError("the server stopped before it was ready")
            time.sleep(0.05)
        raise RuntimeError(f"the server did not become ready in {_READY_SECONDS:.0f} s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
