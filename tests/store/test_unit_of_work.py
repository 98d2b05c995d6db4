"""Units of work across stores, and registration that holds no lock while blobs are put."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forgeml import registry
from forgeml.errors import ForgeMLError, NotFoundError, StoreError
from forgeml.store import LocalArtifactStore, Workspace

CANARY = {"versions": {"1": 0.9, "2": 0.1}}


def add_version(ws: Workspace, name: str = "adult") -> int:
    digest = ws.artifacts.put_bytes(f"bundle of {name}".encode())
    return ws.models.add_version(name, flavor="sklearn", bundle=lambda _v: (digest, 1)).version


def test_writes_of_several_stores_commit_together(workspace: Workspace):
    add_version(workspace)
    with workspace.unit_of_work() as uow:
        uow.models.set_alias("adult", "production", 1, actor="ada")
        uow.routing.set_route("adult", CANARY, user="ada")
        assert workspace.db.in_transaction()
    assert not workspace.db.in_transaction()
    assert workspace.models.get_model("adult").aliases == {"production": 1}
    assert workspace.routing.route("adult") == (CANARY, 1)


def test_a_failing_second_write_rolls_back_the_first(workspace: Workspace):
    add_version(workspace)
    with pytest.raises(NotFoundError, match="99"), workspace.unit_of_work() as uow:
        uow.routing.set_route("adult", CANARY, user="ada")
        uow.models.set_alias("adult", "production", 99)  # no such version
    assert workspace.routing.route("adult") is None
    assert workspace.routing.routes() == {}
    # a database error (not a forgeml check) in the second statement rolls back too
    with pytest.raises(StoreError), workspace.unit_of_work() as uow:
        uow.models.set_alias("adult", "production", 1)
        with uow.db.transaction() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert workspace.models.get_model("adult").aliases == {}
    assert [e.kind for e in workspace.models.history("adult")] == ["registered"]


def test_an_error_raised_by_the_caller_rolls_back_everything(workspace: Workspace):
    add_version(workspace)
    with pytest.raises(RuntimeError, match="changed my mind"), workspace.unit_of_work() as uow:
        uow.models.set_alias("adult", "production", 1)
        uow.routing.set_route("adult", CANARY)
        raise RuntimeError("changed my mind")
    assert workspace.models.get_model("adult").aliases == {}
    assert workspace.routing.route("adult") is None


def test_inner_transactions_join_the_outer_one(workspace: Workspace):
    db = workspace.db
    with db.transaction() as outer:
        with db.transaction() as inner, db.transaction(write=False) as read:
            assert inner is outer and read is outer
        assert db.in_transaction()
    with (
        db.transaction(write=False),
        pytest.raises(StoreError, match="read-only"),
        db.transaction(),
    ):
        pass


def test_other_threads_do_not_join_an_open_unit_of_work(workspace: Workspace):
    add_version(workspace)
    seen: list[bool] = []
    with workspace.unit_of_work() as uow:
        uow.routing.set_route("adult", CANARY)
        thread = threading.Thread(target=lambda: seen.append(workspace.db.in_transaction()))
        thread.start()
        thread.join()
    assert seen == [False]


def test_registering_inside_a_unit_of_work_is_refused(workspace: Workspace):
    with pytest.raises(ForgeMLError, match="outside a unit of work"), workspace.unit_of_work():
        add_version(workspace)
    assert workspace.models.list_models() == []


class GuardedArtifacts(LocalArtifactStore):
    """Records whether a metadata transaction was open while each blob was written, and can
    hold the writes of one thread until released."""

    def __init__(self, root: Path, workspace: Workspace) -> None:
        super().__init__(root)
        self.workspace = workspace
        self.open_while_writing: list[bool] = []
        self.hold_thread: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()

    def _write_stream(self, stream: BinaryIO) -> tuple[str, int]:
        self.open_while_writing.append(self.workspace.db.in_transaction())
        if threading.get_ident() == self.hold_thread:
            self.holding.set()
            assert self.release.wait(60), "the held upload was never released"
        return super()._write_stream(stream)


@pytest.fixture
def guarded(workspace: Workspace, tmp_path: Path) -> Iterator[GuardedArtifacts]:
    store = GuardedArtifacts(tmp_path / "guarded", workspace)
    workspace.artifacts = store
    yield store


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, object]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = (X["a"] > 0).astype(int)
    return X, LogisticRegression().fit(X, y)


def test_registration_puts_every_blob_outside_a_transaction(workspace, guarded, fitted):
    X, model = fitted
    version = registry.register(model, name="m", sample=X, workspace=workspace)
    assert version.version == 1
    assert guarded.open_while_writing and not any(guarded.open_while_writing)


def test_a_slow_upload_does_not_block_another_registration(workspace, guarded, fitted):
    X, model = fitted
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def register_slowly() -> None:
        guarded.hold_thread = threading.get_ident()
        try:
            results["slow"] = registry.register(
                model, name="m", sample=X, workspace=workspace
            ).version
        except BaseException as e:  # surfaced by the assertions below
            errors.append(e)

    slow = threading.Thread(target=register_slowly)
    slow.start()
    try:
        assert guarded.holding.wait(60), "the slow registration never started its upload"
        # The slow registration is mid-upload. Were it holding the model's lock (or SQLite's
        # write lock), this one would wait for it, and the upload waits for this one to end.
        results["fast"] = registry.register(model, name="m", sample=X, workspace=workspace).version
    finally:
        guarded.release.set()
        slow.join(120)
    assert not errors, errors
    assert results == {"fast": 1, "slow": 2}  # the slow one lost number 1 and took the next
    loaded = registry.load("m@2", workspace=workspace)
    assert loaded.metadata["version"] == 2  # its bundle was rewritten for the number it got
    assert [e.version for e in workspace.models.history("m")] == [1, 2]
