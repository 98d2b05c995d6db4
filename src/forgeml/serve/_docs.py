"""The interactive API documentation at ``/docs``, served without any CDN.

Swagger UI's files come from the ``swagger-ui-py`` package (Apache-2.0; Swagger UI 5, which
reads OpenAPI 3.1, with its licence beside the files) and are served under
``/docs/assets/``, so ``/docs`` works on a machine without internet access.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS", "docs_routes"]

ASSETS = "/docs/assets"
_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE")


def _assets_directory() -> Path:
    # Found without importing the package (its import loads handlers for many frameworks).
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_routes(title: str, openapi_url: str = "/openapi.json") -> list[BaseRoute]:
    """``GET /docs`` (Swagger UI over ``openapi_url``) and its assets, all local."""
    directory = _assets_directory()
    missing = [f for f in _FILES if not (directory / f).is_file()]
    if missing:
        raise RuntimeError(f"the swagger-ui-py package lacks {missing}")

    async def page(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        )

    return [
        Route("/docs", page, methods=["GET"], include_in_schema=False),
        Mount(ASSETS, StaticFiles(directory=directory), name="docs-assets"),
    ]
