"""Versioning: content hashes, identical content, lineage, references and bad input."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from forgeml import data
from forgeml.errors import InputError, NotFoundError


def test_adding_adult_twice_yields_one_version(ws, adult_path):
    first = data.add(adult_path, name="adult", target="income", workspace=ws)
    second = data.add(adult_path, name="adult", target="income", workspace=ws)
    assert (first.version, second.version) == (1, 1)
    assert second.digest == first.digest
    assert [v.version for v in data.list_versions("adult", workspace=ws)] == [1]
    assert first.n_rows == 48_842 and first.n_columns == 16
    assert first.source == str(adult_path.resolve())
    assert first.created_by == ws.settings.user


def test_changing_one_cell_makes_a_version_whose_diff_names_the_column(ws, tmp_path, adult_frame):
    adult_frame.to_csv(tmp_path / "a.csv", index=False)
    changed = adult_frame.copy()
    changed.loc[1234, "hours_per_week"] = changed.loc[1234, "hours_per_week"] + 1
    changed.to_csv(tmp_path / "b.csv", index=False)
    v1 = data.add(tmp_path / "a.csv", name="adult", target="income", workspace=ws)
    v2 = data.add(tmp_path / "b.csv", name="adult", target="income", workspace=ws)
    assert v2.version == 2 and v2.parent_version == 1 and v2.digest != v1.digest
    result = data.diff("adult@1", "adult@2", workspace=ws)
    assert result.changed_columns == ("hours_per_week",)
    column = next(c for c in result.columns if c.name == "hours_per_week")
    assert column.cells_changed == 1
    assert (result.rows_added, result.rows_removed) == (1, 1)
    assert not result.schema_changes


def test_digest_does_not_depend_on_the_file_format(ws, tmp_path, adult_frame):
    frame = adult_frame.head(2000)
    frame.to_csv(tmp_path / "t.csv", sep=";", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    digests = {
        data.add(frame, name="f", workspace=ws).digest,
        data.add(tmp_path / "t.csv", name="g", workspace=ws).digest,
        data.add(tmp_path / "t.parquet", name="h", workspace=ws).digest,
    }
    assert len(digests) == 1


def test_load_returns_the_stored_table(ws, adult_frame):
    frame = adult_frame.sample(500, random_state=3).reset_index(drop=True)
    version = data.add(frame, name="sample", workspace=ws)
    pd.testing.assert_frame_equal(data.load("sample@1", workspace=ws), frame, check_dtype=False)
    assert data.get("sample", workspace=ws).digest == version.digest
    assert data.get("sample@latest", workspace=ws).version == 1


def test_csv_dialect_and_encoding_are_detected(ws, tmp_path):
    frame = pd.DataFrame({"city": ["Zürich", "Köln", "Málaga"] * 20, "n": range(60)})
    frame.to_csv(tmp_path / "t.csv", sep="\t", index=False, encoding="cp1252")
    version = data.add(tmp_path / "t.csv", name="cities", workspace=ws)
    loaded = data.load("cities", workspace=ws)
    assert version.n_columns == 2
    assert set(loaded["city"]) == {"Zürich", "Köln", "Málaga"}


def test_same_table_with_other_roles_is_a_new_version(ws, adult_frame):
    frame = adult_frame.head(300)
    a = data.add(frame, name="t", target="income", workspace=ws)
    b = data.add(frame, name="t", target="sex", workspace=ws)
    assert (a.version, b.version) == (1, 2) and a.digest == b.digest
    assert b.target == "sex"


def test_concurrent_adds_get_distinct_gap_free_versions(workspace):
    frames = [pd.DataFrame({"x": np.arange(50) + i, "y": np.arange(50) % 3}) for i in range(8)]
    versions: list[int] = []
    errors: list[BaseException] = []

    def add(frame):
        try:
            versions.append(data.add(frame, name="race", workspace=workspace).version)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(versions) == list(range(1, 9))
    stored = data.list_versions("race", workspace=workspace)
    assert sorted(v.version for v in stored) == list(range(1, 9))
    assert len({v.digest for v in stored}) == 8


@pytest.mark.parametrize(
    ("ref", "error", "words"),
    [
        ("adult@x", InputError, "positive number or 'latest'"),
        ("adult@0", InputError, "positive number"),
        ("adult@7", NotFoundError, "no version 7; its versions are 1 to 1"),
        ("nobody", NotFoundError, "No dataset named 'nobody'"),
        ("bad name", InputError, "A dataset name"),
    ],
)
def test_wrong_references_name_the_problem(ws, ref, error, words):
    data.add(pd.DataFrame({"a": [1, 2, 3]}), name="adult", workspace=ws)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        data.get(ref, workspace=ws)


def _bad_inputs(tmp_path, adult_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("a,b,c\n")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    (tmp_path / "fake.parquet").write_text("a,b\n1,2\n")
    return [
        ((tmp_path / "empty.csv",), {}, InputError, "is empty"),
        ((tmp_path / "header.csv",), {}, InputError, "has no rows"),
        ((tmp_path / "binary.csv",), {}, InputError, "not a table"),
        ((tmp_path / "ragged.csv",), {}, InputError, "not a table"),
        ((tmp_path / "fake.parquet",), {}, InputError, "not a Parquet file"),
        ((tmp_path / "missing.csv",), {}, NotFoundError, "No file at"),
        ((adult_path,), {"target": "salary"}, InputError, "target column 'salary' is not in"),
        ((adult_path,), {"sensitive": ["gender"]}, InputError, "sensitive column 'gender'"),
        ((adult_path,), {"types": {"workclass": "numeric"}}, InputError, "'Private' is not a"),
        ((adult_path,), {"types": {"age": "datetime"}}, InputError, "cannot be datetime"),
        ((adult_path,), {"types": {"sex": "boolean", "race": "x"}}, InputError, "Unknown column"),
        ((adult_path,), {"time": "workclass"}, InputError, "time column 'workclass'"),
        ((pd.DataFrame(),), {}, InputError, "has no columns"),
        (([1, 2, 3],), {}, InputError, "must be a pandas DataFrame or a file path"),
    ]


def test_bad_input_is_one_clear_error_and_leaves_no_version(ws, tmp_path, adult_path):
    for args, kwargs, error, words in _bad_inputs(tmp_path, adult_path):
        with pytest.raises(error, match=words):
            data.add(*args, name="bad", workspace=ws, **kwargs)
    assert data.list_datasets(workspace=ws) == []
    with pytest.raises(NotFoundError):
        data.get("bad", workspace=ws)


def test_digest_does_not_depend_on_storage_dtypes(ws):
    labels = ["a", "b", None, "c"] * 30
    narrow = pd.DataFrame(
        {
            "label": pd.Categorical(labels),
            "count": np.arange(120, dtype=np.int32),
            "amount": pd.array([1, None, 3] * 40, dtype="Int64"),
        }
    )
    wide = pd.DataFrame(
        {
            "label": pd.Series(labels, dtype=object),
            "count": np.arange(120, dtype=np.int64),
            "amount": np.array([1.0, np.nan, 3.0] * 40),
        }
    )
    assert (
        data.add(narrow, name="n", workspace=ws).digest
        == data.add(wide, name="w", workspace=ws).digest
    )
    changed = wide.copy()
    changed.loc[7, "amount"] = 4.0
    assert data.add(changed, name="w", workspace=ws).version == 2
