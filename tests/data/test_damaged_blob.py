"""Every read of a dataset's table checks its digest: a flipped byte in the Parquet blob is
named, never validated, reported or trained on (SQLite and PostgreSQL). Real data: German
credit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import forgeml as fm
from forgeml import data
from forgeml.errors import ArtifactIntegrityError
from forgeml.store import Workspace


@pytest.fixture(scope="module")
def german(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    return pd.read_csv(shared_dataset("german-credit.csv"))


def _flip_a_byte(ws: Workspace, digest: str) -> Path:
    path = ws.artifacts.path(digest)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("target", [None, "class"])
def test_a_flipped_byte_is_named_by_every_reader(workspace, german, tmp_path, target):
    version = data.add(german, name="credit", target=target, workspace=workspace)
    _flip_a_byte(workspace, version.data_digest)
    readers = {
        "validate": lambda: data.validate("credit", workspace=workspace),
        "report": lambda: data.report("credit", tmp_path / "r.html", workspace=workspace),
        "load": lambda: data.load("credit", workspace=workspace),
        "diff": lambda: data.diff("credit@1", "credit@1", workspace=workspace),
        "split": lambda: data.split("credit", workspace=workspace),
    }
    if target is not None:
        readers["train"] = lambda: fm.train("credit", time_budget=5, workspace=workspace)
    for name, read in readers.items():
        with pytest.raises(ArtifactIntegrityError) as caught:
            read()
        assert "credit@1" in caught.value.message, name
        assert version.data_digest in caught.value.message, name
    assert not (tmp_path / "r.html").exists()


def test_data_validate_of_a_damaged_table_fails_with_one_line(german, tmp_path):
    home = tmp_path / "ws"
    with Workspace(fm.Settings(home=home)) as ws:
        version = data.add(german, name="credit", workspace=ws)
        _flip_a_byte(ws, version.data_digest)
    for args in (("validate", "credit"), ("report", "credit", "--html", str(tmp_path / "r.html"))):
        run = subprocess.run(
            [sys.executable, "-m", "forgeml", "--home", str(home), "data", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 1, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: The table of credit@1 is damaged")
        assert version.data_digest in lines[0]
