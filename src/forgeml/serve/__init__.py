"""Serving registered models: the prediction service and its wire protocols.

``create_app(ServeOptions(models=("adult@production",)))`` is the ASGI application of the
prediction paths (``forgeml.http.create_app`` adds the admin routes and authentication, and is
what ``forgeml serve`` runs). Batch scoring of files is ``forgeml.batch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from forgeml.serve._options import ServeOptions
from forgeml.serve._types import PRINCIPAL_SCOPE_KEY, Outputs, RequestError, Rows

__all__ = [
    "PRINCIPAL_SCOPE_KEY",
    "Outputs",
    "RequestError",
    "Rows",
    "ServeOptions",
    "create_app",
]

if TYPE_CHECKING:
    from forgeml.serve._app import create_app

# The web stack and the model runtime load on first use.
__getattr__, _, _ = lazy_loader.attach(__name__, submod_attrs={"_app": ["create_app"]})
