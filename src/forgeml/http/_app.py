"""The HTTP interface: the prediction server composed with the admin routes and access
control. ``forgeml serve`` and every Uvicorn worker process build it here."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from forgeml.config import Settings
from forgeml.http._access import AccessMiddleware, AccessPolicy, warn_if_exposed
from forgeml.http._admin import admin_operations
from forgeml.http._feedback import feedback_operations
from forgeml.security import Principal
from forgeml.serve import ServeOptions
from forgeml.serve import create_app as create_serving_app
from forgeml.store import Workspace

__all__ = ["access_policy", "create_app"]


def access_policy(options: ServeOptions, settings: Settings) -> AccessPolicy:
    """The server's access policy: its options, the admin token (``--admin-token`` or
    ``FORGEML_ADMIN_TOKEN``) and the local user who started it."""
    token = options.admin_token
    if token is None and settings.admin_token is not None:
        token = settings.admin_token.get_secret_value() or None
    return AccessPolicy(
        local=Principal.from_settings(settings),
        bound_host=options.host,
        allowed_hosts=options.allowed_hosts,
        admin_token=token,
        rate_limit=options.rate_limit,
        rate_burst=options.rate_burst,
    )


def create_app(
    options: ServeOptions,
    *,
    workspace: Workspace | None = None,
    settings: Settings | None = None,
    policy: AccessPolicy | None = None,
) -> FastAPI:
    """The server's ASGI application: every protocol, operations, admin routes, access control.

    Args:
        options: how to serve.
        workspace: the workspace the models come from (default: from ``settings``).
        settings: the settings (default: from the environment).
        policy: access control (default: ``access_policy(options, settings)``).
    """
    settings = settings or (workspace.settings if workspace is not None else Settings())
    policy = policy or access_policy(options, settings)
    warn_if_exposed(policy)
    return create_serving_app(
        options,
        workspace=workspace,
        settings=settings,
        extensions=[admin_operations, feedback_operations],
        middleware=[Middleware(AccessMiddleware, policy=policy)],  # type: ignore[arg-type]
    )
