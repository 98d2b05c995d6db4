"""The HTTP interface: the prediction server with its admin routes and authentication.

``create_app(ServeOptions(models=("adult@production",)))`` is the ASGI application behind
``forgeml serve``; ``run`` serves it with Uvicorn (one or several worker processes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

__all__ = ["create_app", "run"]

if TYPE_CHECKING:
    from forgeml.http._app import create_app
    from forgeml.http._server import run

# The web stack loads on first use.
__getattr__, _, _ = lazy_loader.attach(
    __name__, submod_attrs={"_app": ["create_app"], "_server": ["run"]}
)
