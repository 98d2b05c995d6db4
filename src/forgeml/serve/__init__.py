"""Serving registered models: the prediction service, its wire protocols, batch scoring.

``create_app(ServeOptions(models=("adult@production",)))`` is the ASGI application of the
prediction paths (``forgeml.http.create_app`` adds the admin routes and authentication, and is
what ``forgeml serve`` runs); ``predict_file`` scores a CSV or Parquet file larger than memory
(``forgeml predict``).
"""

from __future__ import annotations

from typing import Any

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


def __getattr__(name: str) -> Any:
    # The web stack and the model runtime load on first use.
    if name == "create_app":
        from forgeml.serve._app import create_app

        return create_app
    if name == "predict_file":
        from forgeml.serve._batch import predict_file

        return predict_file
    raise AttributeError(name)
