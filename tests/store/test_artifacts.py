"""The content-addressed artifact store."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from forgeml.errors import ArtifactIntegrityError, InputError, NotFoundError
from forgeml.store import LocalArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def _corrupt(path: Path, offset: int = 0) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_bytes_round_trip_and_digest(store):
    digest = store.put_bytes(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.get_bytes(digest) == b"hello"
    assert store.exists(digest) and store.size(digest) == 5


def test_identical_content_is_stored_once(store, tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(3_000_000))
    first = store.put_file(source)
    second = store.put_bytes(source.read_bytes())
    assert first == second
    blobs = [p for p in (store.root / "sha256").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    assert not any((store.root / "tmp").iterdir())  # no temporary files left behind


def test_folder_round_trip(store, tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "model.txt").write_text("trees")
    (src / "sub" / "meta.json").write_text("{}")
    digest = store.put_dir(src)
    assert store.put_dir(src) == digest  # deterministic
    assert [e.path for e in store.tree(digest)] == ["model.txt", "sub/meta.json"]
    out = store.get_dir(digest, tmp_path / "copy")
    assert (out / "model.txt").read_text() == "trees"
    assert (out / "sub" / "meta.json").read_text() == "{}"


def test_corrupted_blob_is_detected_and_named(store, tmp_path):
    digest = store.put_bytes(b"x" * 5_000_000)
    _corrupt(store.path(digest), offset=4_000_000)
    with pytest.raises(ArtifactIntegrityError, match=digest):
        store.get_bytes(digest)
    with pytest.raises(ArtifactIntegrityError):
        store.verify(digest)
    dest = tmp_path / "out.bin"
    with pytest.raises(ArtifactIntegrityError):
        store.get_file(digest, dest)
    assert not dest.exists()  # wrong bytes never reach the destination
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.bin")]


def test_corrupted_file_inside_a_folder_is_detected(store, tmp_path):
    src = tmp_path / "bundle"
    src.mkdir()
    (src / "a.txt").write_text("aaaa")
    (src / "b.txt").write_text("bbbb")
    digest = store.put_dir(src)
    inner = next(e for e in store.tree(digest) if e.path == "b.txt")
    _corrupt(store.path(inner.digest))
    with pytest.raises(ArtifactIntegrityError, match=inner.digest):
        store.get_dir(digest, tmp_path / "restored")


def test_putting_again_repairs_a_damaged_blob(store):
    digest = store.put_bytes(b"payload")
    _corrupt(store.path(digest))
    store.put_bytes(b"payload")
    assert store.get_bytes(digest) == b"payload"


def test_missing_and_malformed_digests(store, tmp_path):
    with pytest.raises(NotFoundError):
        store.get_bytes("0" * 64)
    for bad in ("../../etc/passwd", "ABC", "0" * 63, ""):
        with pytest.raises(InputError):
            store.get_bytes(bad)
    with pytest.raises(InputError):
        store.put_file(tmp_path / "does-not-exist")
    file_digest = store.put_bytes(b"just a file")
    with pytest.raises(InputError, match="not a folder"):
        store.tree(file_digest)


def test_concurrent_writers_of_the_same_content(store):
    payload = os.urandom(1_000_000)
    digests: list[str] = []
    threads = [
        threading.Thread(target=lambda: digests.append(store.put_bytes(payload))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(digests)) == 1
    assert store.get_bytes(digests[0]) == payload
