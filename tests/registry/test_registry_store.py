"""RegistryStore contract, on SQLite and PostgreSQL: numbering, aliases, history, statuses."""

from __future__ import annotations

import time

import pytest

from forgeml.errors import ConflictError, InputError, NotFoundError
from forgeml.store import ModelStatus


def _add(ws, name="churn", **kwargs):
    return ws.models.add_version(
        name, flavor="sklearn", bundle=lambda v: (f"{v:064x}", 10), created_by="ana", **kwargs
    )


def test_versions_are_numbered_from_one_per_model(workspace):
    assert [_add(workspace).version for _ in range(3)] == [1, 2, 3]
    assert _add(workspace, "other").version == 1
    record = workspace.models.get_version("churn", 2)
    assert record.bundle_digest == f"{2:064x}"
    assert record.status is ModelStatus.ACTIVE
    assert [m.name for m in workspace.models.list_models()] == ["churn", "other"]


def test_a_failed_bundle_write_uses_no_number(workspace):
    _add(workspace)

    def broken(version):
        raise OSError("disk full")

    with pytest.raises(OSError):
        workspace.models.add_version("churn", flavor="sklearn", bundle=broken)
    assert _add(workspace).version == 2  # gap-free


def test_moving_an_alias_is_recorded_with_who_when_and_why(workspace):
    for _ in range(2):
        _add(workspace)
    first = workspace.models.set_alias("churn", "production", 1, actor="ana", reason="launch")
    assert (first.from_version, first.to_version) == (None, 1)
    between = time.time_ns() // 1_000_000
    time.sleep(0.01)
    moved = workspace.models.set_alias("churn", "production", 2, actor="bo", reason="better")
    assert (moved.from_version, moved.to_version) == (1, 2)
    assert workspace.models.resolve("churn", "production").version == 2
    assert workspace.models.get_model("churn").aliases == {"production": 2}
    assert workspace.models.get_version("churn", 2).aliases == ("production",)
    events = workspace.models.history("churn", alias="production")
    assert [(e.actor, e.reason, e.from_version, e.to_version) for e in events] == [
        ("ana", "launch", None, 1),
        ("bo", "better", 1, 2),
    ]
    # what was @production at a past time
    assert workspace.models.alias_at("churn", "production", between) == 1
    assert workspace.models.alias_at("churn", "production", first.at - 1) is None
    workspace.models.remove_alias("churn", "production", actor="bo", reason="pause")
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        workspace.models.resolve("churn", "production")
    assert workspace.models.alias_at("churn", "production", time.time_ns() // 1_000_000) is None


def test_latest_is_the_newest_active_version(workspace):
    for _ in range(3):
        _add(workspace)
    workspace.models.set_status("churn", 3, "archived", actor="ana", reason="worse")
    assert workspace.models.resolve("churn", "latest").version == 2
    assert workspace.models.resolve("churn", "3").version == 3


def test_status_changes_follow_the_life_cycle(workspace):
    for _ in range(2):
        _add(workspace)
    workspace.models.set_alias("churn", "production", 1)
    with pytest.raises(ConflictError, match="production"):
        workspace.models.set_status("churn", 1, ModelStatus.RETIRED)  # an alias points at it
    record = workspace.models.set_status("churn", 2, "retired", actor="ana", reason="leak")
    assert record.status is ModelStatus.RETIRED
    with pytest.raises(ConflictError, match="retired"):
        workspace.models.set_alias("churn", "production", 2)
    with pytest.raises(ConflictError, match="cannot become active"):
        workspace.models.set_status("churn", 2, "active")
    assert workspace.models.resolve("churn", "production").version == 1  # unchanged
    kinds = [(e.kind, e.version) for e in workspace.models.history("churn")]
    assert kinds == [("registered", 1), ("registered", 2), ("alias", 1), ("status", 2)]
    assert [v.version for v in workspace.models.list_versions("churn", statuses=["active"])] == [1]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.get_model("nope"), NotFoundError, "No model named 'nope'"),
        (lambda s: s.get_version("churn", 9), NotFoundError, "no version 9"),
        (lambda s: s.resolve("churn", "staging"), NotFoundError, "no alias 'staging'"),
        (lambda s: s.resolve("nope", "1"), NotFoundError, "No model named"),
        (lambda s: s.set_alias("churn", "Prod uction", 1), InputError, "alias"),
        (lambda s: s.set_alias("churn", "latest", 1), InputError, "reserved"),
        (lambda s: s.set_alias("churn", "production", 9), NotFoundError, "no version 9"),
        (lambda s: s.set_status("churn", 1, "gone"), InputError, "status"),
        (lambda s: s.add_version("a@b", flavor="x", bundle=None), InputError, "model name"),
    ],
)
def test_bad_input_is_named(workspace, call, error, match):
    _add(workspace)
    with pytest.raises(error, match=match):
        call(workspace.models)


def test_reverse_lineage_finds_versions_by_dataset_and_run(workspace):
    _add(workspace, dataset="adult@1")
    _add(workspace, "other", dataset="adult@1")
    _add(workspace, dataset="adult@2")
    found = workspace.models.versions_trained_on("adult@1")
    assert [v.ref for v in found] == ["churn@1", "other@1"]
