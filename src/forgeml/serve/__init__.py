"""Serving registered models: the prediction service, its wire protocols, batch scoring.

``create_app(ServeOptions(models=("adult@production",)))`` is the ASGI application of the
prediction paths (``forgeml.http.create_app`` adds the admin routes and authentication, and is
what ``forgeml serve`` runs); ``predict_file`` scores a CSV or Parquet file larger than memory
(``forgeml predict``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from forgeml.serve._options import ServeOptions
from forgeml.serve._types import Outputs, RequestError, Rows

__all__ = [
    "Outputs",
    "RequestError",
    "Rows",
    "ServeOptions",
    "create_app",
    "predict_file",
]

if TYPE_CHECKING:
    from forgeml.serve._app import create_app
    from forgeml.serve._batch import predict_file

# The web stack and the model runtime load on first use.
__getattr__, _, _ = lazy_loader.attach(
    __name__, submod_attrs={"_app": ["create_app"], "_batch": ["predict_file"]}
)
