"""Encryption at rest: artifact blobs sealed with AES-256-GCM (no plaintext on disk, the same
digests), tampering and a missing key detected, a rotation re-encrypting every blob."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import forgeml as fm
from forgeml import workflows
from forgeml.config import Settings
from forgeml.errors import ArtifactIntegrityError, InputError
from forgeml.security import Principal
from forgeml.store import Workspace
from forgeml.store._encryption import MAGIC, EncryptedArtifactStore, load_key


def _blob_files(ws: Workspace) -> list[Path]:
    return [p for p in (ws.settings.resolved_artifacts / "sha256").rglob("*") if p.is_file()]


def test_blobs_are_sealed_and_read_back_whole(tmp_path: Path, adult_numeric: pd.DataFrame) -> None:
    key = secrets.token_hex(32)
    ws = Workspace(Settings(home=tmp_path / "ws", encryption_key=key))
    assert isinstance(ws.artifacts, EncryptedArtifactStore)
    big = os.urandom(3 * (1 << 20) + 123)  # several chunks
    for data in (b"", b"x", big, b"sensitive-marker-7f3a" * 1000):
        digest = ws.artifacts.put_bytes(data)
        assert ws.artifacts.get_bytes(digest) == data
    X, y = adult_numeric.drop(columns=["income"]), adult_numeric["income"]
    fm.register(LogisticRegression(max_iter=300).fit(X, y), name="adult", sample=X, workspace=ws)
    loaded = fm.load("adult@1", workspace=ws)
    assert len(loaded.predict(X.head(5))) == 5
    for path in _blob_files(ws):
        content = path.read_bytes()
        assert content.startswith(MAGIC), path
        assert b"sensitive-marker-7f3a" not in content
        assert b"education_num" not in content  # the bundle's manifest and sample are sealed


def test_tampering_a_wrong_key_and_no_key_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    ws = Workspace(Settings(home=home, encryption_key=secrets.token_hex(32)))
    digest = ws.artifacts.put_bytes(b"model bytes " * 10_000)
    path = ws.artifacts.path(digest)  # type: ignore[attr-defined]
    other = Workspace(Settings(home=home, encryption_key=secrets.token_hex(32)))
    with pytest.raises(ArtifactIntegrityError, match="encrypted with a key this workspace was not"):
        other.artifacts.get_bytes(digest)
    plain = Workspace(Settings(home=home))
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        plain.artifacts.get_bytes(digest)  # without a key the sealed bytes never pass as data
    content = bytearray(path.read_bytes())
    os.chmod(path, 0o644)
    content[len(MAGIC) + 30] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(ArtifactIntegrityError, match="does not decrypt"):
        ws.artifacts.get_bytes(digest)
    path.write_bytes(bytes(content[: len(MAGIC) + 16]))  # every chunk cut off
    with pytest.raises(ArtifactIntegrityError, match="cut short"):
        ws.artifacts.get_bytes(digest)
    with pytest.raises(InputError, match="32 bytes"):
        load_key("too-short")


def test_a_rotation_reencrypts_every_blob_and_is_audited(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    plain = Workspace(Settings(home=home))
    before = plain.artifacts.put_bytes(b"stored before encryption")
    old_key, new_key = secrets.token_hex(32), secrets.token_hex(32)
    old = Workspace(Settings(home=home, encryption_key=old_key))
    sealed_old = old.artifacts.put_bytes(b"sealed with the old key")
    assert old.artifacts.get_bytes(before) == b"stored before encryption"  # still readable
    new = Workspace(Settings(home=home, encryption_key=new_key))
    ctx = workflows.Context(new, Principal("ana"))
    with pytest.raises(ArtifactIntegrityError, match="not given"):
        workflows.reencrypt_artifacts(ctx)  # the old key is needed for the old blob
    # blobs are sealed one by one (each atomically): the failed pass may have sealed the
    # plaintext one already, never the one it could not open
    outcome = workflows.reencrypt_artifacts(ctx, old_keys=[old_key])
    assert outcome["reencrypted"] >= 1
    assert outcome["reencrypted"] + outcome["already_current"] == 2
    assert new.artifacts.get_bytes(before) == b"stored before encryption"
    assert new.artifacts.get_bytes(sealed_old) == b"sealed with the old key"
    assert all(new.artifacts.sealed_with_current_key(p.name) for p in _blob_files(new))  # type: ignore[attr-defined]
    with pytest.raises(ArtifactIntegrityError):
        old.artifacts.get_bytes(sealed_old)  # the old key no longer opens anything
    [entry] = new.audit.entries(action="artifacts")
    assert entry.after["reencrypted"] == outcome["reencrypted"] and entry.actor == "ana"
    again = workflows.reencrypt_artifacts(ctx)
    assert (again["reencrypted"], again["already_current"]) == (0, 2)


def test_reencrypt_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    old_key, new_key = secrets.token_hex(32), secrets.token_hex(32)
    Workspace(Settings(home=home, encryption_key=old_key)).artifacts.put_bytes(b"blob")
    (tmp_path / "old.key").write_text(old_key + "\n")
    (tmp_path / "new.key").write_text(new_key + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEML_")}
    env.update(FORGEML_HOME=str(home), FORGEML_ENCRYPTION_KEY_FILE=str(tmp_path / "new.key"))
    command = [sys.executable, "-m", "forgeml", "artifacts", "reencrypt"]
    done = subprocess.run(
        [*command, "--old-key-file", str(tmp_path / "old.key")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 blobs re-encrypted, 0 already sealed" in done.stdout
    assert old_key not in done.stdout + done.stderr and new_key not in done.stdout + done.stderr
    env.pop("FORGEML_ENCRYPTION_KEY_FILE")
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: The workspace has no encryption key: set FORGEML_ENCRYPTION_KEY or "
        "FORGEML_ENCRYPTION_KEY_FILE to the new key"
    )
