"""The server's admin routes: the routing table, a model's route, promotions.

Each acts through a use case with the ``Principal`` the authentication middleware found, so the
stores record who acted; a request without one gets 401. After a change the route-table
refresher runs a pass at once, so the answer shows the table now served.

=========================================  =================================================
``GET /admin/routes``                      every served model's reference, route and error
``PUT /admin/models/{name}/route``         set its split and shadow (applied without restart)
``DELETE /admin/models/{name}/route``      drop its route: all traffic to the served reference
``POST /admin/models/{name}/promote``      ``{"version": 3, "alias": "production"}``: move an
                                           alias (a server of ``NAME@ALIAS`` follows it)
=========================================  =================================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from forgeml import workflows
from forgeml.errors import ForgeMLError
from forgeml.http._access import principal_of
from forgeml.security import Principal
from forgeml.serve import (
    Operation,
    RequestError,
    Serving,
    from_forgeml,
    guarded,
    json_response,
    openapi_body,
    operation,
    read_body,
)
from forgeml.store import Workspace

__all__ = ["admin_operations", "context_of"]


def context_of(ws: Workspace, request: Request) -> workflows.Context:
    """A request's use-case context: its principal (401 without one), origin ``http:ADDRESS``."""
    client = request.client.host if request.client else "unknown"
    return workflows.Context(ws, _principal(request), origin=f"http:{client}")


def _principal(request: Request) -> Principal:
    found = principal_of(request.scope)
    if found is None:
        raise RequestError(
            "The admin endpoints need 'Authorization: Bearer <key or admin token>'",
            field="Authorization",
            status=401,
            code="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def _json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"The body is not JSON: {e}", field="body") from None


def route() -> dict[str, Any]:
    """``/admin/models/{name}/route``: a traffic split and an optional shadow."""
    schema = {
        "type": "object",
        "required": ["split"],
        "properties": {
            "split": {
                "type": "object",
                "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
            },
            "shadow": {
                "type": "object",
                "properties": {
                    "version": {"type": ["string", "integer"]},
                    "fraction": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
            "sticky": {"type": "boolean"},
        },
    }
    return openapi_body(schema, {"split": {"production": 90, "staging": 10}})


def promotion() -> dict[str, Any]:
    """``/admin/models/{name}/promote``: the version an alias moves to."""
    schema = {
        "type": "object",
        "required": ["version"],
        "properties": {
            "version": {"type": "integer", "minimum": 1},
            "alias": {"type": "string"},
            "reason": {"type": "string"},
        },
        "additionalProperties": False,
    }
    return openapi_body(schema, {"version": 2, "alias": "production", "reason": "better AUC"})


def admin_operations(serving: Serving) -> Sequence[Operation]:
    """The admin operations of one server."""
    service, refresher, ws = serving.service, serving.refresher, serving.workspace
    max_body = serving.options.max_body_bytes

    def describe(name: str) -> dict[str, Any]:
        out = service.describe(name)
        return {"ref": out["ref"], "route": out.get("route"), "error": out.get("error")}

    async def act(field: str, change: Callable[[], Any]) -> Any:
        """Run a use case, then a refresher pass, off the event loop; the use case's answer."""

        def apply() -> Any:
            result = change()
            refresher.refresh_now()
            return result

        try:
            return await asyncio.get_running_loop().run_in_executor(None, apply)
        except ForgeMLError as e:
            raise from_forgeml(e, field=field) from None

    async def routes(request: Request) -> Response:
        async def handle() -> Response:
            _principal(request)
            return json_response({name: describe(name) for name in service.refs})

        return await guarded(service, None, None, handle)

    async def set_route(request: Request) -> Response:
        name = request.path_params["name"]

        async def handle() -> Response:
            context = context_of(ws, request)
            if name not in service.refs:
                service.entry(name)  # 404
            config = _json_body(await read_body(request, max_body))

            def change() -> workflows.RouteChange:
                stored = refresher.routes.routes().get(name)
                revision = (stored[1] if stored else 0) + 1
                refresher.desired_route(name, (config, revision))  # validates before storing
                return workflows.set_route(context, name, config)

            done = await act("route", change)
            return json_response({**describe(name), "by": done.actor})

        return await guarded(service, None, name, handle)

    async def clear_route(request: Request) -> Response:
        name = request.path_params["name"]

        async def handle() -> Response:
            context = context_of(ws, request)
            if name not in service.refs:
                service.entry(name)  # 404
            done = await act("route", lambda: workflows.clear_route(context, name))
            return json_response({**describe(name), "by": done.actor})

        return await guarded(service, None, name, handle)

    async def promote(request: Request) -> Response:
        name = request.path_params["name"]

        async def handle() -> Response:
            context = context_of(ws, request)
            if name not in service.refs:
                service.entry(name)  # 404
            doc = _json_body(await read_body(request, max_body))
            if not isinstance(doc, dict) or set(doc) - {"version", "alias", "reason"}:
                raise RequestError(
                    "The body is {'version': N, 'alias': 'production', 'reason': '...'}",
                    field="body",
                )
            version = doc.get("version")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise RequestError(
                    f"version is a version number (1 or more); got {version!r}", field="version"
                )
            alias = doc.get("alias", "production")
            if not isinstance(alias, str):
                raise RequestError(f"alias is text; got {alias!r}", field="alias")
            reason = doc.get("reason")
            if "reason" in doc and not isinstance(reason, str):
                raise RequestError(f"reason is text; got {reason!r}", field="reason")
            event = await act(
                "version",
                lambda: workflows.promote(context, name, version, alias=alias, reason=reason),
            )
            return json_response(
                {
                    "model": name,
                    "alias": alias,
                    "version": event.to_version,
                    "by": event.actor,
                    **describe(name),
                }
            )

        return await guarded(service, None, name, handle)

    async def doc_none() -> None: ...

    async def doc_name(name: str) -> None: ...

    tags = ["admin"]
    path = "/admin/models/{name}"
    return [
        operation(
            "/admin/routes",
            routes,
            "GET",
            doc=doc_none,
            tags=tags,
            summary="The routing table of every served model",
        ),
        operation(
            f"{path}/route",
            set_route,
            "PUT",
            doc=doc_name,
            tags=tags,
            summary="Set a model's traffic split and shadow (applied without restart)",
            openapi_extra=route(),
        ),
        operation(
            f"{path}/route",
            clear_route,
            "DELETE",
            doc=doc_name,
            tags=tags,
            summary="Drop a model's stored route: all traffic to the served reference",
        ),
        operation(
            f"{path}/promote",
            promote,
            "POST",
            doc=doc_name,
            tags=tags,
            summary="Point an alias of the model at a version (recorded with who acted)",
            openapi_extra=promotion(),
        ),
    ]
