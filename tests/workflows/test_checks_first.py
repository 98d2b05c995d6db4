"""A training is checked before it writes: a model name it cannot register, a file it
cannot train on, leave no dataset version, run or blob behind (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml.errors import InputError
from forgeml.store import Workspace
from forgeml.workflows import Context, train_model

from .conftest import principal


def _blobs(ws: Workspace) -> list[Path]:
    root = Path(ws.settings.artifacts)
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


def _nothing_written(ws: Workspace) -> None:
    assert ws.datasets.list_datasets() == []
    assert len(ws.runs.search_runs().items) == 0
    assert _blobs(ws) == []


@pytest.fixture
def ctx(workspace: Workspace) -> Context:
    return Context(workspace, principal(workspace, "ana"))


def _write(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("edit", "options", "words"),
    [
        (lambda f: f.head(1), {"target": "income"}, "at least"),
        (lambda f: f.assign(income="<=50K"), {"target": "income"}, "constant"),
        (lambda f: f, {}, "needs a target"),
        (lambda f: f, {"target": "salary"}, "salary"),
        (lambda f: f, {"target": "income", "drop": ["colour"]}, "colour"),
        (lambda f: f.assign(income=np.nan), {"target": "income"}, "missing on every row"),
    ],
)
def test_a_file_training_cannot_use_is_refused_before_it_is_added(
    ctx, adult_numeric, tmp_path, edit, options, words
):
    path = _write(edit(adult_numeric), tmp_path / "adult.csv")
    with pytest.raises(InputError, match=words):
        train_model(ctx, path, {"time_budget": 2, **options})
    _nothing_written(ctx.workspace)


@pytest.mark.parametrize("name", ["x/y", "-lead", "a b", "ü"])
def test_an_invalid_model_name_is_refused_before_any_work(ctx, adult_numeric, tmp_path, name):
    path = _write(adult_numeric, tmp_path / "adult.csv")
    with pytest.raises(InputError, match="model name"):
        train_model(ctx, path, {"target": "income", "time_budget": 2}, model_name=name)
    _nothing_written(ctx.workspace)


def test_a_file_name_that_is_no_model_name_is_refused_before_any_work(ctx, adult_numeric, tmp_path):
    path = _write(adult_numeric, tmp_path / "_adult.csv")  # the dataset name "_adult"
    with pytest.raises(InputError, match="model name"):
        train_model(ctx, path, {"target": "income", "time_budget": 2})
    _nothing_written(ctx.workspace)


def test_a_dataset_source_with_an_invalid_model_name_writes_no_run(ctx, adult_numeric):
    from forgeml import data

    data.add(adult_numeric, name="adult", target="income", workspace=ctx.workspace)
    before = sorted(_blobs(ctx.workspace))
    with pytest.raises(InputError, match="model name"):
        train_model(ctx, "adult", {"time_budget": 2}, model_name="x/y")
    assert len(ctx.workspace.runs.search_runs().items) == 0
    assert sorted(_blobs(ctx.workspace)) == before
