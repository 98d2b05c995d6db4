"""The live server fuzzed over HTTP on 127.0.0.1: schemathesis generates requests for every
operation of the server's own /openapi.json, and Hypothesis posts arbitrary JSON documents and
bytes at the three predict endpoints. No request may get a 5xx; every 4xx carries a JSON error."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forgeml as fm

from .conftest import ServerThread, records

MODELS = ("adult-lgbm", "adult-hgb")
PREDICT_PATHS = (
    "/v1/models/adult-lgbm/predict",
    "/invocations",
    "/v2/models/adult-lgbm/infer",
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Path parameters are mostly the served names and versions (a made-up name only ever reaches
# the 404), sometimes whatever schemathesis generates.
SCHEMATHESIS_CONFIG = """
[dictionaries.served]
values = ["adult-lgbm", "adult-hgb"]

[dictionaries.versions]
values = [1, 2]

[parameters]
"path.name" = { dictionary = "served", probability = 0.8 }
"path.version" = { dictionary = "versions", probability = 0.8 }
"""
# Checks left out, each for a stated reason:
# - positive_data_acceptance: a body that fits the description may still not fit the model
#   (the description cannot list the model's columns and categories), and is rightly refused.
# - status_code_conformance: the routes without a request body keep FastAPI's generated list of
#   responses (200, 422), which does not name their 404 for a model that is not served.
# - allow_header_conformance: PUT and DELETE of /admin/models/{name}/route are two Starlette
#   routes, and a 405 from the router names the methods of the first one only.
EXCLUDED_CHECKS = "positive_data_acceptance,status_code_conformance,allow_header_conformance"


@pytest.fixture(scope="module")
def fuzz_server(serve_ws) -> Iterator[ServerThread]:
    """A server of its own: fuzzed admin requests may store routes and move aliases, undone
    afterwards so that no other test inherits them."""
    try:
        with ServerThread(serve_ws, models=("adult-lgbm@production", "adult-hgb@1")) as s:
            yield s
    finally:
        stored = serve_ws.routing.routes()
        for name in MODELS:
            if name in stored:
                serve_ws.routing.clear_route(name)
        fm.registry.promote("adult-lgbm", 1, workspace=serve_ws)  # as the session fixture set it


def test_schemathesis_finds_no_failure_in_any_operation(
    fuzz_server: ServerThread, tmp_path: Path
) -> None:
    spec = httpx.get(f"{fuzz_server.url}/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{fuzz_server.url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        # The description declares no links between operations, so the stateful phase would
        # only replay inferred sequences of the same requests.
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "20",
        "--seed",
        "20240601",
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert f"Tested: {operations}" in output, output  # every operation, none skipped


# -- Hypothesis at the predict endpoints ------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
_KEYS = st.sampled_from(
    [
        "records",
        "columns",
        "key",
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs",
        "params",
        "outputs",
        "data",
        "index",
        "name",
        "shape",
        "datatype",
        "parameters",
        "binary_data_size",
        "binary_data_output",
        "age",
        "workclass",
    ]
) | st.text(max_size=6)
_DATATYPES = st.sampled_from(["BOOL", "INT64", "UINT8", "FP32", "FP64", "BYTES", "BF16"])
_DOCUMENTS = st.recursive(
    _SCALARS | _DATATYPES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=40,
)
_CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/csv",
        "application/octet-stream",
        "text/plain",
    ]
)
_HEADER_LENGTHS = st.none() | st.integers(min_value=0, max_value=300).map(str)


def _assert_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert response.json()["error"], response.text


@pytest.fixture(scope="module")
def client(fuzz_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server.url, timeout=30) as c:
        yield c


@given(
    path=st.sampled_from(PREDICT_PATHS),
    document=_DOCUMENTS,
    content_type=_CONTENT_TYPES,
    header_length=_HEADER_LENGTHS,
)
@FUZZ
def test_random_json_never_gets_a_server_error(
    client: httpx.Client,
    path: str,
    document: Any,
    content_type: str,
    header_length: str | None,
) -> None:
    headers = {"content-type": content_type}
    if header_length is not None:
        headers["inference-header-content-length"] = header_length
    body = json.dumps(document, allow_nan=True).encode()
    _assert_answer(client.post(path, content=body, headers=headers))


@given(
    path=st.sampled_from(PREDICT_PATHS),
    body=st.binary(max_size=300),
    content_type=_CONTENT_TYPES,
    header_length=_HEADER_LENGTHS,
    encoding=st.sampled_from([None, "gzip", "deflate", "br"]),
)
@FUZZ
def test_random_bytes_never_get_a_server_error(
    client: httpx.Client,
    path: str,
    body: bytes,
    content_type: str,
    header_length: str | None,
    encoding: str | None,
) -> None:
    headers = {"content-type": content_type}
    if header_length is not None:
        headers["inference-header-content-length"] = header_length
    if encoding is not None:
        headers["content-encoding"] = encoding
    _assert_answer(client.post(path, content=body, headers=headers))


@given(
    changes=st.lists(
        st.dictionaries(st.sampled_from(["age", "workclass", "hours_per_week"]), _SCALARS),
        min_size=1,
        max_size=3,
    ),
    protocol=st.sampled_from(["native", "mlflow", "v2"]),
)
@FUZZ
def test_real_rows_with_random_values_never_get_a_server_error(
    client: httpx.Client, adult, changes: list[dict[str, Any]], protocol: str
) -> None:
    # Whole rows of real data reach validation and the model, unlike most random documents.
    base = records(adult, 1, start=3)[0]
    rows = [{**base, **change} for change in changes]
    matrix = [list(row.values()) for row in rows]
    if protocol == "native":
        path, document = PREDICT_PATHS[0], {"records": rows}
    elif protocol == "mlflow":
        path, document = (
            PREDICT_PATHS[1],
            {"dataframe_split": {"columns": list(base), "data": matrix}},
        )
    else:
        tensor = {
            "name": "rows",
            "datatype": "BYTES",
            "shape": [len(rows), len(base)],
            "data": matrix,
        }
        path, document = PREDICT_PATHS[2], {"inputs": [tensor]}
    response = client.post(
        path,
        content=json.dumps(document, allow_nan=True),
        headers={"content-type": "application/json"},
    )
    _assert_answer(response)
