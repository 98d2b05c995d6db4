"""The MLflow scoring protocol and the Open Inference Protocol v2 over real HTTP on 127.0.0.1,
driven by each protocol's own client (MLflow's ``ScoringServerClient``, Triton's
``tritonclient.http``) and by plain httpx for the request forms those clients do not send."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

import forgeml as fm
from forgeml._version import __version__

from .conftest import TARGET, ServerThread, records

REFS = {"adult-lgbm": "adult-lgbm@production", "adult-hgb": "adult-hgb@1"}
_NUMPY_TYPES = {"INT64": np.int64, "FP64": np.float64, "BOOL": np.bool_, "BYTES": np.object_}


@pytest.fixture(scope="module")
def models(serve_ws) -> dict[str, Any]:
    """The registry's models, loaded as a client would load them."""
    return {name: fm.load(ref, workspace=serve_ws) for name, ref in REFS.items()}


@pytest.fixture(scope="module")
def features(adult: pd.DataFrame) -> pd.DataFrame:
    return adult.drop(columns=[TARGET])


# -- MLflow scoring protocol ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(serve_ws) -> Iterator[ServerThread]:
    """``/invocations`` serves the first model the server is given."""
    with ServerThread(serve_ws, models=("adult-lgbm@production",)) as s:
        yield s


@pytest.fixture(scope="module")
def scoring_client(mlflow_server: ServerThread) -> Any:
    """MLflow's own client of its scoring server."""
    with warnings.catch_warnings():  # MLflow's type-hint warnings while it imports
        warnings.simplefilter("ignore")
        from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    return ScoringServerClient("127.0.0.1", mlflow_server.port)


def test_mlflow_scoring_client_gets_the_registry_models_predictions(
    scoring_client, models, features
):
    client = scoring_client
    client.wait_server_ready(timeout=30)
    assert client.get_version() == __version__
    frame = features.iloc[200:500]
    assert frame.isna().any(axis=None)  # missing values travel too (as NaN)
    expected = models["adult-lgbm"].predict(frame)
    response = client.invoke(frame)
    assert response["predictions"] == expected.tolist()
    np.testing.assert_array_equal(response.get_predictions(predictions_format="ndarray"), expected)
    # MLflow's params are accepted and do not change the answer
    with_params = client.invoke(frame.iloc[:20], params={"threshold": 0.3})
    assert with_params["predictions"] == expected[:20].tolist()


def _mlflow_bodies(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    return {
        "dataframe_split": {
            "dataframe_split": {
                "columns": names,
                "data": [[row[c] for c in names] for row in rows],
                "index": list(range(len(rows))),
            }
        },
        # without "columns" the values are the model's columns in order
        "dataframe_split by position": {
            "dataframe_split": {"data": [[row[c] for c in names] for row in rows]}
        },
        # a key absent from a record is a missing value there (pandas reads it so)
        "dataframe_records": {
            "dataframe_records": [{k: v for k, v in row.items() if v is not None} for row in rows]
        },
        "instances": {"instances": rows},
        "inputs": {"inputs": {c: [row[c] for row in rows] for c in names}},
        "inputs by position": {"inputs": [[row[c] for c in names] for row in rows]},
    }


@pytest.mark.parametrize(
    "form",
    [
        "dataframe_split",
        "dataframe_split by position",
        "dataframe_records",
        "instances",
        "inputs",
        "inputs by position",
    ],
)
def test_each_mlflow_json_form_gives_the_models_predictions(
    mlflow_server, models, adult, features, form
):
    rows = records(adult, 150, start=40)
    assert any(v is None for row in rows for v in row.values())
    body = _mlflow_bodies(rows, list(features.columns))[form]
    response = httpx.post(f"{mlflow_server.url}/invocations", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    expected = models["adult-lgbm"].predict(features.iloc[40:190]).tolist()
    assert response.json() == {"predictions": expected}


@pytest.mark.parametrize("content_type", ["text/csv", "text/csv; charset=utf-8"])
def test_mlflow_csv_gives_the_models_predictions(mlflow_server, models, features, content_type):
    frame = features.iloc[600:800]
    assert frame.isna().any(axis=None)  # empty fields are missing values
    response = httpx.post(
        f"{mlflow_server.url}/invocations",
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": content_type},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == models["adult-lgbm"].predict(frame).tolist()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/json; charset=latin-1", None]
)
def test_mlflow_refuses_other_content_types_with_415(mlflow_server, adult, content_type):
    body = json.dumps({"dataframe_records": records(adult, 2)}).encode()
    headers = {} if content_type is None else {"content-type": content_type}
    response = httpx.post(f"{mlflow_server.url}/invocations", content=body, headers=headers)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["field"] == "Content-Type"


# -- Open Inference Protocol v2 ---------------------------------------------------------------


@pytest.fixture(scope="module")
def v2(server: ServerThread) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def complete_rows(features: pd.DataFrame) -> pd.DataFrame:
    # tritonclient cannot send a missing value: its BYTES tensors hold str(value) ("None")
    rows = features.iloc[1000:1200].dropna()
    assert len(rows) > 150
    return rows


def _kserve_tensor(frame: pd.DataFrame, binary: bool) -> list[triton.InferInput]:
    """One 2-D BYTES input of shape [n, k], the rows in the model's column order."""
    values = frame.astype(object).to_numpy()
    tensor = triton.InferInput("input-0", list(values.shape), "BYTES")
    tensor.set_data_from_numpy(values, binary_data=binary)
    return [tensor]


def _column_tensors(
    frame: pd.DataFrame, metadata: dict[str, Any], binary: bool
) -> list[triton.InferInput]:
    """One input per column with the datatype the model's metadata gives it."""
    tensors = []
    for spec in metadata["inputs"]:
        values = frame[spec["name"]].to_numpy(dtype=_NUMPY_TYPES[spec["datatype"]])
        tensor = triton.InferInput(spec["name"], [len(values)], spec["datatype"])
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


def _labels(array: np.ndarray) -> list[Any]:
    return [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]


def test_v2_health_and_metadata(v2, models, features):
    assert v2.is_server_live()
    assert v2.is_server_ready()
    assert v2.is_model_ready("adult-lgbm") and v2.is_model_ready("adult-hgb")
    assert v2.is_model_ready("adult-lgbm", model_version="1")
    assert not v2.is_model_ready("adult-lgbm", model_version="2")  # registered, not served
    assert not v2.is_model_ready("adult-xgb")
    server_metadata = v2.get_server_metadata()
    assert server_metadata["name"] == "forgeml"
    assert server_metadata["version"] == __version__
    assert "binary_tensor_data" in server_metadata["extensions"]
    for name, model in models.items():
        metadata = v2.get_model_metadata(name)
        assert metadata["name"] == name
        assert metadata["versions"] == ["1"]
        expected_inputs = [
            {
                "name": column,
                "datatype": "INT64" if pd.api.types.is_integer_dtype(features[column]) else "BYTES",
                "shape": [-1],
            }
            for column in features.columns
        ]
        assert metadata["inputs"] == expected_inputs
        assert metadata["outputs"] == [
            {"name": "predict", "datatype": "BYTES", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.classes)]},
        ]
        assert json.loads(metadata["parameters"]["classes"]) == list(model.classes)
        assert v2.get_model_metadata(name, model_version="1") == metadata


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("layout", ["kserve-2d", "per-column"])
@pytest.mark.parametrize("name", list(REFS))
def test_v2_infer_gives_the_models_predictions_and_probabilities(
    v2, models, complete_rows, name, layout, binary
):
    model = models[name]
    frame = complete_rows
    if layout == "kserve-2d":
        inputs = _kserve_tensor(frame, binary)
    else:
        inputs = _column_tensors(frame, v2.get_model_metadata(name), binary)
    expected_labels = model.predict(frame).tolist()
    expected_proba = model.predict_proba(frame)
    for requested in (None, ["predict_proba", "predict"], ["predict_proba"]):
        outputs = (
            None
            if requested is None
            else [triton.InferRequestedOutput(o, binary_data=binary) for o in requested]
        )
        result = v2.infer(name, inputs, outputs=outputs)
        response = result.get_response()
        assert response["model_name"] == name and response["model_version"] == "1"
        answered = [o["name"] for o in response["outputs"]]
        assert answered == (requested or ["predict", "predict_proba"])
        for output in response["outputs"]:
            # without requested outputs tritonclient asks for binary ones
            sent_binary = binary if requested is not None else True
            assert ("binary_data_size" in output.get("parameters", {})) == sent_binary
        if "predict" in answered:
            assert _labels(result.as_numpy("predict")) == expected_labels
        else:
            assert result.as_numpy("predict") is None
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), expected_proba, rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_v2_compressed_requests(v2, models, complete_rows, algorithm):
    inputs = _column_tensors(complete_rows, v2.get_model_metadata("adult-lgbm"), True)
    result = v2.infer("adult-lgbm", inputs, request_compression_algorithm=algorithm)
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"),
        models["adult-lgbm"].predict_proba(complete_rows),
        rtol=0,
        atol=1e-12,
    )


def _v2_error(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    error = caught.value
    assert isinstance(error.message(), str)  # the protocol's {"error": "<message>"}
    assert str(error).startswith(f"[{error.status()}] ")
    return error


def test_v2_errors_raise_inference_server_exceptions_naming_the_field(v2, complete_rows, features):
    frame = complete_rows.iloc[:5].copy()
    metadata = v2.get_model_metadata("adult-lgbm")

    unknown = frame.astype({"workclass": object})
    unknown.iloc[2, unknown.columns.get_loc("workclass")] = "Astronaut"
    error = _v2_error(lambda: v2.infer("adult-lgbm", _column_tensors(unknown, metadata, True)))
    assert error.status() == "422"
    assert "workclass" in error.message() and "Astronaut" in error.message()

    error = _v2_error(lambda: v2.infer("adult-lgbm", _kserve_tensor(unknown, False)))
    assert error.status() == "422" and "workclass" in error.message()

    without_age = [t for t in _column_tensors(frame, metadata, True) if t.name() != "age"]
    error = _v2_error(lambda: v2.infer("adult-lgbm", without_age))
    assert error.status() == "422" and "age" in error.message()

    text_age = triton.InferInput("age", [5], "BYTES")
    text_age.set_data_from_numpy(np.array(["old"] * 5, dtype=object))
    others = [t for t in _column_tensors(frame, metadata, False) if t.name() != "age"]
    error = _v2_error(lambda: v2.infer("adult-lgbm", [text_age, *others]))
    assert error.status() == "422" and "age" in error.message()

    narrow = _kserve_tensor(frame.drop(columns=["age"]), True)
    error = _v2_error(lambda: v2.infer("adult-lgbm", narrow))
    assert error.status() == "400"
    assert "shape" in error.message() and str(features.shape[1]) in error.message()

    error = _v2_error(lambda: v2.infer("adult-xgb", narrow))
    assert error.status() == "404" and "adult-xgb" in error.message()
    error = _v2_error(lambda: v2.get_model_metadata("adult-xgb"))
    assert error.status() == "404" and "adult-xgb" in error.message()
    error = _v2_error(lambda: v2.infer("adult-lgbm", narrow, model_version="2"))
    assert error.status() == "404" and "Version 2" in error.message()
    error = _v2_error(lambda: v2.get_model_metadata("adult-lgbm", model_version="latest"))
    assert error.status() == "422" and "version" in error.message()
    error = _v2_error(lambda: v2.get_model_config("adult-lgbm"))  # not implemented: 404
    assert error.status() == "404"


# Kept last in the module: the stored route below is seen by every server of the workspace
# while it exists (this module's other servers keep answering with version 1).
def test_v2_version_pinned_route(serve_ws, models, complete_rows):
    # version 2 rides along as a shadow that receives no traffic: loaded, reachable only by
    # its own route
    serve_ws.routing.set_route(
        "adult-lgbm", {"split": {"production": 1}, "shadow": {"version": 2, "fraction": 0}}
    )
    try:
        with ServerThread(serve_ws, models=("adult-lgbm@production",)) as s:
            client = triton.InferenceServerClient(url=s.url.removeprefix("http://"))
            try:
                v2_model = fm.load("adult-lgbm@2", workspace=serve_ws)
                frame = complete_rows
                inputs = _column_tensors(frame, client.get_model_metadata("adult-lgbm"), True)
                assert client.get_model_metadata("adult-lgbm")["versions"] == ["1", "2"]
                assert client.is_model_ready("adult-lgbm", model_version="2")

                pinned = client.infer("adult-lgbm", inputs, model_version="2")
                assert pinned.get_response()["model_version"] == "2"
                np.testing.assert_allclose(
                    pinned.as_numpy("predict_proba"),
                    v2_model.predict_proba(frame),
                    rtol=0,
                    atol=1e-12,
                )
                assert _labels(pinned.as_numpy("predict")) == v2_model.predict(frame).tolist()

                default = client.infer("adult-lgbm", inputs)
                assert default.get_response()["model_version"] == "1"
                np.testing.assert_allclose(
                    default.as_numpy("predict_proba"),
                    models["adult-lgbm"].predict_proba(frame),
                    rtol=0,
                    atol=1e-12,
                )
                assert not np.allclose(
                    pinned.as_numpy("predict_proba"), default.as_numpy("predict_proba")
                )

                # the same route in the protocol's JSON form, with httpx
                body = {
                    "inputs": [
                        {
                            "name": "rows",
                            "datatype": "BYTES",
                            "shape": [2, frame.shape[1]],
                            "data": frame.iloc[:2].astype(object).to_numpy().tolist(),
                        }
                    ]
                }
                response = httpx.post(
                    f"{s.url}/v2/models/adult-lgbm/versions/2/infer", json=body, timeout=30
                )
                assert response.status_code == 200, response.text
                assert response.json()["model_version"] == "2"
                response = httpx.post(
                    f"{s.url}/v2/models/adult-lgbm/versions/3/infer", json=body, timeout=30
                )
                assert response.status_code == 404
                assert "Version 3" in response.json()["error"]
            finally:
                client.close()
    finally:
        serve_ws.routing.clear_route("adult-lgbm")


def test_non_finite_numbers_are_refused_naming_the_column(v2, server, complete_rows, features):
    # Infinity reaches the server in binary tensors, CSV text and numbers as text; the one
    # policy: refused with 422 naming the column (NaN is a missing value, where one is allowed).
    name = "adult-lgbm"
    frame = complete_rows.iloc[:3].astype(object)
    frame.loc[frame.index[1], "age"] = np.inf
    with pytest.raises(InferenceServerException, match="age"):
        v2.infer(name, _kserve_tensor(frame, True))
    row = frame.iloc[0].to_dict()
    for value in ("Infinity", "-inf", "1e999"):
        answer = httpx.post(
            f"{server.url}/v1/models/{name}/predict", json={"records": [{**row, "age": value}]}
        )
        assert answer.status_code == 422, (value, answer.text)
        assert answer.json()["error"]["field"] == "age"
    text = frame.to_csv(index=False)
    answer = httpx.post(
        f"{server.url}/invocations", content=text, headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 422, answer.text
    assert "age" in answer.text
