"""The prediction server over real HTTP on 127.0.0.1: native protocol, validation, batching,
caching, routing, shadows, version switches, the prediction log, feedback, operations."""

from __future__ import annotations

import concurrent.futures as cf
import json
import re
import time

import httpx
import numpy as np
import pytest

import forgeml as fm
from forgeml.serve._runners import BoosterRunner

from .conftest import TARGET, ServerThread, records


def _predict(url: str, name: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{name}/predict", json=body, timeout=30, **kw)


@pytest.mark.parametrize("name", ["adult-lgbm", "adult-hgb"])
def test_native_predictions_equal_the_registry_model(server, serve_ws, adult, name):
    rows = records(adult, 300, start=100)
    response = _predict(server.url, name, {"records": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    ref = "adult-lgbm@production" if name == "adult-lgbm" else "adult-hgb@1"
    model = fm.load(ref, workspace=serve_ws)
    frame = adult.drop(columns=[TARGET]).iloc[100:400]
    assert body["model"] == name and body["version"] == model.version
    assert body["predictions"] == model.predict(frame).tolist()
    np.testing.assert_allclose(
        body["probabilities"], model.predict_proba(frame), rtol=0, atol=1e-12
    )
    assert body["classes"] == list(model.classes)
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    # the columns form gives the same answer
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    again = _predict(server.url, name, {"columns": columns}).json()
    assert again["predictions"] == body["predictions"]


def test_lightgbm_models_use_the_booster_fast_path(server):
    entry = server.state.entries["adult-lgbm"]
    assert isinstance(entry.primary.runner, BoosterRunner)
    assert not isinstance(server.state.entries["adult-hgb"].primary.runner, BoosterRunner)


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda r: r.pop("age"), 422, "age"),
        (lambda r: r.update(age="old"), 422, "age"),
        (lambda r: r.update(age=True), 422, "age"),
        (lambda r: r.update(age=None), 422, "age"),
        (lambda r: r.update(workclass="Astronaut"), 422, "workclass"),
        (lambda r: r.update(hours_per_week=[40]), 400, "records[0].hours_per_week"),
        (lambda r: r.update(sex={"a": 1}), 400, "records[0].sex"),
    ],
)
def test_bad_rows_get_a_4xx_naming_the_column(server, adult, mutate, status, field):
    row = records(adult, 1)[0]
    mutate(row)
    response = _predict(server.url, "adult-lgbm", {"records": [row]})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert field.rsplit(".", 1)[-1] in error["message"]


def test_numbers_as_text_and_extra_columns_are_accepted(server, adult):
    row = records(adult, 1)[0]
    expected = _predict(server.url, "adult-lgbm", {"records": [row]}).json()["predictions"]
    row = {**row, "age": str(row["age"]), "unused": 1}
    response = _predict(server.url, "adult-lgbm", {"records": [row]})
    assert response.status_code == 200
    assert response.json()["predictions"] == expected


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        (b"", 400, "body"),
        (b"not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (b'{"records": []}', 400, None),
        (b'{"columns": {"age": [1, 2], "sex": ["Male"]}}', 400, None),
    ],
)
def test_malformed_bodies_get_a_400(server, content, status, field):
    response = httpx.post(
        f"{server.url}/v1/models/adult-lgbm/predict",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field:
        assert error["field"] == field


def test_oversized_requests_get_a_413(serve_ws, adult):
    with ServerThread(serve_ws, models=("adult-lgbm@1",), max_rows=50) as s:
        response = _predict(s.url, "adult-lgbm", {"records": records(adult, 51)})
        assert response.status_code == 413
        assert response.json()["error"]["field"] == "body"
        big = b'{"records": [' + b"0," * 9_000_000 + b"0]}"
        response = httpx.post(f"{s.url}/v1/models/adult-lgbm/predict", content=big)
        assert response.status_code == 413


def test_unknown_model_and_path_are_404_json(server):
    response = _predict(server.url, "nope", {"records": [{"a": 1}]})
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "model"
    assert httpx.get(f"{server.url}/nowhere").json()["error"]["code"] == "not_found"


def test_concurrent_requests_are_batched(server, serve_ws, adult):
    rows = records(adult, 200)
    state = server.state
    batcher = state.entries["adult-lgbm"].primary.batcher
    batches_before, rows_before = batcher.batches, batcher.rows
    model = fm.load("adult-lgbm@production", workspace=serve_ws)
    expected = model.predict(adult.drop(columns=[TARGET]).iloc[:200]).tolist()
    with httpx.Client(timeout=30) as client, cf.ThreadPoolExecutor(32) as pool:
        answers = list(
            pool.map(
                lambda r: client.post(
                    f"{server.url}/v1/models/adult-lgbm/predict", json={"records": [r]}
                ).json()["predictions"][0],
                rows,
            )
        )
    assert answers == expected  # every request got its own row's answer
    batches = batcher.batches - batches_before
    assert batcher.rows - rows_before == 200
    assert batches < 200  # some requests shared a batch


def test_prediction_cache_counts_hits_and_misses(serve_ws, adult):
    with ServerThread(serve_ws, models=("adult-lgbm@2",), cache_size=100) as s:
        row = records(adult, 1, start=7)[0]
        first = _predict(s.url, "adult-lgbm", {"records": [row]}).json()
        swapped = dict(reversed(list(row.items())))
        swapped["age"] = float(swapped["age"])  # same canonical row
        second = _predict(s.url, "adult-lgbm", {"records": [swapped]}).json()
        assert first["probabilities"] == second["probabilities"]
        cache = s.state.entries["adult-lgbm"].primary.cache
        assert (cache.hits, cache.misses) == (1, 1)
        text = httpx.get(f"{s.url}/metrics").text
        assert (
            'forgeml_cache_lookups_total{model="adult-lgbm",result="hit",version="2"} 1.0' in text
        )


def test_a_canary_route_is_applied_live_and_keys_follow_the_routing_table(serve_ws, adult):
    # The split's proportions are tested on the routing object (test_routing.py); here: the
    # route set through the admin endpoint is what answers, key by key.
    row = records(adult, 1)[0]
    with ServerThread(serve_ws, models=("adult-lgbm@production",)) as s:
        response = httpx.put(
            f"{s.url}/admin/models/adult-lgbm/route",
            json={"split": {"production": 80, "2": 20}},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert response.json()["route"]["split"] == {"1": 0.8, "2": 0.2}
        table = s.state.entries["adult-lgbm"]
        seen = set()
        with httpx.Client(timeout=30) as client:
            for i in range(40):
                key = f"customer-{i}"
                answer = client.post(
                    f"{s.url}/v1/models/adult-lgbm/predict", json={"records": [row], "key": key}
                ).json()
                assert answer["version"] == table.choose(key)[0].version
                seen.add(answer["version"])
                again = client.post(
                    f"{s.url}/v1/models/adult-lgbm/predict",
                    json={"records": [row]},
                    headers={"x-routing-key": key},
                ).json()
                assert again["version"] == answer["version"]  # the header routes the same way
        assert seen == {1, 2}
        assert httpx.delete(f"{s.url}/admin/models/adult-lgbm/route").status_code == 200
        assert _predict(s.url, "adult-lgbm", {"records": [row]}).json()["version"] == 1


def test_bad_routes_are_refused_naming_the_field(server):
    for config, word in [
        ({"split": {"9": 100}}, "9"),
        ({"split": {"1": -5}}, "split"),
        ({"split": {"1": 1}, "shadow": {"version": 2, "fraction": 3}}, "fraction"),
        ({"weights": {}}, "weights"),
    ]:
        response = httpx.put(f"{server.url}/admin/models/adult-lgbm/route", json=config)
        assert 400 <= response.status_code < 500, response.text
        assert word in response.json()["error"]["message"]


def test_shadow_answers_are_logged_never_returned(serve_ws, adult):
    with ServerThread(serve_ws, models=("adult-lgbm@1",)) as s:
        response = httpx.put(
            f"{s.url}/admin/models/adult-lgbm/route",
            json={"split": {"1": 1}, "shadow": {"version": 3, "fraction": 1.0}},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        ids = []
        for row in records(adult, 20, start=50):
            body = _predict(s.url, "adult-lgbm", {"records": [row]}).json()
            assert body["version"] == 1
            ids.append(body["request_id"])
        httpx.delete(f"{s.url}/admin/models/adult-lgbm/route", timeout=60)
    shadow = serve_ws.predlog.predictions("adult-lgbm", role="shadow")
    assert set(ids) <= set(shadow["request_id"])
    assert set(shadow.loc[shadow["request_id"].isin(ids), "version"]) == {3}


def test_alias_move_switches_versions_with_zero_failed_requests(serve_ws, adult):
    rows = records(adult, 50)
    fm.registry.promote("adult-lgbm", 1, alias="switch", workspace=serve_ws)
    with ServerThread(serve_ws, models=("adult-lgbm@switch",)) as s:
        statuses: list[int] = []
        versions: list[int] = []
        stop = time.monotonic() + 6.0
        moved = False

        def hammer(i: int) -> None:
            with httpx.Client(timeout=30) as client:
                while time.monotonic() < stop:
                    r = client.post(
                        f"{s.url}/v1/models/adult-lgbm/predict",
                        json={"records": [rows[i % len(rows)]]},
                    )
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        versions.append(r.json()["version"])

        with cf.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(hammer, i) for i in range(8)]
            time.sleep(1.5)
            fm.registry.promote("adult-lgbm", 2, alias="switch", workspace=serve_ws)
            moved = True
            for f in futures:
                f.result()
        assert moved
        assert statuses and set(statuses) == {200}, {c: statuses.count(c) for c in set(statuses)}
        assert versions[0] == 1 and versions[-1] == 2
        first_two = versions.index(2)
        assert set(versions[first_two + 200 :]) <= {2}  # switched, not flapping


def test_predictions_are_logged_and_take_feedback(serve_ws, adult):
    with ServerThread(serve_ws, models=("adult-hgb@1",)) as s:
        rows = records(adult, 3, start=200)
        body = _predict(s.url, "adult-hgb", {"records": rows}).json()
        labels = adult[TARGET].iloc[200:203].tolist()
        response = httpx.post(
            f"{s.url}/v1/feedback", json={"request_id": body["request_id"], "labels": labels}
        )
        assert response.status_code == 200, response.text
        unknown = httpx.post(f"{s.url}/v1/feedback", json={"request_id": "f" * 32, "label": "x"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["field"] == "request_id"
        wrong = httpx.post(
            f"{s.url}/v1/feedback", json={"request_id": body["request_id"], "labels": ["x"]}
        )
        assert wrong.status_code in (400, 422)
    logged = serve_ws.predlog.predictions("adult-hgb")
    mine = logged[logged["request_id"] == body["request_id"]]
    assert len(mine) == 3
    assert mine["prediction"].tolist() == body["predictions"]
    assert mine["label"].tolist() == labels
    assert mine["age"].tolist() == [r["age"] for r in rows]


def test_explain_returns_contributions_that_add_up(server, adult):
    rows = records(adult, 3, start=30)
    response = httpx.post(
        f"{server.url}/v1/models/adult-lgbm/explain", json={"records": rows}, timeout=120
    )
    assert response.status_code == 200, response.text
    body = response.json()
    contributions = np.asarray(body["contributions"])
    assert contributions.shape == (3, len(rows[0]))
    assert body["columns"] == list(rows[0])
    proba = np.asarray(
        _predict(server.url, "adult-lgbm", {"records": rows}).json()["probabilities"]
    )
    margin = contributions.sum(axis=1) + np.asarray(body["base_values"])
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), proba[:, 1], atol=1e-6)


def test_operations_endpoints(server, adult):
    assert httpx.get(f"{server.url}/health/live").json() == {"status": "live"}
    assert httpx.get(f"{server.url}/health/ready").json()["status"] == "ready"
    _predict(server.url, "adult-lgbm", {"records": records(adult, 2)})
    text = httpx.get(f"{server.url}/metrics").text
    for name in (
        "forgeml_requests_total",
        "forgeml_request_latency_seconds_bucket",
        "forgeml_batch_rows_bucket",
        "forgeml_batch_queue_depth",
        "forgeml_prediction_log_depth",
        "forgeml_prediction_log_dropped",
        "forgeml_errors_total",
        "forgeml_model_ready",
    ):
        assert name in text, name
    assert 'forgeml_model_ready{model="adult-lgbm"} 1.0' in text
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v2/models/{name}/infer" in spec["paths"]
    predict = spec["paths"]["/v1/models/{name}/predict"]["post"]
    parameters = {p["name"]: (p["in"], p["schema"]["type"]) for p in predict["parameters"]}
    assert parameters == {"name": ("path", "string"), "probabilities": ("query", "boolean")}
    assert "application/json" in predict["requestBody"]["content"]
    version = spec["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert {p["name"]: p["schema"]["type"] for p in version["parameters"]}["version"] == "integer"
    assert "/admin/models/{name}/promote" in spec["paths"]
    assert not [p for p in spec["paths"] if p.startswith("/docs")]
    assert httpx.get(f"{server.url}/docs").status_code == 200
    listed = httpx.get(f"{server.url}/v1/models").json()["models"]
    assert {m["name"] for m in listed} == {"adult-lgbm", "adult-hgb"}


def test_a_reused_request_id_gets_a_unique_log_key_and_is_kept(serve_ws, adult):
    rows = records(adult, 2, start=700)
    with ServerThread(serve_ws, models=("adult-lgbm@1",)) as s:
        answers = [
            httpx.post(
                f"{s.url}/v1/models/adult-lgbm/predict",
                json={"records": [row]},
                headers={"X-Request-ID": "client-7"},
            )
            for row in rows
        ]
        s.app.state.serving.service.log.flush(timeout=30)
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-request-id"] == "client-7"  # echoed for the caller's tracing
    keys = [a.json()["request_id"] for a in answers]
    assert len(set(keys)) == 2 and "client-7" not in keys
    logged = serve_ws.predlog.predictions("adult-lgbm", version=1)
    mine = logged[logged["request_id"].isin(keys)].set_index("request_id").loc[keys]
    assert mine["age"].tolist() == [r["age"] for r in rows]  # both requests, each its own inputs
    with serve_ws.db.transaction(write=False) as conn:
        stored = conn.exec_driver_sql(
            "SELECT request_id, outputs FROM predictions WHERE request_id IN (?, ?)", tuple(keys)
        ).all()
    assert {json.loads(o)["client_request_id"] for _, o in stored} == {"client-7"}


def test_feedback_records_who_sent_it(serve_ws, adult):
    with ServerThread(serve_ws, models=("adult-hgb@1",), admin_token="s3cret") as s:
        rows = records(adult, 1, start=900)
        body = _predict(s.url, "adult-hgb", {"records": rows}).json()
        label = adult[TARGET].iloc[900]
        response = httpx.post(
            f"{s.url}/v1/feedback",
            json={"request_id": body["request_id"], "labels": [label]},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert response.status_code == 200, response.text
    with serve_ws.db.transaction(write=False) as conn:
        who = conn.exec_driver_sql(
            "SELECT created_by FROM prediction_feedback WHERE request_id = ?", (body["request_id"],)
        ).scalar()
    assert who == "token:admin"


def test_failed_requests_are_logged_with_their_error(serve_ws, adult):
    row = records(adult, 1, start=800)[0]
    with ServerThread(serve_ws, models=("adult-lgbm@1",)) as s:
        url = f"{s.url}/v1/models/adult-lgbm/predict"
        bad_row = httpx.post(url, json={"records": [{**row, "age": "old"}]})
        malformed = httpx.post(url, content=b"{not json", headers={"X-Request-ID": "mine-1"})
        unknown = httpx.post(f"{s.url}/v1/models/nope/predict", json={"records": [row]})
        good = httpx.post(url, json={"records": [row]})
        s.app.state.serving.service.log.flush(timeout=30)
    assert (bad_row.status_code, malformed.status_code) == (422, 400)
    assert unknown.status_code == 404 and good.status_code == 200
    assert malformed.headers["x-request-id"] == "mine-1"
    keys = [bad_row.headers["x-request-id"], good.json()["request_id"]]
    with serve_ws.db.transaction(write=False) as conn:
        stored = dict(
            conn.exec_driver_sql(
                "SELECT request_id, error FROM predictions WHERE request_id IN (?, ?)",
                tuple(keys),
            ).all()
        )
        mine = conn.exec_driver_sql(
            "SELECT error, n_rows, version FROM predictions WHERE outputs LIKE ?",
            ('%"client_request_id":"mine-1"%',),
        ).all()
    assert stored == {keys[0]: "schema_mismatch", keys[1]: None}
    assert [tuple(r) for r in mine] == [("invalid_input", 0, 1)]
    # failed requests are not predictions: readers of the log do not see them
    assert keys[0] not in set(serve_ws.predlog.predictions("adult-lgbm")["request_id"])
