"""Types shared by the server's protocols, validation and runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PRINCIPAL_SCOPE_KEY", "Outputs", "RequestError", "Rows"]

#: The ASGI scope key under which an authentication middleware puts the request's principal
#: (a ``forgeml.security.Principal``); feedback is recorded with its name.
PRINCIPAL_SCOPE_KEY = "principal"


@dataclass(slots=True)
class Rows:
    """Input rows as decoded from a request, before validation.

    Attributes:
        columns: column name -> values (JSON-like: int, float, str, bool or None), every list
            of the same length ``n``.
        n: the number of rows.
        key: the routing key the caller gave (sticky canary / A/B assignment), if any.
    """

    columns: dict[str, list[Any]]
    n: int
    key: str | None = None


@dataclass(slots=True)
class Outputs:
    """What a model gave for some rows, in JSON-ready Python values.

    Attributes:
        predictions: one label (classification) or value (regression) per row.
        probabilities: one list of class probabilities per row (classifiers), else ``None``.
        classes: the class labels in the order of each probability list, else ``None``.
        model: the served model's name.
        version: the version that answered.
        request_id: the id the prediction is logged under.
    """

    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    classes: list[Any] | None = None
    model: str = ""
    version: int = 0
    request_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class RequestError(Exception):
    """A request the server refuses: answered with ``status`` and a JSON body naming
    ``field`` (the part of the request that is wrong) and what was expected.

    Args:
        message: one readable sentence: what is wrong and what was expected.
        field: the request field or input column at fault (``body``, ``inputs[0].shape``,
            ``age``...), or ``None``.
        status: the HTTP status (4xx).
        code: a stable machine-readable code.
        headers: HTTP headers the answer carries (``Retry-After`` on a 503).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        code: str = "invalid_input",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": {"code", "message", "field"}}``."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}
