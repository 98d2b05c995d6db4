"""The HTTP interface: the prediction server with its admin routes and authentication.

``create_app(ServeOptions(models=("adult@production",)))`` is the ASGI application behind
``forgeml serve``; ``run`` serves it with Uvicorn (one or several worker processes).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "run"]


def __getattr__(name: str) -> Any:
    # The web stack loads on first use.
    if name == "create_app":
        from forgeml.http._app import create_app

        return create_app
    if name == "run":
        from forgeml.http._server import run

        return run
    raise AttributeError(name)
