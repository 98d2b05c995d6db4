"""Per-request data quality at serving time: counted per model, version, column and issue,
and flagged on the logged prediction (a real server on 127.0.0.1, real Adult rows)."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

import forgeml as fm
from forgeml.registry import Signature
from forgeml.serve._types import RequestError, Rows
from forgeml.serve._validate import Validator

from .conftest import ServerThread, records

QUALITY = "forgeml_input_quality_issues"


def _issues(url: str) -> dict[tuple[str, str, str, str], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == QUALITY:
            for s in family.samples:
                if s.name.endswith("_total"):
                    key = (s.labels["model"], s.labels["version"], s.labels["column"])
                    out[(*key, s.labels["issue"])] = s.value
    return out


def _post(url: str, rows: list[dict]) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/adult-lgbm/predict", json={"records": rows}, timeout=30)


def test_quality_issues_are_counted_and_flagged_in_the_log(serve_ws, adult):
    signature = fm.load("adult-lgbm@production", workspace=serve_ws).signature
    age = next(c for c in signature.inputs if c.name == "age")
    hours = next(c for c in signature.inputs if c.name == "hours_per_week")
    required = next(c for c in signature.inputs if not c.nullable)
    rows = records(adult, 3, start=20)
    rows[0]["age"] = age.max + 10  # out of range, above
    rows[1]["age"] = age.min - 1  # out of range, below
    rows[1]["workclass"] = "Astronaut"  # never seen
    rows[2]["hours_per_week"] = hours.max + 0.5
    clean = records(adult, 1, start=30)
    missing = records(adult, 1, start=31)
    missing[0][required.name] = None
    with ServerThread(
        serve_ws, models=("adult-lgbm@production",), unknown_categories="pass"
    ) as server:
        before = _issues(server.url)
        flagged = _post(server.url, rows)
        assert flagged.status_code == 200, flagged.text
        answered = _post(server.url, clean)
        assert answered.status_code == 200
        refused = _post(server.url, missing)
        assert refused.status_code == 422 and refused.json()["error"]["field"] == required.name
        after = _issues(server.url)
    counted = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    version = str(fm.load("adult-lgbm@production", workspace=serve_ws).version)
    assert counted == {
        ("adult-lgbm", version, "age", "out_of_range"): 2.0,
        ("adult-lgbm", version, "workclass", "unseen_category"): 1.0,
        ("adult-lgbm", version, "hours_per_week", "out_of_range"): 1.0,
        ("adult-lgbm", version, required.name, "unexpected_missing"): 1.0,
    }
    ids = {
        "flagged": flagged.json()["request_id"],
        "clean": answered.json()["request_id"],
        "refused": refused.headers.get("x-request-id", ""),
    }
    with serve_ws.db.transaction(write=False) as conn:
        logged = dict(
            conn.execute(
                sa.text(
                    "SELECT request_id, outputs FROM predictions WHERE request_id IN "
                    "(:flagged, :clean, :refused) AND error IS NULL"
                ),
                ids,
            ).all()
        )
    assert set(logged) == {ids["flagged"], ids["clean"]}  # a refusal is not a prediction
    assert json.loads(logged[ids["flagged"]])["quality"] == {
        "age": {"out_of_range": 2},
        "workclass": {"unseen_category": 1},
        "hours_per_week": {"out_of_range": 1},
    }
    assert "quality" not in json.loads(logged[ids["clean"]])
    # the log's readers still expand the flagged request
    frame = serve_ws.predlog.predictions("adult-lgbm")
    assert (frame["request_id"] == ids["flagged"]).sum() == 3


def _validator(**options) -> Validator:
    from forgeml.registry._signature import InputColumn

    signature = Signature(
        inputs=(
            InputColumn("x", "numeric", "float64", False, None, 0.0, 1.0),
            InputColumn("n", "integer", "int64", True, None, 1, 5),
            InputColumn("c", "categorical", "category", True, ("a", "b")),
            InputColumn("free", "numeric", "float64", True),
        ),
        task="regression",
    )
    return Validator(signature, **options)


def test_the_validator_names_each_issue_per_column():
    seen: list[tuple[str, str, int]] = []
    validator = _validator(
        unknown_categories="pass", on_issue=lambda c, i, n: seen.append((c, i, n))
    )
    rows = Rows(
        columns={
            "x": [0.0, 1.0, 1.5, -0.1],  # bounds included
            "n": [None, 6, 5, 1],
            "c": ["a", "z", None, "y"],
            "free": [1e9, -1e9, None, 0.0],  # no recorded range: never out of it
        },
        n=4,
    )
    columns, quality = validator.check_quality(rows)
    assert columns["x"] == [0.0, 1.0, 1.5, -0.1] and columns["c"] == ["a", "z", None, "y"]
    assert quality == {
        "x": {"out_of_range": 2},
        "n": {"out_of_range": 1},
        "c": {"unseen_category": 2},
    }
    assert sorted(seen) == [
        ("c", "unseen_category", 2),
        ("n", "out_of_range", 1),
        ("x", "out_of_range", 2),
    ]
    clean = Rows(columns={"x": [0.5], "n": [3], "c": ["b"], "free": [2.0]}, n=1)
    assert validator.check_quality(clean) == (
        {"x": [0.5], "n": [3], "c": ["b"], "free": [2.0]},
        None,
    )


def test_a_refused_request_counts_what_it_was_refused_for():
    seen: list[tuple[str, str, int]] = []
    validator = _validator(on_issue=lambda c, i, n: seen.append((c, i, n)))
    with pytest.raises(RequestError) as missing:
        validator.check(Rows(columns={"x": [None], "n": [1], "c": ["a"], "free": [0]}, n=1))
    assert missing.value.field == "x"
    with pytest.raises(RequestError) as unseen:
        validator.check(Rows(columns={"x": [0.2], "n": [1], "c": ["q"], "free": [0]}, n=1))
    assert unseen.value.field == "c"
    assert seen == [("x", "unexpected_missing", 1), ("c", "unseen_category", 1)]


def _outcome(validator: Validator, row: dict, n: int) -> tuple:
    """What checking ``n`` copies of ``row`` gives: the first row's values and the quality
    counts per copy, or the refusal."""
    seen: list[tuple[str, str, int]] = []
    validator._on_issue = lambda c, i, k: seen.append((c, i, k))
    rows = Rows(columns={k: [v] * n for k, v in row.items()}, n=n)
    try:
        columns, quality = validator.check_quality(rows)
    except RequestError as e:
        return ("refused", e.field, e.code, sorted(seen))
    first = {k: (v[0], type(v[0])) for k, v in columns.items()}
    per_row = (
        None
        if quality is None
        else {c: {i: k // n for i, k in q.items()} for c, q in quality.items()}
    )
    return first, per_row, sorted((c, i, k // n) for c, i, k in seen)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"x": 1},  # an integer in a float column
        {"x": 1.5},  # out of range
        {"x": "0.25"},  # a number as text
        {"x": True},  # a boolean is not a number
        {"x": float("nan")},  # missing where training had none
        {"x": float("inf")},
        {"free": 1e308},
        {"free": float("inf")},
        {"free": -float("inf")},
        {"free": 10**400},
        {"n": None},
        {"c": "z"},  # never seen
        {"c": 2},  # a category given as a number: its text
        {"k": 7},  # an integer category, exact
        {"k": "7"},  # ... and as text
        {"k": 7.0},
        {"b": "yes"},
        {"b": 1},
        {"t": 3},  # text columns take any scalar
        {"t": [1]},
    ],
)
@pytest.mark.parametrize("unknown", ["error", "pass"])
def test_one_row_is_checked_as_the_same_row_among_others(change, unknown):
    from forgeml.registry._signature import InputColumn

    signature = Signature(
        inputs=(
            InputColumn("x", "numeric", "float64", False, None, 0.0, 1.0),
            InputColumn("n", "integer", "int64", True, None, 1, 5),
            InputColumn("c", "categorical", "category", True, ("a", "b", "2")),
            InputColumn("k", "categorical", "category", False, (7, 8)),
            InputColumn("b", "boolean", "bool", False),
            InputColumn("t", "text", "object", True),
            InputColumn("free", "numeric", "float64", True),
        ),
        task="regression",
    )
    validator = Validator(signature, unknown_categories=unknown)
    row = {"x": 0.5, "n": 3, "c": "b", "k": 8, "b": False, "t": "hello", "free": -2.0, **change}
    one = _outcome(validator, row, 1)
    assert one == _outcome(validator, row, 2)
    if not change:
        assert one[0]["x"] == (0.5, float) and one[1] is None
