"""A version's drift baseline is read without reading or loading its model."""

from __future__ import annotations

from typing import BinaryIO

import pandas as pd
import pytest

import forgeml as fm
from forgeml.errors import InputError, NotFoundError
from forgeml.store import LocalArtifactStore


class ReadRecorder(LocalArtifactStore):
    """Records the digest of every blob opened for reading."""

    opened: list[str]

    def _open(self, digest: str) -> BinaryIO:
        self.opened.append(digest)
        return super()._open(digest)


def test_reference_and_profile_are_read_without_the_model(workspace, adult):
    from sklearn.ensemble import HistGradientBoostingClassifier

    sample = adult.select_dtypes("number")
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    model.fit(sample, adult["income"])
    version = fm.registry.register(model, name="adult", sample=sample, workspace=workspace)

    recorder = ReadRecorder(workspace.artifacts.root)
    recorder.opened = []
    workspace.artifacts = recorder
    frame, profile = fm.registry.reference("adult@latest", workspace=workspace)

    assert len(frame) == len(sample)  # 3,000 rows: under the 10,000-row cap, kept whole
    assert list(frame.columns) == list(sample.columns)
    pd.testing.assert_frame_equal(frame, sample.reset_index(drop=True), check_dtype=False)
    assert profile is not None and isinstance(profile, dict)
    tree = {e.path: e.digest for e in recorder.tree(version.bundle_digest)}
    model_files = {d for path, d in tree.items() if path.startswith("model")}
    assert model_files, tree
    read = set(recorder.opened)
    assert not read & model_files  # the model's bytes were never read
    assert tree["reference.parquet"] in read


def test_a_version_without_sample_rows_has_no_reference(workspace, tiny, tiny_model):
    X, _ = tiny
    fm.registry.register(tiny_model, name="m", sample=X, workspace=workspace)
    signature = fm.registry.load("m@1", workspace=workspace).signature
    fm.registry.register(tiny_model, name="m", signature=signature, workspace=workspace)
    with pytest.raises(NotFoundError, match="m@2 has no reference sample"):
        fm.registry.reference("m@2", workspace=workspace)
    with pytest.raises(InputError):
        fm.registry.reference("not a ref!", workspace=workspace)
