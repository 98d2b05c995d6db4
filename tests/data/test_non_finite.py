"""Non-finite numbers: one policy from the file to the model (SQLite and PostgreSQL).

An infinity in a numeric column is refused where a table enters forgeml, naming the column
and its first row, with nothing written; ``non_finite="missing"`` reads it as missing and
commits a usable version whose profile reads back as written. Real data: German credit."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forgeml as fm
from forgeml import data
from forgeml.errors import InputError
from forgeml.store import NewDatasetVersion, Workspace


@pytest.fixture(scope="module")
def german(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    return pd.read_csv(shared_dataset("german-credit.csv"))


def _with_inf(german: pd.DataFrame, tmp_path: Path, *, whole_column: bool = False) -> Path:
    frame = german.copy()
    frame["duration"] = frame["duration"].astype(float)
    frame.loc[17, "duration"] = np.inf
    if whole_column:
        frame["credit_amount"] = -np.inf
    path = tmp_path / "credit.csv"
    frame.to_csv(path, index=False)  # pandas writes "inf" / "-inf"
    return path


def _blobs(ws: Workspace) -> list[Path]:
    root = Path(ws.settings.artifacts)
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


@pytest.mark.parametrize("whole_column", [False, True])
def test_an_infinity_is_refused_with_nothing_written(workspace, german, tmp_path, whole_column):
    path = _with_inf(german, tmp_path, whole_column=whole_column)
    with pytest.raises(InputError, match=r"'duration' \(1 value, first at row 18\)") as caught:
        data.add(path, name="credit", target="class", workspace=workspace)
    if whole_column:
        assert "'credit_amount' (1000 values, first at row 1)" in caught.value.message
    assert "--non-finite missing" in caught.value.message
    assert workspace.datasets.list_datasets() == []
    assert _blobs(workspace) == []
    with pytest.raises(InputError):  # adding it again finds no broken version
        data.add(path, name="credit", target="class", workspace=workspace)


@pytest.mark.parametrize("whole_column", [False, True])
def test_infinities_read_as_missing_give_a_usable_version(
    workspace, german, tmp_path, whole_column
):
    path = _with_inf(german, tmp_path, whole_column=whole_column)
    version = data.add(
        path, name="credit", target="class", non_finite="missing", workspace=workspace
    )
    notes = {f.column: f.message for f in version.quality.findings if f.check == "non_finite"}
    assert notes["duration"] == "1 infinite value read as missing (first at row 18)"
    again = data.add(path, name="credit", target="class", non_finite="missing", workspace=workspace)
    assert again.version == version.version == 1  # identical content: the same version
    stored = data.get("credit@1", workspace=workspace)
    assert stored.profile.to_dict() == version.profile.to_dict()
    assert stored.profile["duration"].missing == 1
    assert stored.profile["duration"].histogram is not None
    if whole_column:
        assert stored.profile["credit_amount"].missing == 1000
    frame = data.load("credit@1", workspace=workspace)
    assert int(frame["duration"].isna().sum()) == 1 and np.isfinite(frame["duration"]).sum() == 999
    assert not data.validate("credit@1", workspace=workspace).failed("error")
    result = fm.train(
        "credit@1",
        target="class",
        models="linear",
        max_trials=2,
        time_budget=20,
        evaluate=False,
        workspace=workspace,
    )
    assert result.model.predict_proba(frame.drop(columns=["class"]).head(5)).shape == (5, 2)


def test_a_stored_profile_with_nulled_histogram_edges_reads_back(workspace, german):
    """A version written before this policy (edges of an infinite column stored as null)."""
    version = data.add(german, name="credit", target="class", workspace=workspace)
    record = workspace.datasets.get_version("credit", 1)
    profile = record.profile
    column = next(c for c in profile["columns"] if c["name"] == "duration")
    column["histogram"]["edges"] = [None] * len(column["histogram"]["edges"])
    column["quantiles"]["p99"] = None
    column["max"] = None
    fields = {f.name for f in dataclasses.fields(NewDatasetVersion)}
    old = NewDatasetVersion(
        **{k: getattr(record, k) for k in fields if k != "digest" and hasattr(record, k)},
        digest="0" * 64,
    )
    workspace.datasets.add_version("credit", dataclasses.replace(old, profile=profile))
    shown = data.get("credit@2", workspace=workspace)
    assert shown.profile["duration"].histogram is None
    assert "p99" not in shown.profile["duration"].quantiles
    assert data.validate("credit@2", workspace=workspace).ref == "credit@2"
    assert version.version == 1


def test_training_refuses_an_infinity_in_a_table(german):
    frame = german.assign(duration=german["duration"].astype(float))
    frame.loc[3, "duration"] = -np.inf
    with pytest.raises(InputError, match=r"training data holds infinite numbers in 'duration'"):
        fm.train(frame, target="class", time_budget=5)


def test_numbers_whose_statistics_overflow_give_a_profile_that_reads_back(workspace, german):
    frame = german.assign(huge=np.where(german.index % 2 == 0, 1.7e308, -1.7e308))
    version = data.add(frame, name="credit", target="class", workspace=workspace)
    huge = data.get("credit@1", workspace=workspace).profile["huge"]
    assert huge.min == -1.7e308 and huge.max == 1.7e308
    assert huge.histogram is None and version.version == 1


def test_data_add_of_an_inf_file_exits_2_with_one_line(german, tmp_path):
    path = _with_inf(german, tmp_path)
    home = tmp_path / "ws"
    run = subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), "data", "add", str(path),
         "--name", "credit", "--target", "class"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "'duration' (1 value, first at row 18)" in run.stderr
    with Workspace(fm.Settings(home=home)) as ws:
        assert ws.datasets.list_datasets() == []
