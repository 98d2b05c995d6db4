"""Serving registered models: the prediction service and its wire protocols.

``create_app(ServeOptions(models=("adult@production",)))`` is the ASGI application of the
prediction paths (``forgeml.http.create_app`` adds the admin routes and authentication, and is
what ``forgeml serve`` runs). Batch scoring of files is ``forgeml.batch``.

Adding operations to a server (``create_app(..., extensions=[build])``, where ``build`` takes
the ``Serving`` and returns ``Operation``s): ``operation`` declares one, ``guarded`` answers
whatever its handler raises as a JSON refusal, ``read_body`` reads a bounded body,
``json_response`` answers, ``from_forgeml`` turns a ``ForgeMLError`` into its refusal and
``openapi_body`` describes a JSON body for the OpenAPI page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from forgeml.serve._options import ServeOptions
from forgeml.serve._types import PRINCIPAL_SCOPE_KEY, Outputs, RequestError, Rows

__all__ = [
    "PRINCIPAL_SCOPE_KEY",
    "Operation",
    "Outputs",
    "RequestError",
    "Rows",
    "ServeOptions",
    "Serving",
    "create_app",
    "from_forgeml",
    "guarded",
    "json_response",
    "openapi_body",
    "operation",
    "parse_feedback",
    "parse_feedback_document",
    "read_body",
]

if TYPE_CHECKING:
    from forgeml.serve._app import Serving, create_app
    from forgeml.serve._http import (
        Operation,
        from_forgeml,
        guarded,
        json_response,
        operation,
        read_body,
    )
    from forgeml.serve._schemas import openapi_body, parse_feedback, parse_feedback_document

# The web stack and the model runtime load on first use.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_app": ["Serving", "create_app"],
        "_http": [
            "Operation",
            "from_forgeml",
            "guarded",
            "json_response",
            "operation",
            "read_body",
        ],
        "_schemas": ["openapi_body", "parse_feedback", "parse_feedback_document"],
    },
)
