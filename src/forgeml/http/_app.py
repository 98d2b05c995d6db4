"""The HTTP interface: the prediction server composed with the admin routes and
authentication. ``forgeml serve`` and every Uvicorn worker process build it here."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from forgeml.config import Settings
from forgeml.http._admin import admin_operations
from forgeml.http._auth import AuthBackend, AuthMiddleware, LocalBackend, TokenBackend
from forgeml.security import Principal
from forgeml.serve._app import create_app as create_serving_app
from forgeml.serve._options import ServeOptions
from forgeml.store import Workspace

__all__ = ["auth_backend", "create_app"]


def auth_backend(options: ServeOptions, settings: Settings) -> AuthBackend:
    """Who requests act as: the admin token's holder when a token is set, else the local
    user who started the server (a server without a token listens on 127.0.0.1)."""
    if options.admin_token is not None:
        return TokenBackend(options.admin_token)
    return LocalBackend(Principal.from_settings(settings))


def create_app(
    options: ServeOptions,
    *,
    workspace: Workspace | None = None,
    settings: Settings | None = None,
    backend: AuthBackend | None = None,
) -> FastAPI:
    """The server's ASGI application: every protocol, operations, admin routes.

    Args:
        options: how to serve.
        workspace: the workspace the models come from (default: from ``settings``).
        settings: the settings (default: from the environment).
        backend: authentication (default: ``auth_backend(options, settings)``).
    """
    settings = settings or (workspace.settings if workspace is not None else Settings())
    backend = backend or auth_backend(options, settings)
    return create_serving_app(
        options,
        workspace=workspace,
        settings=settings,
        extensions=[admin_operations],
        middleware=[Middleware(AuthMiddleware, backend=backend)],  # type: ignore[arg-type]
    )
