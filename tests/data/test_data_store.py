"""The DatasetStore contract on every metadata back end."""

from __future__ import annotations

import pytest

from forgeml.errors import ConflictError, NotFoundError
from forgeml.store import NewDatasetVersion, SplitRecord


def _new(digest: str, **changes) -> NewDatasetVersion:
    values = dict(
        digest=digest,
        spec_digest="s" * 64,
        data_digest="d" * 64,
        data_size=10,
        n_rows=3,
        n_columns=1,
        schema={"columns": []},
        profile={"p": 1},
        quality={"findings": []},
        sensitive=("sex",),
    )
    values.update(changes)
    return NewDatasetVersion(**values)


def test_versions_number_from_one_and_identical_content_is_found(workspace):
    store = workspace.datasets
    first, created = store.add_version("t", _new("a" * 64))
    assert created and first.version == 1 and first.parent_version is None
    again, created = store.add_version("t", _new("a" * 64))
    assert not created and again == first
    second, created = store.add_version("t", _new("b" * 64, target="y"))
    assert created and second.version == 2 and second.parent_version == 1
    assert store.get_version("t").version == 2
    assert store.get_version("t", 1).sensitive == ("sex",)
    listed = store.list_versions("t")
    assert [v.version for v in listed] == [2, 1] and listed[0].profile is None
    assert store.find_version("t", "b" * 64, "s" * 64) == second
    assert store.find_version("t", "c" * 64, "s" * 64) is None
    assert [d.name for d in store.list_datasets()] == ["t"]
    assert store.list_datasets()[0].latest_version == 2


def test_not_found_and_split_conflicts(workspace):
    store = workspace.datasets
    with pytest.raises(NotFoundError, match="No dataset named 'x'"):
        store.get_version("x")
    store.add_version("t", _new("a" * 64))
    with pytest.raises(NotFoundError, match="no version 3"):
        store.get_version("t", 3)
    split = SplitRecord(
        "default", "random", 0, {"fractions": [0.5, 0, 0.5]}, {"train": 2}, "e" * 64, 1
    )
    stored, created = store.add_split("t", 1, split)
    assert created and store.get_version("t", 1).splits == (stored,)
    assert store.add_split("t", 1, split) == (stored, False)
    with pytest.raises(ConflictError, match="already has a split"):
        store.add_split("t", 1, SplitRecord("default", "random", 1, {}, {}, "f" * 64, 2))
    with pytest.raises(NotFoundError):
        store.add_split("t", 2, split)
