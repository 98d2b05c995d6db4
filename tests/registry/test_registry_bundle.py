"""Bundles: every file verified before anything is deserialized; the manifest; the card."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from forgeml import registry
from forgeml.errors import ArtifactIntegrityError, ConflictError, InputError, NotFoundError
from forgeml.registry import _flavors


def _flip_one_byte(ws, digest: str) -> None:
    path = ws.artifacts.path(digest)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def deserialized(monkeypatch):
    """Records every model deserialization (any flavor)."""
    calls: list[str] = []
    for flavor in _flavors.FLAVORS.values():
        original = flavor.load

        def spy(path, spec, _original=original, _name=flavor.name):
            calls.append(_name)
            return _original(path, spec)

        monkeypatch.setattr(flavor, "load", spy)
    return calls


def test_the_manifest_lists_every_file_with_its_sha256(sqlite_workspace, tiny, tiny_model):
    X, _ = tiny
    v = registry.register(
        tiny_model, name="m", sample=X, metrics={"auc": 0.9}, workspace=sqlite_workspace
    )
    entries = {e.path: e for e in sqlite_workspace.artifacts.tree(v.bundle_digest)}
    assert set(entries) == {
        "model.json",
        "model.skops",
        "reference.parquet",
        "profile.json",
        "card.md",
    }
    loaded = registry.load("m@1", workspace=sqlite_workspace)
    manifest = loaded.metadata
    assert manifest["name"] == "m" and manifest["version"] == 1
    assert {k: f["sha256"] for k, f in manifest["files"].items()} == {
        k: e.digest for k, e in entries.items() if k != "model.json"
    }
    assert manifest["model"]["trusted_types"] == []  # plain scikit-learn: skops trusts it
    assert manifest["metrics"] == {"auc": {"value": 0.9, "lower": None, "upper": None}}
    assert manifest["requirements"]["scikit-learn"]
    assert loaded.signature.names == ("a", "b")
    assert loaded.signature.classes == (0, 1)
    assert len(loaded.reference()) == len(X)
    assert "| a | numeric |" in loaded.card()


@pytest.mark.parametrize(
    "victim", ["model.json", "model.skops", "reference.parquet", "profile.json", "card.md", "tree"]
)
def test_one_flipped_byte_in_any_file_is_refused_before_loading(
    sqlite_workspace, tiny, tiny_model, deserialized, victim
):
    X, _ = tiny
    v = registry.register(tiny_model, name="m", sample=X, workspace=sqlite_workspace)
    registry.load("m@1", workspace=sqlite_workspace)
    assert deserialized == ["sklearn"]
    entries = {e.path: e.digest for e in sqlite_workspace.artifacts.tree(v.bundle_digest)}
    _flip_one_byte(sqlite_workspace, v.bundle_digest if victim == "tree" else entries[victim])
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        registry.load("m@1", workspace=sqlite_workspace)
    assert deserialized == ["sklearn"]  # the tampered bundle was never deserialized


def test_a_retired_version_is_not_served(sqlite_workspace, tiny, tiny_model):
    X, _ = tiny
    registry.register(tiny_model, name="m", sample=X, workspace=sqlite_workspace)
    registry.retire("m", 1, reason="leak found", workspace=sqlite_workspace)
    with pytest.raises(ConflictError, match="retired"):
        registry.load("m@1", workspace=sqlite_workspace, for_serving=True)
    with pytest.raises(ConflictError, match="retired"):
        registry.promote("m", 1, alias="production", workspace=sqlite_workspace)
    # still loadable for investigation, and not "latest"
    assert registry.load("m@1", workspace=sqlite_workspace).version == 1
    with pytest.raises(NotFoundError, match="no active version"):
        registry.load("m@latest", workspace=sqlite_workspace)


def test_bring_your_own_model_without_a_sample_uses_feature_names(
    sqlite_workspace, tiny, tiny_model
):
    v = registry.register(tiny_model, name="m", workspace=sqlite_workspace)
    loaded = registry.load(v.ref, workspace=sqlite_workspace)
    assert loaded.signature.source == "feature_names"
    assert loaded.signature.names == ("a", "b")
    assert loaded.reference() is None
    X, _ = tiny
    assert np.array_equal(loaded.predict(X), tiny_model.predict(X))


def test_models_that_cannot_be_registered_are_refused(sqlite_workspace, tiny):
    from sklearn.linear_model import LogisticRegression

    X, _ = tiny
    with pytest.raises(InputError, match="not fitted"):
        registry.register(LogisticRegression(), name="m", sample=X, workspace=sqlite_workspace)
    with pytest.raises(InputError, match="fitted estimator"):
        registry.register(object(), name="m", workspace=sqlite_workspace)
    fitted = LogisticRegression().fit(X.to_numpy(), [0, 1] * 30)  # no column names anywhere
    with pytest.raises(InputError, match="which columns"):
        registry.register(fitted, name="m", workspace=sqlite_workspace)
    with pytest.raises(InputError, match="model name"):
        registry.register(fitted, name="bad name", sample=X, workspace=sqlite_workspace)
    assert registry.list_models(workspace=sqlite_workspace) == []


def test_lineage_and_compare(sqlite_workspace, tiny, tiny_model):
    from forgeml.tracking import start_run

    X, _ = tiny
    with start_run("exp", workspace=sqlite_workspace) as run:
        run.log_params({"C": 1.0})
    registry.register(tiny_model, name="m", sample=X, run_id=run.run_id, workspace=sqlite_workspace)
    registry.register(
        tiny_model, name="m", sample=X, metrics={"auc": 0.8}, workspace=sqlite_workspace
    )
    found = registry.lineage("m@1", workspace=sqlite_workspace)
    assert found["run"]["run_id"] == run.run_id and found["run"]["params"] == {"C": 1.0}
    result = registry.compare("m@1", "m@2", workspace=sqlite_workspace)
    assert result["a"]["params"] == {"C": 1.0} and result["b"]["metrics"]["auc"]["value"] == 0.8
    assert result["a"]["latency"]["single_row_ms"] > 0
    assert "<table>" in registry.card("m@2", html=True, workspace=sqlite_workspace)
