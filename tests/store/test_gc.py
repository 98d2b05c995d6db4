"""``forgeml gc``: orphan blobs, interrupted writes and stale temporary folders are found
(dry run) and removed (apply), and nothing referenced is touched (SQLite and PostgreSQL).
Real data: German credit."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from forgeml import data, registry
from forgeml.config import Settings
from forgeml.errors import ArtifactIntegrityError
from forgeml.security import Principal, authenticate
from forgeml.store import Workspace
from forgeml.testing import admin_token
from forgeml.tracking import start_run
from forgeml.workflows import Context, collect_garbage

DAY = 86400


def _context(ws: Workspace) -> Context:
    """The local user where access control is off; an admin key where it is on (PostgreSQL)."""
    token = admin_token(ws)
    return Context(ws, authenticate(ws, token) if token else Principal("ana", "user"))


@pytest.fixture(scope="module")
def german(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    return pd.read_csv(shared_dataset("german-credit.csv"))


def _age_everything(root: Path, seconds: float) -> None:
    old = time.time() - seconds
    for path in root.rglob("*"):
        os.utime(path, (old, old))


def _fill(ws: Workspace, german: pd.DataFrame, tmp_path: Path) -> dict[str, Path]:
    from sklearn.linear_model import LogisticRegression

    data.add(german, name="credit", target="class", workspace=ws)
    data.split("credit", workspace=ws)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("kept")
    with start_run("gc", workspace=ws) as run:
        run.log_artifact(folder)
    X = german[["duration", "credit_amount", "age"]]
    model = LogisticRegression(max_iter=200).fit(X, german["class"])
    registry.register(model, name="credit", sample=X, workspace=ws)
    store = ws.artifacts
    orphan = store.path(store.put_bytes(b"an orphan blob"))  # type: ignore[attr-defined]
    part = store.root / "tmp" / "killed.part"  # type: ignore[attr-defined]
    part.write_bytes(b"half a blob")
    system = Path(tempfile.gettempdir())
    stale = system / "forgeml-bundle-killed"
    stale.mkdir()
    (stale / "model.txt").write_bytes(b"x" * 1000)
    _age_everything(store.root, 2 * DAY)  # type: ignore[attr-defined]
    _age_everything(system, 2 * DAY)
    os.utime(system, None)
    fresh = store.root / "tmp" / "writing.part"  # type: ignore[attr-defined]
    fresh.write_bytes(b"being written")
    return {"orphan": orphan, "part": part, "stale": stale, "fresh": fresh}


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_gc_finds_then_removes_only_garbage(workspace, german, tmp_path, system_tmp):
    paths = _fill(workspace, german, tmp_path)
    ctx = _context(workspace)
    dry = collect_garbage(ctx)  # default grace 24 h
    assert dry.removed is None
    found = {(i.kind, Path(i.path).name) for i in dry.found.items}
    assert found == {
        ("blob", paths["orphan"].name),
        ("part", "killed.part"),
        ("temporary", "forgeml-bundle-killed"),
    }
    assert all(p.exists() for p in paths.values())  # a dry run deletes nothing
    applied = collect_garbage(ctx, apply=True)
    assert applied.removed is not None and len(applied.removed.items) == 3
    assert not paths["orphan"].exists() and not paths["part"].exists()
    assert not paths["stale"].exists() and paths["fresh"].exists()
    # everything referenced still reads, digests checked
    assert len(data.load("credit", part="train", workspace=workspace)) > 0
    assert registry.load("credit@1", workspace=workspace).signature.names
    run = workspace.runs.search_runs(experiments=["gc"]).items[0]
    tree = workspace.artifacts.tree(run.artifacts[0].digest)
    assert workspace.artifacts.get_bytes(tree[0].digest) == b"kept"
    assert collect_garbage(ctx).found.items == ()
    assert collect_garbage(ctx, grace_s=0).found.count("part") == 1  # the fresh one


def test_a_damaged_referenced_tree_stops_the_collection(workspace, german, tmp_path, system_tmp):
    paths = _fill(workspace, german, tmp_path)
    bundle = workspace.models.get_version("credit", 1).bundle_digest
    path = workspace.artifacts.path(bundle)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-3] + b"!!!")
    ctx = _context(workspace)
    with pytest.raises(ArtifactIntegrityError, match=bundle):
        collect_garbage(ctx, apply=True)
    assert paths["orphan"].exists()


def test_forgeml_gc_is_a_dry_run_unless_applied(german, tmp_path):
    home = tmp_path / "ws"
    with Workspace(Settings(home=home)) as ws:
        data.add(german, name="credit", workspace=ws)
        orphan = ws.artifacts.path(ws.artifacts.put_bytes(b"orphan"))  # type: ignore[attr-defined]
    _age_everything(home / "artifacts", 2 * DAY)
    scratch = tmp_path / "system-tmp"
    scratch.mkdir()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "forgeml", "--home", str(home), "gc", *args],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "TMPDIR": str(scratch), "COLUMNS": "200"},
        )  # fmt: skip

    listed = cli()
    assert listed.returncode == 0, listed.stderr
    assert "1 orphan blobs" in listed.stdout and "dry run" in listed.stdout and orphan.exists()
    applied = cli("--apply")
    assert applied.returncode == 0 and "removed: 1 orphan blobs" in applied.stdout
    assert not orphan.exists()
    bad = cli("--grace", "soon")
    assert bad.returncode == 2 and "--grace" in bad.stderr
