"""Every HTTP route of the server for every role and for no key, generated from the written
matrix, through the application in process (its lifespan running), on SQLite and PostgreSQL;
and the limits in front of the routes: Host allow-list, JSON-only bodies, rate limits, admin
routes closed beyond loopback."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import lightgbm as lgb
import pandas as pd
import pytest

import forgeml as fm
from forgeml.http import create_app
from forgeml.http._access import AccessPolicy, match_route, warn_if_exposed
from forgeml.security import HTTP_ROUTES, PUBLIC, ROLES, Principal, allowed
from forgeml.serve import ServeOptions
from forgeml.store import Workspace

from .conftest import Keys, make_keys

with warnings.catch_warnings():  # Starlette asks for its httpx fork; httpx itself works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

MODEL = "adult-gbm"
BASE = "http://127.0.0.1"


def served(ws: Workspace, adult_numeric: pd.DataFrame) -> None:
    X, y = adult_numeric.drop(columns=["income"]), adult_numeric["income"]
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, random_state=0, verbose=-1)
    fm.register(model.fit(X, y), name=MODEL, sample=X, workspace=ws, actor="setup")
    fm.registry.promote(MODEL, 1, workspace=ws, actor="setup")


def client(ws: Workspace, **options: Any) -> TestClient:
    options.setdefault("access_log", False)
    options.setdefault("poll_interval", 0.2)
    app = create_app(ServeOptions(models=(f"{MODEL}@production",), **options), workspace=ws)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def _request(c: TestClient, method: str, template: str, headers: dict[str, str]) -> Any:
    path = template.replace("{name}", MODEL).replace("{version}", "1")
    body = None if method in ("GET", "DELETE") else {}
    return c.request(method, path, json=body, headers=headers)


@pytest.fixture
def keyed(workspace: Workspace, adult_numeric: pd.DataFrame) -> Iterator[tuple[Keys, TestClient]]:
    served(workspace, adult_numeric)
    keys = make_keys(workspace)
    with client(workspace) as c:
        yield keys, c


def test_every_route_and_role_is_answered_as_the_matrix_says(
    keyed: tuple[Keys, TestClient],
) -> None:
    keys, c = keyed
    served_routes = {
        (method, route.path)
        for route in c.app.routes  # type: ignore[attr-defined]
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }
    undocumented = served_routes - set(HTTP_ROUTES) - {("GET", "/docs/oauth2-redirect")}
    assert not undocumented, undocumented
    cells = 0
    for (method, template), action in HTTP_ROUTES.items():
        for role in (*ROLES, None):
            headers = {} if role is None else {"Authorization": f"Bearer {keys.tokens[role]}"}
            response = _request(c, method, template, headers)
            cells += 1
            where = f"{method} {template} as {role}: {response.status_code} {response.text[:200]}"
            assert response.status_code < 500, where
            body = (
                response.json()
                if response.headers.get("content-type", "").startswith("application/json")
                else None
            )
            if action == PUBLIC or (role is not None and allowed(role, action)):
                assert response.status_code not in (401, 403), where
            elif role is None:
                assert response.status_code == 401, where
                assert response.headers["www-authenticate"] == "Bearer"
                assert body is not None and "missing or not valid" in str(body), where
            else:
                assert response.status_code == 403, where
                assert f"role {role} may not" in str(body), where
            if response.status_code in (401, 403):  # nothing about which keys exist
                assert "root" not in response.text and "-key" not in response.text
    assert cells == len(HTTP_ROUTES) * (len(ROLES) + 1)


def test_a_revoked_key_stops_working_and_a_wrong_key_gets_the_same_answer(
    keyed: tuple[Keys, TestClient],
) -> None:
    from forgeml import workflows

    keys, c = keyed
    viewer = {"Authorization": f"Bearer {keys.tokens['viewer']}"}
    assert c.get("/v1/models", headers=viewer).status_code == 200
    wrong = keys.tokens["viewer"][:-4] + "AAAA"
    refused = c.get("/v1/models", headers={"Authorization": f"Bearer {wrong}"})
    unknown = c.get("/v1/models", headers={"Authorization": "Bearer fml_000000000000_" + "x" * 43})
    assert refused.status_code == unknown.status_code == 401
    assert refused.json() == unknown.json()
    workflows.revoke_key(keys.context("admin"), "viewer-key")
    import time

    deadline = time.monotonic() + 10  # the server re-reads keys every 2 s
    while c.get("/v1/models", headers=viewer).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_admin_changes_through_http_are_audited_with_the_key_and_address(
    keyed: tuple[Keys, TestClient],
) -> None:
    keys, c = keyed
    deployer = {"Authorization": f"Bearer {keys.tokens['deployer']}"}
    done = c.put(f"/admin/models/{MODEL}/route", json={"split": {"1": 1}}, headers=deployer)
    assert done.status_code == 200, done.text
    assert done.json()["by"] == "deployer-key"
    [entry] = keys.workspace.audit.entries(action="route.set")
    assert (entry.actor, entry.actor_kind, entry.origin) == (
        "deployer-key",
        "token",
        "http:testclient",
    )
    keys.workspace.guards.set("*", "production", roles=["admin"], by="root")
    moved = c.post(f"/admin/models/{MODEL}/promote", json={"version": 1}, headers=deployer)
    assert moved.status_code == 403 and "protected" in moved.json()["error"]["message"]
    admin = {"Authorization": f"Bearer {keys.tokens['admin']}"}
    moved = c.post(f"/admin/models/{MODEL}/promote", json={"version": 1}, headers=admin)
    assert moved.status_code == 200, moved.text


def test_feedback_is_json_only_and_written_once(
    sqlite_workspace: Workspace, adult_numeric: pd.DataFrame
) -> None:
    ws = sqlite_workspace
    served(ws, adult_numeric)
    row = adult_numeric.drop(columns=["income"]).iloc[:1].to_dict(orient="records")
    with client(ws) as c:
        answer = c.post(f"/v1/models/{MODEL}/predict", json={"records": row})
        assert answer.status_code == 200, answer.text
        request_id = answer.json()["request_id"]
        form = c.post(
            "/v1/feedback",
            content=f'{{"request_id": "{request_id}", "labels": [">50K"]}}',
            headers={"Content-Type": "text/plain"},
        )
        assert form.status_code == 415, form.text
        assert form.json()["error"]["field"] == "Content-Type"
        for _ in range(50):
            first = c.post("/v1/feedback", json={"request_id": request_id, "labels": [">50K"]})
            if first.status_code != 404:  # the prediction may still be on its way to the store
                break
        assert first.status_code == 200, first.text
        again = c.post("/v1/feedback", json={"request_id": request_id, "labels": ["<=50K"]})
        assert again.status_code == 409, again.text
        assert "written once" in again.json()["error"]["message"]
        assert again.json()["error"]["field"] == "request_id"
        # a correction is a new, audited revision; its body is checked field by field
        bad = c.post(
            "/v1/feedback/corrections",
            json={"request_id": request_id, "labels": ["<=50K"], "reason": 7},
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "reason", bad.text
        unknown = c.post("/v1/feedback/corrections", json={"request_id": "nope", "label": "x"})
        assert unknown.status_code == 404, unknown.text
        assert unknown.json()["error"]["field"] == "request_id"
        fixed = c.post(
            "/v1/feedback/corrections",
            json={"request_id": request_id, "labels": ["<=50K"], "reason": "checked by hand"},
        )
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["revisions"] == {request_id: 2}
    entries = ws.audit.entries(action="feedback")
    assert [e.action for e in entries] == ["feedback.add", "feedback.correct"]
    assert [e.origin for e in entries] == ["http:testclient"] * 2
    assert entries[0].actor == entries[1].actor != "unknown"  # the local user, no keys
    assert entries[1].before == {"labels": {request_id: [">50K"]}}
    assert entries[1].after["labels"] == {request_id: ["<=50K"]}
    assert entries[1].after["reason"] == "checked by hand"
    assert ws.predlog.predictions(MODEL)["label"].tolist() == ["<=50K"]  # the latest wins
    assert [h.labels for h in ws.predlog.feedback_history(request_id)] == [[">50K"], ["<=50K"]]


def test_host_names_outside_the_allow_list_are_refused(
    sqlite_workspace: Workspace, adult_numeric: pd.DataFrame
) -> None:
    served(sqlite_workspace, adult_numeric)
    with client(sqlite_workspace, allowed_hosts=("models.example.com",)) as c:
        assert c.get("/health/live").status_code == 200
        for host in ("localhost:8000", "[::1]:8000", "models.example.com"):
            assert c.get("/v1/models", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", "127.0.0.1.evil.example", "attacker:80"):
            refused = c.get("/admin/routes", headers={"Host": host})
            assert refused.status_code == 400, host
            assert refused.json()["error"]["field"] == "Host"


def test_the_rate_limit_is_per_key(keyed: tuple[Keys, TestClient]) -> None:
    keys, _ = keyed
    with client(keys.workspace, rate_limit=1, rate_burst=3) as c:
        viewer = {"Authorization": f"Bearer {keys.tokens['viewer']}"}
        admin = {"Authorization": f"Bearer {keys.tokens['admin']}"}
        codes = [c.get("/v1/models", headers=viewer).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
        limited = c.get("/v1/models", headers=viewer)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert c.get("/v1/models", headers=admin).status_code == 200  # another key, own bucket
        assert c.get("/health/ready").status_code in (200, 503)  # probes are never limited


def test_admin_routes_are_closed_beyond_loopback_without_keys(
    sqlite_workspace: Workspace, adult_numeric: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    served(sqlite_workspace, adult_numeric)
    with client(sqlite_workspace, host="0.0.0.0", allowed_hosts=("*",)) as c:
        closed = c.get("/admin/routes")
        assert closed.status_code == 401 and "closed" in closed.json()["error"]["message"]
        assert c.get("/v1/models").status_code == 200  # predictions stay open without keys
    assert any("beyond loopback" in r.getMessage() for r in caplog.records)
    with client(sqlite_workspace, host="0.0.0.0", admin_token="t0ken-value") as c:
        assert c.get("/admin/routes").status_code == 401
        ok = c.get("/admin/routes", headers={"Authorization": "Bearer t0ken-value"})
        assert ok.status_code == 200
    with client(sqlite_workspace) as c:  # loopback, no keys: the local user
        assert c.get("/admin/routes").status_code == 200
    policy = AccessPolicy(local=Principal("ana"), bound_host="127.0.0.1")
    assert warn_if_exposed(policy) is None


def test_routes_are_matched_to_their_actions() -> None:
    assert match_route("POST", f"/v1/models/{MODEL}/predict") == "predict"
    assert match_route("PUT", f"/admin/models/{MODEL}/route") == "route.write"
    assert match_route("GET", "/docs/assets/swagger-ui.css") == PUBLIC
    assert match_route("HEAD", "/health/live") == PUBLIC
    assert match_route("GET", "/admin/models/x/route/extra") is None
