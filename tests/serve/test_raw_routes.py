"""The prediction routes served in front of the framework (``RawRoute``: the native ``predict``,
MLflow's two invocation routes, the two v2 ``infer`` routes) answer every request exactly as the
same routes through Starlette's router do: two real servers on 127.0.0.1, one with the raw
routes and one without, asked the same requests (answers in every accepted format, refusals,
headers, compressed and streamed bodies, the access log and the prediction log)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from forgeml.serve._app import _RawRoutes
from forgeml.serve._http import RawRoute
from forgeml.store import Workspace
from forgeml.store._schema import predictions as predictions_table

from .conftest import ServerThread, records

PATH = "/v1/models/adult-lgbm/predict"
INVOCATIONS = "/invocations"
NAMED = "/v1/models/adult-lgbm/invocations"
INFER = "/v2/models/adult-lgbm/infer"
INFER_ONE = "/v2/models/adult-lgbm/versions/1/infer"
RAW_PATHS = [
    "/v1/models/{name}/predict",
    "/invocations",
    "/v1/models/{name}/invocations",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
]
# the clock, the fresh id and the server's own address differ from call to call
_VARYING = {"date", "x-request-id", "location"}


def _raw_routes(app: Any) -> _RawRoutes:
    layer = app.front
    while not isinstance(layer, _RawRoutes):
        layer = layer.app
    return layer


@pytest.fixture(scope="module")
def servers(
    serve_ws: Workspace,
) -> Iterator[tuple[ServerThread, ServerThread, list[tuple[str, tuple[str, ...]]]]]:
    """The same server twice: with the raw routes (their calls counted) and without them."""
    logging.getLogger("forgeml.serve.access").setLevel(logging.INFO)
    options = {"models": ("adult-lgbm@production",), "max_body_bytes": 4096, "access_log": True}
    raw, framework = ServerThread(serve_ws, **options), ServerThread(serve_ws, **options)
    calls: list[tuple[str, tuple[str, ...]]] = []
    routes = _raw_routes(raw.app)
    assert [r.path for r in routes.routes] == RAW_PATHS

    def counted(route: RawRoute) -> RawRoute:
        async def endpoint(scope: Any, receive: Any, send: Any, parameters: Any) -> None:
            calls.append((route.path, parameters))
            await route.endpoint(scope, receive, send, parameters)

        return dataclasses.replace(route, endpoint=endpoint)

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
        if not str(body.get("id", "raw-routes-")).startswith("raw-routes-"):
            body.pop("id")  # v2 answers with the logged id when the request gave none
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
    calls.clear()
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
    predicted = [parameters for path, parameters in calls if path == RAW_PATHS[0]]
    assert predicted.count(("adult-lgbm",)) == sum(
        1 for method, path, _, _ in cases if method == "POST" and path.startswith(PATH + "?")
    ) + sum(1 for method, path, _, _ in cases if method == "POST" and path == PATH)
    assert (
        predicted.count(("nope",)) == 1 and len(predicted) == predicted.count(("adult-lgbm",)) + 1
    )


@pytest.mark.parametrize("protocol", ["native", "mlflow", "v2"])
def test_the_access_log_and_the_prediction_log_see_the_same_requests(
    servers: Any,
    adult: pd.DataFrame,
    serve_ws: Workspace,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    raw, framework, _ = servers
    rows = records(adult, 1, start=3)
    if protocol == "native":
        path, sent = PATH, {"json": {"records": rows}, "headers": {"x-request-id": "raw-routes-2"}}
        refused_path, refused = PATH + "?probabilities=2", {"json": {"records": rows}}
    elif protocol == "mlflow":
        path, sent = INVOCATIONS, {"json": {"dataframe_records": rows}}
        refused_path, refused = INVOCATIONS, {"json": {"dataframe_records": [{"age": "old"}]}}
    else:
        metadata = httpx.get(raw.url + "/v2/models/adult-lgbm").json()
        path, sent = INFER_ONE, {"json": {"inputs": _tensors(pd.DataFrame(rows), metadata)}}
        refused_path, refused = "/v2/models/adult-lgbm/versions/one/infer", sent
    ids = []
    with caplog.at_level(logging.INFO, logger="forgeml.serve.access"):
        for server in (raw, framework):
            response = httpx.post(server.url + path, **sent)
            assert response.status_code == 200
            # the logged id: the native answer's, else the X-Request-ID of a request without one
            ids.append(response.json().get("request_id") or response.headers["x-request-id"])
            assert httpx.post(server.url + refused_path, **refused).status_code == 422
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
            "path": path,
            "status": 200,
            "client": "127.0.0.1",
            "model": "adult-lgbm",
            "version": 1,
        }
    )
    refusals = [line for line in lines if line["status"] == 422]
    refused_path = refused_path.partition("?")[0]  # the access log writes the path alone
    assert [line["path"] for line in refusals] == [refused_path, refused_path]
    assert [line.get("model") for line in refusals] == [None, None]
    stored = serve_ws.predlog.predictions("adult-lgbm")
    mine = stored[stored["request_id"].isin(ids)].set_index("request_id").loc[ids]
    assert len(mine) == 2
    alike = [c for c in mine.columns if c not in ("time_ms", "latency_ms")]
    assert mine.iloc[0][alike].equals(mine.iloc[1][alike])  # NaN equal to NaN
    table = predictions_table
    with serve_ws.db.transaction(write=False) as conn:
        logged_as = conn.execute(
            sa.select(table.c.protocol).where(table.c.request_id.in_(ids))
        ).scalars()
        assert list(logged_as) == [protocol, protocol]


def _check(servers: Any, cases: list[tuple[str, str, dict[str, Any], int | None]]) -> None:
    """Each case answered alike by both servers, with the status given (``None``: any)."""
    for method, path, kwargs, status in cases:
        (code, headers, answer), response = _both(servers, method, path, **kwargs)
        where = f"{method} {path} {kwargs.get('headers')}: {code} {answer}"
        if status is not None:
            assert code == status, where
        if code == 200:
            given = (kwargs.get("headers") or {}).get("x-request-id")
            assert response.headers["x-request-id"] == (given or response.headers["x-request-id"])
            assert headers["content-type"] in ("application/json", "application/octet-stream")
        elif code >= 400 and path.startswith("/v2/"):
            assert isinstance(answer["error"], str) and answer["field"], where
        elif code >= 400:
            assert answer["error"]["field"], where  # every refusal names what it refuses


def _raw_calls(calls: list[tuple[str, tuple[str, ...]]], *paths: str) -> list[tuple[str, ...]]:
    return [parameters for path, parameters in calls if path in paths]


def test_mlflow_answers_and_refusals_are_the_frameworks(servers: Any, adult: pd.DataFrame) -> None:
    _, _, calls = servers
    calls.clear()
    rows = records(adult, 3)
    frame = pd.DataFrame(rows)
    names = list(frame.columns)
    matrix = frame.to_numpy().tolist()
    split = {"columns": names, "data": matrix}
    body = json.dumps({"dataframe_records": rows}).encode()
    csv = frame.to_csv(index=False).encode()
    csv_type = {"content-type": "text/csv"}
    forms: list[dict[str, Any]] = [
        {"dataframe_split": split},
        {"dataframe_split": {**split, "index": [7, 8, 9]}},
        {"dataframe_split": {"data": matrix}},  # by position onto the model's columns
        {"dataframe_records": rows},
        {"dataframe_records": [rows[0], {k: v for k, v in rows[1].items() if k != "age"}]},
        {"instances": rows},
        {"instances": frame.to_dict(orient="list")},
        {"instances": rows[0]},  # one row
        {"instances": matrix},
        {"inputs": rows},
        {"inputs": frame.to_dict(orient="list")},
        {"inputs": rows[0]},
        {"inputs": matrix},
        {"dataframe_records": rows, "params": {"anything": 1}},
    ]
    cases: list[tuple[str, str, dict[str, Any], int | None]] = [
        ("POST", INVOCATIONS, {"json": form}, None) for form in forms
    ]
    cases += [("POST", NAMED, {"json": form}, None) for form in forms[:4]]
    refusals: list[tuple[dict[str, Any], int]] = [
        ({"json": {"dataframe_records": rows, "instances": rows}}, 400),
        ({"json": {"rows": rows}}, 400),
        ({"json": [rows]}, 400),
        ({"json": {"dataframe_split": {**split, "extra": 1}}}, 400),
        ({"json": {"dataframe_split": {**split, "columns": "age"}}}, 400),
        ({"json": {"dataframe_split": {**split, "columns": [*names[:-1], names[0]]}}}, 400),
        ({"json": {"dataframe_split": {**split, "index": [1]}}}, 400),
        ({"json": {"dataframe_split": {"columns": names}}}, 400),
        ({"json": {"dataframe_split": {"columns": names, "data": {"a": 1}}}}, 400),
        ({"json": {"dataframe_records": [{"age": "old"}]}}, 422),
        ({"json": {"instances": []}}, 400),
        ({"content": body}, 415),  # no Content-Type
        ({"content": body, "headers": {"content-type": "text/plain"}}, 415),
        ({"content": body, "headers": {"content-type": "application/json; charset=latin-1"}}, 415),
        ({"content": body, "headers": {"content-type": "application/json; format=pandas"}}, 415),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"x" * 5000, "headers": {"content-type": "application/json"}}, 413),
        ({"content": "é,b\n1,2".encode("latin-1"), "headers": csv_type}, 400),
        ({"content": b"\n\n", "headers": csv_type}, 400),
        ({"content": csv.split(b"\n")[0] + b"\n", "headers": csv_type}, 400),
        ({"content": csv + b"1,2\n", "headers": csv_type}, 400),
        ({"content": b'a,"b\n1', "headers": csv_type}, 400),
        ({"content": b"a,a\n1,2\n", "headers": csv_type}, 400),
    ]
    cases += [("POST", INVOCATIONS, kwargs, status) for kwargs, status in refusals]
    json_type = {"content-type": "application/json"}
    cases += [
        ("POST", INVOCATIONS, {"content": csv, "headers": csv_type}, 200),
        (
            "POST",
            INVOCATIONS,
            {"content": csv, "headers": {"content-type": "text/csv; charset=utf-8"}},
            200,
        ),
        (
            "POST",
            INVOCATIONS,
            {"content": csv.replace(b",Private,", b",NA,", 1), "headers": csv_type},
            None,
        ),
        ("POST", NAMED, {"content": csv, "headers": csv_type}, 200),
        (
            "POST",
            INVOCATIONS,
            {"content": gzip.compress(body), "headers": {**json_type, "content-encoding": "gzip"}},
            200,
        ),
        (
            "POST",
            INVOCATIONS,
            {"content": body, "headers": {**json_type, "content-encoding": "br"}},
            415,
        ),
        (
            "POST",
            INVOCATIONS,
            {"content": lambda: iter([body[:10], body[10:]]), "headers": json_type},
            200,
        ),
        ("POST", INVOCATIONS, {"json": forms[3], "headers": {"x-request-id": "raw-routes-1"}}, 200),
        ("POST", INVOCATIONS, {"json": forms[3], "headers": {"x-routing-key": "user-7"}}, 200),
        ("POST", "/v1/models/nope/invocations", {"json": forms[3]}, 404),
        ("POST", "/v1/models//invocations", {"json": forms[3]}, 404),
        ("POST", "/invocations/", {"json": forms[3]}, None),
        ("GET", INVOCATIONS, {}, 405),
        ("PUT", NAMED, {"json": forms[3]}, 405),
    ]
    _check(servers, cases)
    answered = _raw_calls(calls, "/invocations", "/v1/models/{name}/invocations")
    posted = [path for method, path, _, _ in cases if method == "POST"]
    assert len(answered) == len(posted) - 2  # not: an empty segment, a trailing slash
    assert answered.count(()) == posted.count(INVOCATIONS)
    assert answered.count(("adult-lgbm",)) == posted.count(NAMED)


def _tensors(frame: pd.DataFrame, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """One JSON tensor per column, typed as the model's metadata says."""
    types = {t["name"]: t["datatype"] for t in metadata["inputs"]}
    return [
        {"name": c, "datatype": types[c], "shape": [len(frame)], "data": frame[c].tolist()}
        for c in frame.columns
    ]


def _binary_request(frame: pd.DataFrame, metadata: dict[str, Any]) -> tuple[bytes, str]:
    """Triton's binary form: every tensor's data after the JSON header; and the header's length."""
    inputs, raws = [], []
    for tensor in _tensors(frame, metadata):
        values = tensor.pop("data")
        if tensor["datatype"] == "BYTES":
            raw = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
        else:
            raw = struct.pack(f"<{len(values)}q", *values)
        tensor["parameters"] = {"binary_data_size": len(raw)}
        inputs.append(tensor)
        raws.append(raw)
    header = json.dumps({"id": "raw-routes-binary", "inputs": inputs}).encode()
    return header + b"".join(raws), str(len(header))


def test_v2_answers_and_refusals_are_the_frameworks(servers: Any, adult: pd.DataFrame) -> None:
    raw, _, calls = servers
    calls.clear()
    frame = pd.DataFrame(records(adult, 3))
    assert not frame.isna().any().any()
    metadata = httpx.get(raw.url + "/v2/models/adult-lgbm").json()
    tensors = _tensors(frame, metadata)
    request = {"inputs": tensors}
    kserve = {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "BYTES",
                "shape": list(frame.shape),
                "data": [[str(v) for v in row] for row in frame.to_numpy().tolist()],
            }
        ]
    }
    body = json.dumps(request).encode()
    binary, length = _binary_request(frame, metadata)
    binary_headers = {"inference-header-content-length": length}
    forms: list[dict[str, Any]] = [
        request,
        {**request, "id": "raw-routes-v2"},
        {**request, "outputs": [{"name": "predict_proba"}]},
        {**request, "outputs": [{"name": "predict"}, {"name": "predict_proba"}]},
        {**request, "id": "raw-routes-v2b", "parameters": {"binary_data_output": True}},
        {
            **request,
            "id": "raw-routes-v2c",
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        },
        kserve,
    ]
    cases: list[tuple[str, str, dict[str, Any], int | None]] = [
        ("POST", path, {"json": form}, 200) for path in (INFER, INFER_ONE) for form in forms
    ]
    wrong_age = [
        {**t, "data": ["old"] * 3, "datatype": "BYTES"} if t["name"] == "age" else t
        for t in tensors
    ]
    refusals: list[tuple[dict[str, Any], int]] = [
        ({"json": {"inputs": tensors[1:]}}, 422),  # a column missing
        ({"json": {"inputs": wrong_age}}, 422),
        ({"json": {"inputs": [{**tensors[0], "shape": [2]}, *tensors[1:]]}}, 400),
        ({"json": {**request, "outputs": [{"name": "nope"}]}}, 400),
        ({"json": {**request, "id": 7}}, 400),
        ({"json": {**request, "parameters": {"binary_data_output": "yes"}}}, 400),
        ({"json": {"inputs": []}}, 400),
        ({"json": {**kserve, "inputs": [{**kserve["inputs"][0], "shape": [3, 2]}]}}, 400),
        ({"content": b"{not json"}, 400),
        ({"content": b"x" * 5000}, 413),
        ({"content": body, "headers": {"content-encoding": "br"}}, 415),
        ({"content": binary}, 400),  # binary data without its header's length
        ({"content": binary, "headers": {"inference-header-content-length": "x"}}, 400),
        ({"content": binary, "headers": {"inference-header-content-length": "99999"}}, 400),
    ]
    cases += [("POST", INFER, kwargs, status) for kwargs, status in refusals]
    cases += [
        ("POST", INFER, {"content": binary, "headers": binary_headers}, 200),
        ("POST", INFER_ONE, {"content": binary, "headers": binary_headers}, 200),
        (
            "POST",
            INFER,
            {"content": gzip.compress(body), "headers": {"content-encoding": "gzip"}},
            200,
        ),
        ("POST", INFER, {"content": lambda: iter([body[:10], body[10:]])}, 200),
        ("POST", INFER, {"json": request, "headers": {"x-request-id": "raw-routes-1"}}, 200),
        ("POST", INFER, {"json": request, "headers": {"x-routing-key": "user-7"}}, 200),
        ("POST", "/v2/models/adult-lgbm/versions/2/infer", {"json": request}, 404),
        ("POST", "/v2/models/adult-lgbm/versions/latest/infer", {"json": request}, 422),
        (
            "POST",
            "/v2/models/adult-lgbm/versions/1234567890123456789/infer",
            {"json": request},
            422,
        ),
        ("POST", "/v2/models/adult-lgbm/versions/-1/infer", {"json": request}, 404),
        ("POST", "/v2/models/nope/infer", {"json": request}, 404),
        ("POST", "/v2/models/nope/versions/1/infer", {"json": request}, 404),
        ("POST", "/v2/models//infer", {"json": request}, 404),
        ("POST", "/v2/models/adult-lgbm/versions//infer", {"json": request}, 404),
        ("POST", INFER + "/", {"json": request}, None),
        ("GET", INFER, {}, 405),
        ("PUT", INFER_ONE, {"json": request}, 405),
    ]
    _check(servers, cases)
    answered = _raw_calls(calls, RAW_PATHS[3], RAW_PATHS[4])
    posted = [path for method, path, _, _ in cases if method == "POST"]
    assert len(answered) == len(posted) - 3  # not: two empty segments, a trailing slash
    assert answered.count(("adult-lgbm",)) == posted.count(INFER)
    assert answered.count(("adult-lgbm", "1")) == posted.count(INFER_ONE)
