"""Authentication as pure ASGI middleware with a pluggable backend.

``AuthMiddleware`` asks its ``AuthBackend`` who sent each HTTP request and puts the answer, a
``Principal`` or ``None``, in the ASGI scope under ``"principal"``; it refuses nothing itself.
Routes that need someone (the admin routes) read it with ``principal_of`` and answer 401 when
there is none. Backends today:

- ``TokenBackend``: one bearer token (``forgeml serve --admin-token``), compared in constant
  time (``hmac.compare_digest``); a request carrying it acts as the token's principal.
- ``LocalBackend``: no token configured (a server bound to 127.0.0.1): every request acts as
  the local user who started the server.

Keys and roles (several tokens, each with its principal and permissions) plug in here as
another backend.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Protocol

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from forgeml.security import Principal
from forgeml.serve import PRINCIPAL_SCOPE_KEY

__all__ = [
    "AuthBackend",
    "AuthMiddleware",
    "LocalBackend",
    "TokenBackend",
    "principal_of",
]

SCOPE_KEY = PRINCIPAL_SCOPE_KEY  # where the prediction server looks for it (feedback)


class AuthBackend(Protocol):
    """Who sent a request, from its headers (``None``: nobody the server knows)."""

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None: ...


class TokenBackend:
    """One bearer token.

    Args:
        token: the token ``Authorization: Bearer <token>`` must carry.
        principal: who a request with the token acts as.
    """

    def __init__(self, token: str, principal: Principal | None = None) -> None:
        self._expected = f"Bearer {token}".encode()
        self.principal = principal or Principal("token:admin", "token")

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        given = headers.get("authorization")
        if given is None:
            return None
        # Constant time: the comparison does not tell how much of a guess was right.
        if hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._expected):
            return self.principal
        return None


class LocalBackend:
    """Every request acts as one principal (a server only its host can reach)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        return self.principal


class AuthMiddleware:
    """Pure ASGI middleware: ``scope["principal"]`` for every HTTP request.

    Args:
        app: the application inside.
        backend: who sent a request.
    """

    def __init__(self, app: ASGIApp, backend: AuthBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[SCOPE_KEY] = self.backend.authenticate(Headers(scope=scope))
        await self.app(scope, receive, send)


def principal_of(scope: Mapping[str, Any]) -> Principal | None:
    """The principal the middleware found for a request (``None``: not authenticated)."""
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, Principal) else None
