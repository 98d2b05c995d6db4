"""The HTTP interface around serving: the admin token (a workspace without keys), admin actions
recorded with the principal who acted, and ``/docs`` served without a CDN. Keys and roles:
tests/security."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa

from forgeml.store._schema import serving_routes

from .conftest import ServerThread, records

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def guarded(serve_ws):
    with ServerThread(serve_ws, models=("adult-lgbm@production",), admin_token=TOKEN) as s:
        yield s
    stored = serve_ws.routing.routes()
    if "adult-lgbm" in stored:
        serve_ws.routing.clear_route("adult-lgbm")


def _route_author(ws, model: str) -> str | None:
    with ws.db.transaction(write=False) as conn:
        return conn.execute(
            sa.select(serving_routes.c.updated_by).where(serving_routes.c.model == model)
        ).scalar()


def test_admin_routes_need_the_token(guarded, adult) -> None:
    url = f"{guarded.url}/admin/routes"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["field"] == "Authorization"
        assert response.headers["www-authenticate"] == "Bearer"
    response = httpx.put(
        f"{guarded.url}/admin/models/adult-lgbm/route", json={"split": {"2": 1}}, timeout=60
    )
    assert response.status_code == 401
    assert guarded.state.entries["adult-lgbm"].route.split == ((1, 1.0),)  # nothing changed
    ok = httpx.get(url, headers=AUTH)
    assert ok.status_code == 200
    assert ok.json()["adult-lgbm"]["route"]["split"] == {"1": 1.0}
    predicted = httpx.post(  # predictions do not need it
        f"{guarded.url}/v1/models/adult-lgbm/predict", json={"records": records(adult, 1)}
    )
    assert predicted.status_code == 200, predicted.text


def test_a_route_change_records_who_acted(guarded, serve_ws) -> None:
    response = httpx.put(
        f"{guarded.url}/admin/models/adult-lgbm/route",
        json={"split": {"production": 50, "2": 50}},
        headers=AUTH,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["by"] == "token:admin"
    assert body["route"]["split"] == {"1": 0.5, "2": 0.5}
    assert _route_author(serve_ws, "adult-lgbm") == "token:admin"
    cleared = httpx.delete(f"{guarded.url}/admin/models/adult-lgbm/route", headers=AUTH, timeout=60)
    assert cleared.status_code == 200 and cleared.json()["by"] == "token:admin"
    assert _route_author(serve_ws, "adult-lgbm") == "token:admin"


def test_a_promotion_records_who_acted_and_is_served(guarded, serve_ws) -> None:
    import forgeml as fm

    fm.registry.promote("adult-lgbm", 1, alias="admin-test", workspace=serve_ws)
    with ServerThread(serve_ws, models=("adult-lgbm@admin-test",), admin_token=TOKEN) as s:
        response = httpx.post(
            f"{s.url}/admin/models/adult-lgbm/promote",
            json={"version": 2, "alias": "admin-test", "reason": "canary held"},
            headers=AUTH,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["version"], body["by"]) == (2, "token:admin")
        assert body["route"]["split"] == {"2": 1.0}  # the server follows the alias at once
        bad = httpx.post(
            f"{s.url}/admin/models/adult-lgbm/promote",
            json={"version": "two"},
            headers=AUTH,
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "version"
        missing = httpx.post(
            f"{s.url}/admin/models/adult-lgbm/promote", json={"version": 99}, headers=AUTH
        )
        assert missing.status_code == 404, missing.text
    event = fm.registry.history("adult-lgbm", alias="admin-test", workspace=serve_ws)[-1]
    assert (event.actor, event.to_version, event.reason) == ("token:admin", 2, "canary held")


def test_without_a_token_admin_actions_act_as_the_local_user(server, serve_ws) -> None:
    response = httpx.put(
        f"{server.url}/admin/models/adult-lgbm/route",
        json={"split": {"production": 1}},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    try:
        assert response.json()["by"] == serve_ws.settings.user
        assert _route_author(serve_ws, "adult-lgbm") == serve_ws.settings.user
    finally:
        httpx.delete(f"{server.url}/admin/models/adult-lgbm/route", timeout=60)


def test_docs_work_offline(server) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    html = page.text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert urls, html
    for url in urls:
        assert url.startswith("/"), f"/docs refers to {url}, not a local path"
        assert not url.startswith("//")
    for url in urls:
        asset = httpx.get(f"{server.url}{url}")
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    assert "SwaggerUIBundle" in httpx.get(f"{server.url}/docs/assets/swagger-ui-bundle.js").text
    assert "Apache License" in httpx.get(f"{server.url}/docs/assets/LICENSE").text
