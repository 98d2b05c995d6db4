"""The request and response codecs of the three protocols, against the real clients.

Request bodies are built from UCI Adult rows by the protocols' own client code (tritonclient's
request builder, MLflow's serving-input helpers, pandas), decoded, and compared with the source
rows; responses are parsed back with tritonclient. Hypothesis feeds random bytes and random
JSON to every decoder: only ``RequestError`` may come out.
"""

from __future__ import annotations

import io
import json
import math
import struct
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forgeml
from forgeml.registry import InputColumn, Signature
from forgeml.serve import _v2_decode
from forgeml.serve._mlflow import decode_mlflow, encode_mlflow
from forgeml.serve._native import decode_native
from forgeml.serve._types import Outputs, RequestError, Rows
from forgeml.serve._v2 import encode_v2, v2_model_metadata, v2_server_metadata
from forgeml.serve._v2_decode import V2Request, decode_v2, v2_header_length

httpclient = pytest.importorskip("tritonclient.http")

ADULT = Path(forgeml.__file__).parent / "examples" / "adult.csv.gz"
CLASSES = ("<=50K", ">50K")
TEXT_COLUMNS = ("workclass", "occupation", "native_country")


# -- data -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """240 Adult rows: integer, float (with NaN) and text (with missing values) columns."""
    frame = pd.read_csv(ADULT).drop(columns=["income", "split"])
    frame = frame.sample(n=240, random_state=7).reset_index(drop=True)
    frame["hours_per_week"] = frame["hours_per_week"].astype("float64")
    frame.loc[::9, "hours_per_week"] = np.nan
    frame.loc[3::11, "occupation"] = None
    assert frame["hours_per_week"].isna().any()
    assert all(frame[c].isna().any() for c in TEXT_COLUMNS)
    return frame


@pytest.fixture(scope="module")
def signature(rows: pd.DataFrame) -> Signature:
    return signature_of(rows)


def signature_of(frame: pd.DataFrame, classes: tuple[Any, ...] | None = CLASSES) -> Signature:
    kinds = {"int64": "integer", "float64": "numeric"}
    return Signature(
        inputs=tuple(
            InputColumn(str(c), kinds.get(str(frame[c].dtype), "categorical"), str(frame[c].dtype))
            for c in frame.columns
        ),
        task="binary" if classes else "regression",
        classes=classes,
    )


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def plain(series: pd.Series) -> list[Any]:
    return [None if is_missing(v) or v is pd.NA else v for v in series.tolist()]


def assert_rows_equal(actual: Rows, expected: dict[str, list[Any]], *, types: bool = True) -> None:
    """Same columns in the same order, the same values (None and NaN both mean missing)."""
    assert list(actual.columns) == list(expected)
    n = len(next(iter(expected.values())))
    assert actual.n == n
    for name, values in expected.items():
        got = actual.columns[name]
        assert len(got) == n, name
        for i, (a, e) in enumerate(zip(got, values, strict=True)):
            if is_missing(e):
                assert is_missing(a), (name, i, a)
            else:
                assert a == e, (name, i, a, e)
                if types:
                    assert type(a) is type(e), (name, i, a, e)


def columns_of(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {str(c): plain(frame[c]) for c in frame.columns}


def quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # MLflow's own deprecation and type-hint warnings
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


@pytest.fixture(scope="module")
def mlflow_server() -> Any:
    pytest.importorskip("mlflow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.models.utils as model_utils
        import mlflow.pyfunc.scoring_server as scoring_server
        import mlflow.utils.proto_json_utils as proto_json_utils
    return scoring_server, model_utils, proto_json_utils


# -- native -----------------------------------------------------------------------------------


def test_native_records_and_columns_recover_the_rows(rows):
    frame = rows.head(50)
    records = json.loads(frame.to_json(orient="records"))
    decoded = decode_native(orjson.dumps({"records": records, "key": "user-17"}))
    assert_rows_equal(decoded, columns_of(frame))
    assert decoded.key == "user-17"

    columns = {c: [r[c] for r in records] for c in frame.columns}
    decoded = decode_native(orjson.dumps({"columns": columns}))
    assert_rows_equal(decoded, columns_of(frame))
    assert decoded.key is None


def test_native_reads_nan_tokens_as_floats():
    decoded = decode_native(b'{"records": [{"a": NaN, "b": Infinity}, {"a": 1.5, "b": null}]}')
    assert math.isnan(decoded.columns["a"][0])
    assert decoded.columns["b"] == [math.inf, None]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"   ", "body"),
        (b"[1, 2]", "body"),
        (b'{"records": [{"a": 1}', "body"),
        (b'{"records": [], "columns": {}}', "body"),
        (b"{}", "body"),
        (b'{"records": []}', "records"),
        (b'{"records": {"a": 1}}', "records"),
        (b'{"records": [{"a": 1}, 3]}', "records[1]"),
        (b'{"records": [{"a": 1, "b": 2}, {"a": 3}]}', "records[1].b"),
        (b'{"records": [{"a": 1}, {"a": 3, "b": 2}]}', "records[0].b"),
        (b'{"records": [{"a": [1, 2]}]}', "records[0].a"),
        (b'{"columns": {"a": [1, 2], "b": [3]}}', "columns.b"),
        (b'{"columns": {"a": []}}', "columns"),
        (b'{"columns": {"a": 1}}', "columns.a"),
        (b'{"columns": {"a": [1, {"x": 1}]}}', "columns.a[1]"),
        (b'{"columns": []}', "columns"),
        (b'{"records": [{"a": 1}], "key": 5}', "key"),
        (b'{"records": [{"a": 1}], "rows": 5}', "rows"),
    ],
)
def test_native_errors_name_the_field(body, field):
    with pytest.raises(RequestError) as caught:
        decode_native(body)
    assert caught.value.field == field
    assert caught.value.status == 400
    assert b"secret" not in caught.value.message.encode()


def test_errors_do_not_echo_values():
    with pytest.raises(RequestError) as caught:
        decode_native(b'{"records": [{"a": "secret-value"}, {"a": ["secret-value"]}]}')
    assert "secret-value" not in caught.value.message


# -- MLflow -----------------------------------------------------------------------------------


def mlflow_frame(scoring_server: Any, doc: dict[str, Any]) -> pd.DataFrame:
    """What MLflow's own scoring server gives the model for a JSON document."""
    data = {k: v for k, v in doc.items() if k in scoring_server.SUPPORTED_FORMATS}
    return quiet(scoring_server.infer_and_parse_data, data)


def test_mlflow_dataframe_split_from_mlflows_own_helpers(rows, mlflow_server):
    scoring_server, model_utils, proto_json_utils = mlflow_server
    frame = rows.head(60)
    names = list(frame.columns)
    bodies = {
        # the serving example MLflow writes next to a logged model (nulls, no index)
        "serving_input": quiet(model_utils.convert_input_example_to_serving_input, frame),
        # what mlflow's ScoringServerClient posts (bare NaN tokens, an index, params)
        "client": quiet(proto_json_utils.dump_input_data, frame, params={"threshold": 0.5}),
        # pandas, as the MLflow docs show
        "pandas": '{"dataframe_split": ' + frame.to_json(orient="split") + "}",
    }
    for body in bodies.values():
        decoded = decode_mlflow(body.encode(), "application/json", names)
        assert_rows_equal(decoded, columns_of(frame))
        theirs = mlflow_frame(scoring_server, json.loads(body))
        assert_rows_equal(decoded, columns_of(theirs), types=False)


def test_mlflow_dataframe_split_without_columns_maps_positions_onto_the_signature(rows):
    frame = rows.head(20)
    split = json.loads(frame.to_json(orient="split"))
    del split["columns"], split["index"]
    decoded = decode_mlflow(
        orjson.dumps({"dataframe_split": split}), "application/json", list(frame.columns)
    )
    assert_rows_equal(decoded, columns_of(frame))


def test_mlflow_dataframe_records_like_mlflow(rows, mlflow_server):
    scoring_server, _, _ = mlflow_server
    frame = rows.head(40)
    records = json.loads(frame.to_json(orient="records"))
    doc = {"dataframe_records": records}
    decoded = decode_mlflow(orjson.dumps(doc), "application/json; charset=utf-8", [])
    assert_rows_equal(decoded, columns_of(frame))
    assert_rows_equal(decoded, columns_of(mlflow_frame(scoring_server, doc)), types=False)

    # Spark's to_json leaves null fields out: pandas, and so MLflow, read them as missing
    sparse = [{k: v for k, v in r.items() if v is not None} for r in records]
    doc = {"dataframe_records": sparse}
    decoded = decode_mlflow(orjson.dumps(doc), "application/json", [])
    assert set(decoded.columns) == set(frame.columns)
    reordered = {c: columns_of(frame)[c] for c in decoded.columns}
    assert_rows_equal(decoded, reordered)
    theirs = mlflow_frame(scoring_server, doc)
    assert_rows_equal(decoded, {c: plain(theirs[c]) for c in decoded.columns}, types=False)


def test_mlflow_instances_and_inputs(rows, mlflow_server):
    _, _, proto_json_utils = mlflow_server
    frame = rows.head(30)
    names = list(frame.columns)
    records = json.loads(frame.to_json(orient="records"))
    as_columns = {c: [r[c] for r in records] for c in names}
    expected = columns_of(frame)
    for key in ("instances", "inputs"):
        for value in (records, as_columns):
            decoded = decode_mlflow(orjson.dumps({key: value}), "application/json", names)
            assert_rows_equal(decoded, expected)
        one_row = decode_mlflow(orjson.dumps({key: records[0]}), "application/json", names)
        assert_rows_equal(one_row, {c: [v[0]] for c, v in expected.items()})

    numeric = frame[["age", "fnlwgt", "education_num"]]
    body = quiet(proto_json_utils.dump_input_data, numeric.to_numpy(), params={"k": 1})
    decoded = decode_mlflow(body.encode(), "application/json", list(numeric.columns))
    assert_rows_equal(decoded, columns_of(numeric))

    flat = decode_mlflow(b'{"inputs": [1.5, 2.5, null]}', "application/json", ["x"])
    assert flat.columns == {"x": [1.5, 2.5, None]}


def test_mlflow_csv_like_pandas(rows, mlflow_server):
    scoring_server, _, _ = mlflow_server
    frame = rows.head(80)
    text = frame.to_csv(index=False)
    decoded = decode_mlflow(text.encode(), "text/csv", [])
    as_text = pd.read_csv(io.StringIO(text), dtype=str)
    assert_rows_equal(decoded, columns_of(as_text))
    theirs = quiet(scoring_server.parse_csv_input, io.StringIO(text))
    assert [k for k, v in decoded.columns.items() for x in v if x is None] == [
        k for k in theirs.columns for x in theirs[k] if is_missing(x)
    ]

    # with pandas' index column (no header name), as read_csv names it
    decoded = decode_mlflow(frame.to_csv().encode(), "text/csv; charset=UTF-8", [])
    assert next(iter(decoded.columns)) == "Unnamed: 0"
    assert decoded.n == len(frame)

    crlf = decode_mlflow(b"a,b\r\n1,x\r\n\r\n2,\r\n", "text/csv", [])
    assert crlf.columns == {"a": ["1", "2"], "b": ["x", None]}


def test_encode_mlflow_answers_like_mlflows_server(mlflow_server):
    scoring_server, _, _ = mlflow_server
    for predictions in (["<=50K", ">50K", ">50K"], [0, 1, 1], [0.25, 1.5, -3.0], [True, False]):
        out = Outputs(predictions=predictions, model="m", version=1)
        buffer = io.StringIO()
        scoring_server.predictions_to_json(np.array(predictions), buffer)
        assert orjson.loads(encode_mlflow(out)) == json.loads(buffer.getvalue())
    nan = Outputs(predictions=[1.0, math.nan])
    assert encode_mlflow(nan) == b'{"predictions":[1.0,null]}'


@pytest.mark.parametrize(
    ("body", "content_type", "field", "status"),
    [
        (b"{}", None, "Content-Type", 415),
        (b"{}", "application/xml", "Content-Type", 415),
        (b"{}", "application/json; charset=latin-1", "Content-Type", 415),
        (b"{}", "application/json; format=pandas-split", "Content-Type", 415),
        (b"{}", "application/json", "body", 400),
        (b'{"columns": ["a"], "data": [[1]]}', "application/json", "body", 400),
        (b'{"instances": [1], "inputs": [1]}', "application/json", "body", 400),
        (b"[]", "application/json", "body", 400),
        (b'{"dataframe_split": []}', "application/json", "dataframe_split", 400),
        (
            b'{"dataframe_split": {"columns": ["a"]}}',
            "application/json",
            "dataframe_split.data",
            400,
        ),
        (
            b'{"dataframe_split": {"data": [[1]], "orient": "split"}}',
            "application/json",
            "dataframe_split.orient",
            400,
        ),
        (
            b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}}',
            "application/json",
            "dataframe_split.data[1]",
            400,
        ),
        (
            b'{"dataframe_split": {"columns": ["a", 2], "data": [[1, 2]]}}',
            "application/json",
            "dataframe_split.columns[1]",
            400,
        ),
        (
            b'{"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}',
            "application/json",
            "dataframe_split.columns",
            400,
        ),
        (
            b'{"dataframe_split": {"columns": ["a"], "data": [[1]], "index": [0, 1]}}',
            "application/json",
            "dataframe_split.index",
            400,
        ),
        (
            b'{"dataframe_split": {"data": [[1, 2, 3]]}}',
            "application/json",
            "dataframe_split.data[0]",
            400,
        ),
        (
            b'{"dataframe_split": {"columns": ["a"], "data": []}}',
            "application/json",
            "dataframe_split.data",
            400,
        ),
        (b'{"dataframe_records": []}', "application/json", "dataframe_records", 400),
        (b'{"dataframe_records": [1]}', "application/json", "dataframe_records[0]", 400),
        (b'{"instances": [{"a": 1}, {"b": 2}]}', "application/json", "instances[0].b", 400),
        (b'{"instances": {"a": [1, 2], "b": [3]}}', "application/json", "instances.b", 400),
        (b'{"inputs": [[1, 2, 3]]}', "application/json", "inputs[0]", 400),
        (b'{"inputs": "abc"}', "application/json", "inputs", 400),
        (b"a,b\n1,2,3\n", "text/csv", "body.row[0]", 400),
        (b"a,a\n1,2\n", "text/csv", "body", 400),
        (b"a,b\n", "text/csv", "body", 400),
        (b"", "text/csv", "body", 400),
        (b"a,b\n\xff,1\n", "text/csv", "body", 400),
    ],
)
def test_mlflow_errors_name_the_field(body, content_type, field, status):
    with pytest.raises(RequestError) as caught:
        decode_mlflow(body, content_type, ["a", "b"])
    assert (caught.value.field, caught.value.status) == (field, status)


# -- Open Inference Protocol v2 ---------------------------------------------------------------


def column_input(name: str, series: pd.Series, *, binary: bool, two_d: bool) -> Any:
    """One input per column, as MLServer's pandas codec lays them out."""
    if pd.api.types.is_integer_dtype(series):
        array, datatype = series.to_numpy(np.int64), "INT64"
    elif pd.api.types.is_float_dtype(series):
        array, datatype = series.to_numpy(np.float64), "FP64"
    else:
        array, datatype = np.array(plain(series), dtype=object), "BYTES"
    if two_d:
        array = array.reshape(-1, 1)
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    if datatype == "BYTES" and not binary:
        # tritonclient writes str(None); JSON null is the protocol's missing text value here
        tensor._data = array.ravel().tolist()
    return tensor


@pytest.mark.parametrize("mode", ["binary", "json", "mixed"])
def test_v2_one_input_per_column_is_lossless(rows, signature, mode):
    frame = rows.head(100)
    if mode == "binary":  # the binary form has no null: text columns without missing values
        frame = frame.dropna(subset=list(TEXT_COLUMNS))
    inputs = []
    for j, name in enumerate(frame.columns):
        text = not pd.api.types.is_numeric_dtype(frame[name])
        binary = mode == "binary" or (mode == "mixed" and not text)
        inputs.append(column_input(name, frame[name], binary=binary, two_d=j % 2 == 0))
    outputs = [httpclient.InferRequestedOutput("predict_proba", binary_data=mode != "json")]
    body, header_length = httpclient.InferenceServerClient.generate_request_body(
        inputs, outputs=outputs, request_id="req-7"
    )
    assert (header_length is None) == (mode == "json")
    decoded, request = decode_v2(body, header_length, signature)
    assert_rows_equal(decoded, columns_of(frame))
    assert request.id == "req-7"
    assert request.outputs == ["predict_proba"]
    assert request.binary_outputs == (set() if mode == "json" else {"predict_proba"})


def test_v2_single_bytes_tensor_of_mixed_rows(rows, signature):
    frame = rows.head(50)
    matrix = frame.astype(object).to_numpy()
    expected = {name: [str(v) for v in matrix[:, j]] for j, name in enumerate(frame.columns)}
    for binary in (True, False):
        tensor = httpclient.InferInput("input-0", list(matrix.shape), "BYTES")
        tensor.set_data_from_numpy(matrix, binary_data=binary)
        body, length = httpclient.InferenceServerClient.generate_request_body([tensor])
        decoded, request = decode_v2(body, length, signature)
        assert_rows_equal(decoded, expected)
        assert request.outputs is None
        # without requested outputs tritonclient asks for every output in binary
        assert request.binary_outputs == {"predict", "predict_proba"}


def test_v2_single_numeric_tensor(rows):
    frame = rows.head(50).select_dtypes("number").astype("float64")
    signature = signature_of(frame, classes=None)
    for binary in (True, False):
        tensor = httpclient.InferInput("input_1", list(frame.shape), "FP64")
        tensor.set_data_from_numpy(frame.to_numpy(), binary_data=binary)
        body, length = httpclient.InferenceServerClient.generate_request_body([tensor])
        decoded, request = decode_v2(body, length, signature)
        assert_rows_equal(decoded, columns_of(frame))
        assert request.binary_outputs == {"predict"}


@pytest.mark.parametrize(
    "dtype",
    [
        "bool",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "float32",
        "float64",
    ],
)
def test_v2_every_datatype_both_forms(dtype):
    rng = np.random.default_rng(3)
    if dtype == "bool":
        array = rng.random(12) > 0.5
    elif dtype.startswith("float"):
        array = (rng.normal(size=12) * 100).astype(dtype)
        array[4] = np.nan
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=12, dtype=dtype, endpoint=True)
    datatype = httpclient.np_to_triton_dtype(array.dtype)
    signature = Signature(inputs=(InputColumn("x", "numeric"),))
    for binary in (True, False):
        tensor = httpclient.InferInput("x", [12], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        body, length = httpclient.InferenceServerClient.generate_request_body([tensor])
        decoded, _ = decode_v2(body, length, signature)
        expected = [None if is_missing(v) else v for v in array.tolist()]
        assert_rows_equal(decoded, {"x": expected})


def test_v2_hand_written_kserve_and_mlserver_requests(signature):
    numeric = Signature(inputs=tuple(InputColumn(c, "numeric") for c in ("a", "b", "c")))
    kserve = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 3],
                "datatype": "FP32",
                "data": [[1, 2, 3], [4, 5.5, 6]],
            }
        ]
    }
    decoded, request = decode_v2(orjson.dumps(kserve), None, numeric)
    assert decoded.columns == {"a": [1.0, 4.0], "b": [2.0, 5.5], "c": [3.0, 6.0]}
    assert request == V2Request()

    mlserver = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [39, 50]},
            {
                "name": "workclass",
                "shape": [2, 1],
                "datatype": "BYTES",
                "parameters": {"content_type": "str"},
                "data": ["State-gov", None],
            },
            {"name": "hours_per_week", "shape": [2], "datatype": "FP64", "data": [40, None]},
        ],
        "outputs": [{"name": "predict"}],
    }
    decoded, request = decode_v2(orjson.dumps(mlserver), None, signature)
    assert decoded.columns["age"] == [39, 50]
    assert decoded.columns["workclass"] == ["State-gov", None]
    assert decoded.columns["hours_per_week"][0] == 40.0
    assert math.isnan(decoded.columns["hours_per_week"][1])
    assert request == V2Request(outputs=["predict"])

    mixed_bytes = {
        "inputs": [
            {"name": "x", "shape": [1, 3], "datatype": "BYTES", "data": [[39, "Private", True]]}
        ]
    }
    decoded, _ = decode_v2(orjson.dumps(mixed_bytes), None, numeric)
    assert decoded.columns == {"a": [39], "b": ["Private"], "c": [True]}


def parse(body: bytes, headers: dict[str, str]) -> Any:
    length = headers.get("Inference-Header-Content-Length")
    return httpclient.InferenceServerClient.parse_response_body(
        body, header_length=None if length is None else int(length)
    )


def test_v2_response_round_trips_through_tritonclient(rows, signature):
    frame = rows.head(25)
    rng = np.random.default_rng(0)
    p = rng.random(len(frame))
    probabilities = [[float(1 - x), float(x)] for x in p]
    labels = [CLASSES[int(x > 0.5)] for x in p]
    out = Outputs(labels, probabilities, list(CLASSES), model="adult", version=3, request_id="s-1")

    cases = {
        "default client": (None, True),
        "json": (None, False),
        "binary predict": ([httpclient.InferRequestedOutput("predict")], None),
        "json proba": ([httpclient.InferRequestedOutput("predict_proba", binary_data=False)], None),
        "mixed": (
            [
                httpclient.InferRequestedOutput("predict", binary_data=False),
                httpclient.InferRequestedOutput("predict_proba", binary_data=True),
            ],
            None,
        ),
    }
    for label, (outputs, binary_default) in cases.items():
        inputs = [column_input(c, frame[c], binary=False, two_d=False) for c in frame.columns]
        body, length = httpclient.InferenceServerClient.generate_request_body(
            inputs,
            outputs=outputs,
            request_id="r-1" if outputs else "",
        )
        if binary_default is False:
            doc = json.loads(body)  # tritonclient writes NaN as a bare token
            doc["parameters"]["binary_data_output"] = False
            body = json.dumps(doc).encode()
        _, request = decode_v2(body, length, signature)
        response, headers = encode_v2(out, request)
        binary = bool(request.binary_outputs)
        assert headers["Content-Type"] == (
            "application/octet-stream" if binary else "application/json"
        ), label
        result = parse(response, headers)
        doc = result.get_response()
        assert doc["model_name"] == "adult"
        assert doc["model_version"] == "3"
        assert doc["id"] == ("r-1" if outputs else "s-1")
        names = [o["name"] for o in doc["outputs"]]
        wanted = [o.name() for o in outputs] if outputs else ["predict", "predict_proba"]
        assert names == wanted, label
        if "predict" in names:
            predict = result.as_numpy("predict")
            assert predict.shape == (len(frame),)
            got = [v.decode() if isinstance(v, bytes) else v for v in predict.tolist()]
            assert got == labels, label
        if "predict_proba" in names:
            proba = result.as_numpy("predict_proba")
            assert proba.dtype == np.float64 and proba.shape == (len(frame), 2)
            assert proba.tolist() == probabilities, label


@pytest.mark.parametrize(
    ("predictions", "datatype", "dtype"),
    [
        ([0, 1, 1, 0], "INT64", np.int64),
        ([True, False, True, True], "BOOL", np.bool_),
        ([0.5, -1.25, math.nan, 3.0], "FP64", np.float64),
        ([1, 2.5, None, 4], "FP64", np.float64),
    ],
)
def test_v2_predict_datatypes(predictions, datatype, dtype):
    out = Outputs(predictions, model="m", version=1, request_id="x")
    for binary in (True, False):
        request = V2Request(binary_outputs={"predict"} if binary else set())
        body, headers = encode_v2(out, request)
        result = parse(body, headers)
        assert result.get_output("predict")["datatype"] == datatype
        array = result.as_numpy("predict")
        assert array.dtype == dtype
        expected = np.array([math.nan if v is None else v for v in predictions], dtype=dtype)
        np.testing.assert_array_equal(array, expected)
        assert "predict_proba" not in [o["name"] for o in result.get_response()["outputs"]]


def test_v2_metadata(signature):
    metadata = v2_model_metadata("adult", [1, 3], signature)
    assert metadata["name"] == "adult"
    assert metadata["versions"] == ["1", "3"]
    assert metadata["platform"] == "forgeml"
    datatypes = {t["name"]: t["datatype"] for t in metadata["inputs"]}
    assert datatypes["age"] == "INT64"
    assert datatypes["hours_per_week"] == "FP64"
    assert datatypes["workclass"] == "BYTES"
    assert all(t["shape"] == [-1] for t in metadata["inputs"])
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert json.loads(metadata["parameters"]["classes"]) == list(CLASSES)
    orjson.dumps(metadata)

    regression = Signature(inputs=(InputColumn("x", "numeric"),), task="regression")
    outputs = v2_model_metadata("r", [1], regression)["outputs"]
    assert outputs == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]

    server = v2_server_metadata("1.2.3")
    assert server == {"name": "forgeml", "version": "1.2.3", "extensions": ["binary_tensor_data"]}


def test_v2_header_length():
    assert v2_header_length(None) is None
    assert v2_header_length(" 120 ") == 120
    for bad in ("-1", "abc", "²", "1e3", "99999999999999999999"):
        with pytest.raises(RequestError) as caught:
            v2_header_length(bad)
        assert caught.value.field == "Inference-Header-Content-Length"


def v2_body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": list(inputs), **extra})


AGE = {"name": "age", "shape": [2], "datatype": "INT64", "data": [39, 50]}


@pytest.mark.parametrize(
    ("body", "header_length", "field"),
    [
        (b"", None, "body"),
        (b"[]", None, "body"),
        (v2_body(), None, "inputs"),
        (orjson.dumps({"inputs": {}}), None, "inputs"),
        (v2_body(AGE, id=5), None, "id"),
        (v2_body(AGE, parameters=[]), None, "parameters"),
        (
            v2_body(AGE, parameters={"binary_data_output": "yes"}),
            None,
            "parameters.binary_data_output",
        ),
        (v2_body(AGE, 3), None, "inputs[1]"),
        (v2_body({**AGE, "name": 1}), None, "inputs[0].name"),
        (v2_body({**AGE, "datatype": "BF16"}), None, "inputs[0].datatype"),
        (v2_body({**AGE, "shape": [2, -1]}), None, "inputs[0].shape"),
        (v2_body({**AGE, "shape": [3]}), None, "inputs[0].data"),
        (v2_body({**AGE, "data": [39, "50"]}), None, "inputs[0].data[1]"),
        (v2_body({**AGE, "datatype": "INT8", "data": [39, 500]}), None, "inputs[0].data[1]"),
        (v2_body({**AGE, "datatype": "BOOL"}), None, "inputs[0].data[0]"),
        (v2_body({**AGE, "data": [39, {"a": 1}], "datatype": "BYTES"}), None, "inputs[0].data[1]"),
        (v2_body({k: v for k, v in AGE.items() if k != "data"}), None, "inputs[0].data"),
        (
            v2_body({**AGE, "parameters": {"shared_memory_region": "r"}}),
            None,
            "inputs[0].parameters.shared_memory_region",
        ),
        (v2_body({**AGE, "name": "nope"}), None, "inputs[0].name"),
        (v2_body(AGE, AGE), None, "inputs[1].name"),
        (
            v2_body(AGE, {**AGE, "name": "fnlwgt", "shape": [1], "data": [1]}),
            None,
            "inputs[1].shape",
        ),
        (v2_body({**AGE, "shape": [1, 2]}), None, "inputs[0].shape"),
        (v2_body({**AGE, "name": "input-0", "shape": [1, 2]}), None, "inputs[0].shape"),
        (v2_body({**AGE, "shape": [0], "data": []}), None, "inputs"),
        (v2_body(AGE, outputs=[{"name": "logits"}]), None, "outputs[0].name"),
        (v2_body(AGE, outputs=[{"name": "predict"}, {"name": "predict"}]), None, "outputs[1].name"),
        (
            v2_body(AGE, outputs=[{"name": "predict", "parameters": {"binary_data": 1}}]),
            None,
            "outputs[0].parameters.binary_data",
        ),
        (
            v2_body(AGE, outputs=[{"name": "predict", "parameters": {"classification": 2}}]),
            None,
            "outputs[0].parameters.classification",
        ),
        (v2_body(AGE, outputs={"name": "predict"}), None, "outputs"),
        (v2_body(AGE), 10_000, "Inference-Header-Content-Length"),
        (v2_body(AGE), -1, "Inference-Header-Content-Length"),
        (v2_body(AGE) + b"\x00", None, "body"),
    ],
)
def test_v2_errors_name_the_field(signature, body, header_length, field):
    with pytest.raises(RequestError) as caught:
        decode_v2(body, header_length, signature)
    assert (caught.value.field, caught.value.status) == (field, 400)


def binary_request(spec: dict[str, Any], raw: bytes) -> tuple[bytes, int]:
    header = orjson.dumps({"inputs": [spec]})
    return header + raw, len(header)


@pytest.mark.parametrize(
    ("spec", "raw", "field"),
    [
        (
            {"datatype": "INT64", "size": 15},
            np.arange(2, dtype="<i8").tobytes()[:15],
            "inputs[0].parameters.binary_data_size",
        ),
        (
            {"datatype": "INT64", "size": 17},
            np.arange(2, dtype="<i8").tobytes(),
            "inputs[0].parameters.binary_data_size",
        ),
        (
            {"datatype": "BYTES", "size": 9},
            struct.pack("<I", 1) + b"a" + struct.pack("<I", 9),
            "inputs[0].parameters.binary_data_size",
        ),
        ({"datatype": "BYTES", "size": 10}, (struct.pack("<I", 1) + b"\xff") * 2, "inputs[0].data"),
        (
            {"datatype": "BYTES", "size": 15},
            (struct.pack("<I", 1) + b"a") * 3,
            "inputs[0].parameters.binary_data_size",
        ),
        (
            {"datatype": "FP64", "size": 16, "data": [1.0, 2.0]},
            np.zeros(2).tobytes(),
            "inputs[0].data",
        ),
        (
            {"datatype": "FP64", "size": "16"},
            np.zeros(2).tobytes(),
            "inputs[0].parameters.binary_data_size",
        ),
    ],
)
def test_v2_binary_errors_name_the_field(signature, spec, raw, field):
    tensor = {"name": "age", "shape": [2], "datatype": spec["datatype"]}
    tensor["parameters"] = {"binary_data_size": spec["size"]}
    if "data" in spec:
        tensor["data"] = spec["data"]
    body, length = binary_request(tensor, raw)
    with pytest.raises(RequestError) as caught:
        decode_v2(body, length, signature)
    assert caught.value.field == field


def test_v2_binary_without_the_header_length_says_so(signature):
    tensor = {"name": "age", "shape": [2], "datatype": "INT64"}
    tensor["parameters"] = {"binary_data_size": 16}
    body, _ = binary_request(tensor, np.arange(2, dtype="<i8").tobytes())
    with pytest.raises(RequestError) as caught:
        decode_v2(body, None, signature)
    assert "Inference-Header-Content-Length" in caught.value.message


def test_v2_predict_proba_only_for_classifiers():
    regression = Signature(inputs=(InputColumn("x", "numeric"),), task="regression")
    body = v2_body(
        {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]},
        outputs=[{"name": "predict_proba"}],
    )
    with pytest.raises(RequestError) as caught:
        decode_v2(body, None, regression)
    assert caught.value.field == "outputs[0].name"
    _, request = decode_v2(body.replace(b"predict_proba", b"predict"), None, regression)
    assert request.outputs == ["predict"]


# -- robustness -------------------------------------------------------------------------------

VOCABULARY = [
    "records", "columns", "key", "dataframe_split", "dataframe_records", "instances", "inputs",
    "params", "data", "index", "id", "name", "shape", "datatype", "parameters", "outputs",
    "binary_data_size", "binary_data", "binary_data_output", "shared_memory_region",
    "classification", "content_type", "predict", "predict_proba", "age", "workclass", "x",
    "input-0", "BOOL", "UINT8", "INT8", "INT64", "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
NAMES = ["age", "workclass", "hours_per_week"]
ROBUST = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | text
    | st.sampled_from(VOCABULARY)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.sampled_from(VOCABULARY) | text, children, max_size=6)
    ),
    max_leaves=40,
)
dumps = st.sampled_from([orjson.dumps, lambda v: json.dumps(v).encode()])


def dump(encode: Any, value: Any) -> bytes:
    return bytes(encode(value))


def assert_only_request_errors(call: Any) -> None:
    try:
        rows = call()
    except RequestError as e:
        assert e.status in (400, 415)
        assert e.field and e.message
        return
    if isinstance(rows, tuple):
        rows, request = rows
        assert isinstance(request, V2Request)
    assert rows.n >= 1
    for name, values in rows.columns.items():
        assert isinstance(name, str)
        assert len(values) == rows.n
        assert all(type(v) in (str, int, float, bool, type(None)) for v in values)


@ROBUST
@given(body=st.binary(max_size=200))
def test_native_random_bytes(body):
    assert_only_request_errors(lambda: decode_native(body))


@ROBUST
@given(value=json_values, encode=dumps)
def test_native_random_json(value, encode):
    wrapped = {"records": value} if isinstance(value, list) else value
    assert_only_request_errors(lambda: decode_native(dump(encode, wrapped)))


content_types = st.sampled_from(
    ["application/json", "text/csv", "text/csv; charset=utf-8", None, "", "image/png",
     "application/json; charset=utf-16", "application/json;;", ";", "text/csv; x"]
)  # fmt: skip


@ROBUST
@given(body=st.binary(max_size=200), content_type=content_types)
def test_mlflow_random_bytes(body, content_type):
    assert_only_request_errors(lambda: decode_mlflow(body, content_type, NAMES))


@ROBUST
@given(
    field=st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs"]),
    value=json_values,
    extra=st.dictionaries(st.sampled_from(VOCABULARY), json_values, max_size=2),
    encode=dumps,
    names=st.sampled_from([NAMES, ["x"], []]),
)
def test_mlflow_random_json(field, value, extra, encode, names):
    body = dump(encode, {**extra, field: value})
    assert_only_request_errors(lambda: decode_mlflow(body, "application/json", names))


@ROBUST
@given(
    lines=st.lists(st.lists(st.text(max_size=6), max_size=4), max_size=6),
    delimiter=st.sampled_from([",", ";"]),
)
def test_mlflow_random_csv(lines, delimiter):
    body = "\n".join(delimiter.join(line) for line in lines).encode("utf-8", "surrogatepass")
    assert_only_request_errors(lambda: decode_mlflow(body, "text/csv", NAMES))


V2_SIGNATURE = Signature(
    inputs=(
        InputColumn("age", "integer"),
        InputColumn("workclass", "categorical"),
        InputColumn("hours_per_week", "numeric"),
    ),
    task="binary",
    classes=CLASSES,
)


@ROBUST
@given(
    body=st.binary(max_size=200),
    header_length=st.none() | st.integers(-5, 250),
)
def test_v2_random_bytes(body, header_length):
    assert_only_request_errors(lambda: decode_v2(body, header_length, V2_SIGNATURE))


@st.composite
def v2_requests(draw: Any) -> tuple[bytes, int | None]:
    inputs = []
    tail = b""
    for _ in range(draw(st.integers(0, 3))):
        spec: dict[str, Any] = {
            "name": draw(st.sampled_from([*NAMES, "input-0", "x"]) | json_values),
            "datatype": draw(st.sampled_from([*VOCABULARY[-8:], "BF16"]) | json_values),
            "shape": draw(st.lists(st.integers(-1, 4), max_size=3) | json_values),
        }
        choice = draw(st.integers(0, 3))
        if choice == 0:
            spec["data"] = draw(json_values)
        elif choice == 1:
            spec["data"] = draw(st.lists(scalars, max_size=12))
        else:
            if choice == 2:
                chunk = draw(st.binary(max_size=48))
            else:
                texts = draw(st.lists(st.binary(max_size=5), max_size=6))
                chunk = b"".join(struct.pack("<I", len(t)) + t for t in texts)
            size = draw(st.sampled_from([len(chunk), len(chunk) + 1, max(len(chunk) - 1, 0)]))
            spec["parameters"] = {"binary_data_size": size}
            tail += chunk
        inputs.append(spec)
    doc: dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        doc["outputs"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["predict", "predict_proba", "x"])},
                    optional={
                        "parameters": st.dictionaries(
                            st.sampled_from(["binary_data", "classification"]), scalars
                        )
                    },
                ),
                max_size=3,
            )
            | json_values
        )
    if draw(st.booleans()):
        doc["parameters"] = draw(
            st.fixed_dictionaries({}, optional={"binary_data_output": scalars}) | json_values
        )
    if draw(st.booleans()):
        doc["id"] = draw(scalars)
    header = dump(draw(dumps), doc)
    length = draw(st.sampled_from([len(header), None, len(header) + draw(st.integers(-3, 3))]))
    return header + tail, length


@ROBUST
@given(request=v2_requests())
def test_v2_random_requests(request):
    body, header_length = request
    assert_only_request_errors(lambda: decode_v2(body, header_length, V2_SIGNATURE))


@ROBUST
@given(value=json_values, encode=dumps)
def test_v2_random_json(value, encode):
    wrapped = {"inputs": value} if isinstance(value, list) else value
    assert_only_request_errors(lambda: decode_v2(dump(encode, wrapped), None, V2_SIGNATURE))


def decoded_or_refused(body: bytes, header_length: int | None) -> tuple[Any, ...]:
    """What ``decode_v2`` gives, values shown with their types (``repr``), or its refusal."""
    try:
        rows, request = decode_v2(body, header_length, V2_SIGNATURE)
    except RequestError as e:
        return ("refused", e.message, e.field, e.status, e.code)
    return ("decoded", repr(rows.columns), rows.n, request)


def decoded_both_ways(body: bytes, header_length: int | None) -> tuple[Any, ...]:
    """The plain-tensor reading and the field-by-field one agree; what they give."""
    fast = decoded_or_refused(body, header_length)
    with mock.patch.object(_v2_decode, "_plain_columns", lambda inputs, signature: None):
        checked = decoded_or_refused(body, header_length)
    assert fast == checked
    return fast


@st.composite
def plain_tensors(draw: Any) -> dict[str, Any]:
    """Tensors in, or one step away from, the form ``_plain_columns`` reads."""
    n = draw(st.integers(0, 3))
    values = draw(st.lists(scalars | st.lists(scalars, max_size=2), min_size=n, max_size=n))
    shape: Any = draw(
        st.sampled_from([[n], [n, 1], [n, 2], [n + 1], [True] * (n == 1) or [n], [float(n)]])
    )
    spec: dict[str, Any] = {
        "name": draw(st.sampled_from([*NAMES, "input-0"])),
        "datatype": draw(st.sampled_from([*VOCABULARY[-8:], "INT32", "UINT64", "BF16"])),
        "shape": shape,
        "data": values,
    }
    if draw(st.integers(0, 5)) == 0:
        spec["parameters"] = draw(st.sampled_from([None, {}, {"content_type": "np"}]))
    if draw(st.integers(0, 5)) == 0:
        del spec[draw(st.sampled_from(sorted(spec)))]
    return spec


@ROBUST
@given(tensors=st.lists(plain_tensors(), min_size=1, max_size=4), encode=dumps)
def test_v2_plain_tensors_are_read_as_tensors_checked_field_by_field(tensors, encode):
    decoded_both_ways(dump(encode, {"inputs": tensors}), None)


@pytest.mark.parametrize(
    "tensor",
    [
        {"name": "age", "datatype": "INT64", "shape": [2], "data": [39, 50]},
        {"name": "age", "datatype": "INT64", "shape": [2, 1], "data": [39, 50]},
        {"name": "age", "datatype": "INT64", "shape": [2], "data": [[39], [50]]},  # nested
        {"name": "age", "datatype": "INT64", "shape": [True], "data": [39]},
        {"name": "age", "datatype": "INT64", "shape": [1.0], "data": [39]},
        {"name": "age", "datatype": "INT64", "shape": [2], "data": [39, 2**63]},
        {"name": "age", "datatype": "INT64", "shape": [2], "data": [39, 5.0]},
        {"name": "age", "datatype": "FP64", "shape": [3], "data": [1, None, 2.5]},
        {"name": "age", "datatype": "FP32", "shape": [1], "data": ["1"]},
        {"name": "workclass", "datatype": "BYTES", "shape": [2], "data": ["Private", None]},
        {"name": "workclass", "datatype": "BYTES", "shape": [1], "data": [{"a": 1}]},
        {"name": "workclass", "datatype": "BOOL", "shape": [1], "data": [1]},
        {"name": "workclass", "datatype": "STRING", "shape": [1], "data": ["x"]},
        {"name": "workclass", "datatype": ["BYTES"], "shape": [1], "data": ["x"]},
        {"name": 7, "datatype": "BYTES", "shape": [1], "data": ["x"]},
        {"name": "age", "datatype": "INT64", "shape": [1], "data": [1], "parameters": None},
        {"name": "age", "datatype": "INT64", "shape": [1], "data": [1], "parameters": []},
        {"name": "age", "datatype": "INT64", "shape": [1]},
        {"name": "age", "datatype": "INT64", "shape": [0], "data": []},
        {"name": "input-0", "datatype": "BYTES", "shape": [1, 3], "data": [["1", "a", "2"]]},
    ],
)
def test_v2_tensors_near_the_plain_form(tensor):
    decoded_both_ways(v2_body(tensor), None)
