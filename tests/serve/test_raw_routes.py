"""The native ``predict`` served in front of the framework (``RawRoute``) answers every request
exactly as the same route through Starlette's router does: two real servers on 127.0.0.1, one
with the raw route and one without, asked the same requests (answers, refusals, headers,
compressed and streamed bodies, the access log and the prediction log)."""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

from forgeml.serve._app import _RawRoutes
from forgeml.serve._http import RawRoute
from forgeml.store import Workspace

from .conftest import ServerThread, records

PATH = "/v1/models/adult-lgbm/predict"
# the clock, the fresh id and the server's own address differ from call to call
_VARYING = {"date", "x-request-id", "location"}


def _raw_routes(app: Any) -> _RawRoutes:
    layer = app.front
    while not isinstance(layer, _RawRoutes):
        layer = layer.app
    return layer


@pytest.fixture(scope="module")
def servers(serve_ws: Workspace) -> Iterator[tuple[ServerThread, ServerThread, list[str]]]:
    """The same server twice: with the raw route (its calls counted) and without it."""
    logging.getLogger("forgeml.serve.access").setLevel(logging.INFO)
    options = {"models": ("adult-lgbm@production",), "max_body_bytes": 4096, "access_log": True}
    raw, framework = ServerThread(serve_ws, **options), ServerThread(serve_ws, **options)
    calls: list[str] = []
    routes = _raw_routes(raw.app)
    assert [r.prefix + "{name}" + r.suffix for r in routes.routes] == ["/v1/models/{name}/predict"]

    def counted(route: RawRoute) -> RawRoute:
        async def endpoint(scope: Any, receive: Any, send: Any, name: str) -> None:
            calls.append(name)
            await route.endpoint(scope, receive, send, name)

        return RawRoute(route.method, route.prefix, route.suffix, endpoint)

    routes.routes = tuple(counted(r) for r in routes.routes)
    _raw_routes(framework.app).routes = ()
    with raw, framework:
        yield raw, framework, calls


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in _VARYING}
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, headers, body


def _both(servers: Any, method: str, path: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
    raw, framework, _ = servers
    answers = []
    content = kwargs.get("content")
    for server in (raw, framework):
        if callable(content):  # a fresh stream for each server
            kwargs = {**kwargs, "content": content()}
        answers.append(httpx.request(method, server.url + path, timeout=30, **kwargs))
    assert _answer(answers[0]) == _answer(answers[1]), (answers[0].text, answers[1].text)
    return _answer(answers[0]), answers[0]


def test_predictions_and_refusals_are_the_frameworks(servers: Any, adult: pd.DataFrame) -> None:
    _, _, calls = servers
    one = {"records": records(adult, 1)}
    five = {"columns": pd.DataFrame(records(adult, 5)).to_dict(orient="list")}
    body = json.dumps(one).encode()
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", PATH, {"json": one}, 200),
        ("POST", PATH, {"json": five}, 200),
        ("POST", PATH + "?probabilities=false", {"json": one}, 200),
        ("POST", PATH + "?probabilities=OFF&x=1", {"json": one}, 200),
        ("POST", PATH + "?probabilities=maybe", {"json": one}, 422),
        ("POST", PATH, {"json": {**one, "key": "user-7"}}, 200),
        ("POST", PATH, {"json": {**one, "extra": 1}}, 400),
        ("POST", PATH, {"json": {"records": [{"age": "old"}]}}, 422),
        ("POST", PATH, {"content": b"{not json", "headers": {"content-type": "text/plain"}}, 400),
        ("POST", PATH, {"content": b""}, 400),
        ("POST", PATH, {"content": b"x" * 5000}, 413),
        (
            "POST",
            PATH,
            {"content": gzip.compress(body), "headers": {"content-encoding": "gzip"}},
            200,
        ),
        ("POST", PATH, {"content": body, "headers": {"content-encoding": "br"}}, 415),
        (
            "POST",
            PATH,
            {"content": gzip.compress(b" " * 9000 + body), "headers": {"content-encoding": "gzip"}},
            413,
        ),
        ("POST", PATH, {"content": lambda: iter([body[:10], body[10:]])}, 200),  # chunked
        ("POST", PATH, {"content": lambda: iter([b"x" * 3000, b"x" * 3000])}, 413),
        ("POST", PATH, {"json": one, "headers": {"x-request-id": "raw-routes-1"}}, 200),
        ("POST", PATH, {"json": one, "headers": {"x-request-id": "not valid!"}}, 200),
        ("POST", PATH, {"json": one, "headers": {"x-routing-key": "user-7"}}, 200),
        ("POST", "/v1/models/nope/predict", {"json": one}, 404),
        ("POST", "/v1/models/adult-lgbm/predict/", {"json": one}, None),
        ("POST", "/v1/models/a%2Fb/predict", {"json": one}, 404),
        ("POST", "/v1/models//predict", {"json": one}, 404),
        ("GET", PATH, {}, 405),
        ("PUT", PATH, {"json": one}, 405),
    ]
    for method, path, kwargs, status in cases:
        (code, headers, answer), response = _both(servers, method, path, **kwargs)
        where = f"{method} {path} {kwargs.get('headers')}: {code} {answer}"
        if status is not None:
            assert code == status, where
        if code == 200:
            given = (kwargs.get("headers") or {}).get("x-request-id")
            expected = given if given == "raw-routes-1" else response.json()["request_id"]
            assert response.headers["x-request-id"] == expected, where
            assert headers["content-type"] == "application/json"
            assert ("probabilities" in answer) == ("probabilities=" not in path), where
    # every well-formed predict path of a model came through the raw route
    assert calls.count("adult-lgbm") == sum(
        1 for method, path, _, _ in cases if method == "POST" and path.startswith(PATH + "?")
    ) + sum(1 for method, path, _, _ in cases if method == "POST" and path == PATH)
    assert calls.count("nope") == 1 and len(calls) == calls.count("adult-lgbm") + 1


def test_the_access_log_and_the_prediction_log_see_the_same_requests(
    servers: Any, adult: pd.DataFrame, serve_ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    raw, framework, _ = servers
    one = {"records": records(adult, 1, start=3)}
    ids = []
    with caplog.at_level(logging.INFO, logger="forgeml.serve.access"):
        for server in (raw, framework):
            response = httpx.post(
                server.url + PATH, json=one, headers={"x-request-id": "raw-routes-2"}
            )
            assert response.status_code == 200
            ids.append(response.json()["request_id"])
            refused = httpx.post(server.url + PATH + "?probabilities=2", json=one)
            assert refused.status_code == 422
        for server in (raw, framework):
            server.app.state.serving.service.log.flush(timeout=10.0)
        deadline = time.monotonic() + 10
        lines: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            lines = [
                json.loads(line)
                for r in caplog.records
                if r.name == "forgeml.serve.access"
                for line in r.getMessage().splitlines()
            ]
            refusals = [line for line in lines if line["status"] == 422]
            if sum(1 for line in lines if line.get("request_id") in ids) == 2 and refusals[1:]:
                break
            time.sleep(0.05)
    logged = {line["request_id"]: line for line in lines if line.get("request_id") in ids}
    assert set(logged) == set(ids)
    shapes = [
        {k: v for k, v in logged[i].items() if k not in ("time", "ms", "request_id")} for i in ids
    ]
    assert (
        shapes[0]
        == shapes[1]
        == {
            "method": "POST",
            "path": PATH,
            "status": 200,
            "client": "127.0.0.1",
            "model": "adult-lgbm",
            "version": 1,
        }
    )
    assert [line["path"] for line in lines if line["status"] == 422] == [PATH, PATH]
    stored = serve_ws.predlog.predictions("adult-lgbm")
    mine = stored[stored["request_id"].isin(ids)]
    assert len(mine) == 2
