"""One JSON policy: NaN and infinities as null, NumPy and pandas values as plain JSON, the same
text wherever forgeml writes JSON (stores, bundles, reports, server answers, --json)."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forgeml import _json

scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats() | st.text()
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(documents)
def test_any_document_is_strict_json_and_reads_back_as_its_finite_form(value):
    text = _json.dumps_text(value)
    # Python's parser refuses the NaN / Infinity tokens it would otherwise accept
    parsed = json.loads(text, parse_constant=lambda token: pytest.fail(f"wrote {token}"))
    assert parsed == _json.finite(value)
    assert _json.loads(text) == parsed


def test_non_finite_numbers_of_every_kind_are_null():
    value = {
        "nan": math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "np": np.float64("nan"),
        "f32": np.float32("inf"),
        "array": np.array([1.5, np.nan, -np.inf]),
        "na": pd.NA,
        "nat": pd.NaT,
    }
    assert json.loads(_json.dumps(value)) == {
        "nan": None,
        "inf": None,
        "-inf": None,
        "np": None,
        "f32": None,
        "array": [1.5, None, None],
        "na": None,
        "nat": None,
    }
    assert _json.finite(value["array"].tolist()) == [1.5, None, None]


def test_other_values_have_one_form_each():
    class Colour(Enum):
        RED = "red"

    class Card:
        def to_dict(self):
            return {"a": 1}

    value = {
        np.int64(3): np.int32(4),
        "objects": np.array(["a", None], dtype=object),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5),
        "day": dt.date(2026, 1, 2),
        "stamp": pd.Timestamp("2026-01-02T03:04:05"),
        "money": Decimal("1.25"),
        "path": Path("/tmp/x"),
        "colour": Colour.RED,
        "card": Card(),
    }
    assert json.loads(_json.dumps(value)) == {
        "3": 4,
        "objects": ["a", None],
        "when": "2026-01-02T03:04:05",
        "day": "2026-01-02",
        "stamp": "2026-01-02T03:04:05",
        "money": 1.25,
        "path": "/tmp/x",
        "colour": "red",
        "card": {"a": 1},
    }
    assert _json.dumps({"b": 1, "a": [1]}, indent=True, sort_keys=True) == (
        b'{\n  "a": [\n    1\n  ],\n  "b": 1\n}'
    )


def test_a_value_without_json_form_fails_unless_lenient():
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        _json.dumps({"x": object()})
    assert _json.dumps_text({"x": {1, 2}}, lenient=True) == '{"x":"{1, 2}"}'


def test_the_cli_the_server_and_the_stores_write_through_the_policy(capsys):
    from forgeml.cli._common import print_json
    from forgeml.serve._http import json_response
    from forgeml.store._datasets import _dumps

    value = {"auc": np.float64("nan"), "n": np.int64(3)}
    print_json(value)
    assert json.loads(capsys.readouterr().out) == {"auc": None, "n": 3}
    assert json.loads(json_response(value).body) == {"auc": None, "n": 3}
    assert json.loads(_dumps(value)) == {"auc": None, "n": 3}


def test_sorted_compact_text_is_what_stored_digests_were_computed_over():
    # dataset split specs and artifact tree manifests are hashed: their bytes must not change
    import orjson

    spec = {"strategy": "stratified", "fractions": [0.7, 0.15, 0.15], "seed": 3, "by": None}
    manifest = [{"path": "model.json", "digest": "ab" * 32, "size": 120}]
    for value in (spec, manifest):
        assert _json.dumps(value, sort_keys=True) == orjson.dumps(
            value, option=orjson.OPT_SORT_KEYS
        )


def test_forgeml_writes_json_only_through_the_policy():
    import ast

    root = Path(__file__).resolve().parents[1] / "src" / "forgeml"
    # the request decoder serializes once only to check what it parsed, and writes nothing
    allowed = {root / "_json.py", root / "serve" / "_codec.py"}
    found = []
    for path in sorted(root.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("dumps", "dump")
                and isinstance(node.value, ast.Name)
                and node.value.id in ("json", "orjson")
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []
