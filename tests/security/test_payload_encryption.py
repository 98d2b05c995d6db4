"""Encryption at rest of the prediction log's payloads: inputs, outputs and labels are stored
as AES-256-GCM ciphertext (in the store and in the server's journal) when the workspace has an
encryption key; reading, monitoring and rotation work; a wrong key is a clear error."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from forgeml import workflows
from forgeml.config import Settings
from forgeml.errors import ArtifactIntegrityError
from forgeml.security import Principal, authenticate
from forgeml.serve._spool import PredictionSpool
from forgeml.store import PredictionRecord, Workspace
from forgeml.store._encryption import PAYLOAD_PREFIX
from forgeml.store._schema import feedback_revisions, prediction_feedback, predictions
from forgeml.testing import admin_token

MARKER = "secret-marker-5e1f"


def _record(i: int) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"req-{i}",
        model="m",
        version=1,
        role="primary",
        time_ms=1_700_000_000_000 + i,
        latency_ms=1.0,
        n_rows=2,
        inputs={"email": [f"{MARKER}-{i}@x.org", "b@y.org"], "age": [30 + i, 40]},
        outputs={
            "predictions": [0, 1],
            "probabilities": [[0.9, 0.1], [0.2, 0.8]],
            "classes": [0, 1],
        },
        protocol="json",
    )


def _stored(ws: Workspace) -> list[str]:
    with ws.db.engine.connect() as conn:
        rows = conn.execute(sa.select(predictions.c.inputs, predictions.c.outputs)).all()
        labels = conn.execute(sa.select(prediction_feedback.c.labels)).all()
        revisions = conn.execute(sa.select(feedback_revisions.c.labels)).all()
    return [*(t for row in rows for t in row), *(row[0] for row in (*labels, *revisions))]


def test_payloads_are_ciphertext_read_back_and_rotated(store_url: str, tmp_path: Path) -> None:
    old_key, new_key = secrets.token_hex(32), secrets.token_hex(32)

    def open_ws(key: str | None) -> Workspace:
        return Workspace(
            Settings(
                home=tmp_path / "ws",
                store_url=store_url,
                artifacts=tmp_path / "artifacts",
                encryption_key=key,
            )
        )

    plain = open_ws(None)
    plain.predlog.write_predictions([_record(0)])  # stored before encryption was turned on
    ws = open_ws(old_key)
    ws.predlog.write_predictions([_record(i) for i in range(1, 5)])
    ws.predlog.add_feedback({"req-1": [1, 0], "req-0": [0, 0]}, user="t")
    ws.predlog.correct_feedback({"req-1": [1, 1]}, user="t", reason="checked")
    assert [r.labels for r in ws.predlog.feedback_history("req-1")] == [[1, 0], [1, 1]]
    # the audit log keeps how many labels changed, never the sealed values themselves
    entries = [e for e in ws.audit.entries() if e.action.startswith("feedback.")]
    assert [e.action for e in entries] == ["feedback.add", "feedback.correct"]
    assert entries[0].after == {"req-1": {"sealed_labels": 2}, "req-0": {"sealed_labels": 2}}
    assert entries[1].before == {"labels": {"req-1": {"sealed_labels": 2}}}
    assert entries[1].after["labels"] == {"req-1": {"sealed_labels": 2}}
    stored = _stored(ws)
    # 4 requests' inputs and outputs, 2 labels, 3 label revisions
    assert sum(t.startswith(PAYLOAD_PREFIX) for t in stored) == 4 * 2 + 2 + 3
    assert not any(MARKER in t for t in stored if t.startswith(PAYLOAD_PREFIX))
    frame = ws.predlog.predictions("m")
    assert len(frame) == 10 and frame["email"].str.contains(MARKER).sum() == 5
    assert frame["label"].notna().sum() == 4
    windows = list(ws.predlog.windows("m", every_ms=60_000, output="pandas"))
    assert sum(len(t) for _, t in windows) == 10

    # without the key, or with another one: a clear error naming the request
    with pytest.raises(ArtifactIntegrityError, match="no encryption key"):
        plain.predlog.predictions("m")
    other = open_ws(secrets.token_hex(32))
    with pytest.raises(ArtifactIntegrityError, match="encrypted with a key this workspace"):
        other.predlog.predictions("m")
    other.close()
    # a sealed payload copied onto another row does not decrypt there
    with ws.db.engine.begin() as conn:
        one = conn.execute(
            sa.select(predictions.c.inputs).where(predictions.c.request_id == "req-1")
        ).scalar_one()
        conn.execute(
            sa.update(predictions).where(predictions.c.request_id == "req-2").values(inputs=one)
        )
    with pytest.raises(ArtifactIntegrityError, match="req-2 does not decrypt"):
        ws.predlog.predictions("m")
    with ws.db.engine.begin() as conn:
        conn.execute(sa.delete(predictions).where(predictions.c.request_id == "req-2"))

    # rotation: every payload (the plaintext one too) is sealed with the new key
    new = open_ws(new_key)
    token = admin_token(new)  # access control is on in team mode (PostgreSQL)
    admin = authenticate(new, token) if token else Principal("admin")
    outcome = workflows.reencrypt_artifacts(workflows.Context(new, admin), old_keys=[old_key])
    assert outcome["prediction_log_rows"] == 4 + 2 + 3
    assert all(t.startswith(PAYLOAD_PREFIX + new.predlog.cipher.key_id) for t in _stored(new))  # type: ignore[union-attr]
    assert len(new.predlog.predictions("m")) == 8
    with pytest.raises(ArtifactIntegrityError):
        ws.predlog.predictions("m")  # the old key alone no longer reads them
    for w in (plain, ws, new):
        w.close()


def test_the_journal_is_sealed_and_replayed_only_with_the_key(tmp_path: Path) -> None:
    ws = Workspace(Settings(home=tmp_path / "ws", encryption_key=secrets.token_hex(32)))
    folder = tmp_path / "spool"
    spool = PredictionSpool(folder, cipher=ws.predlog.cipher)
    for i in range(3):
        spool.append(_record(i))
    spool.sync()
    content = b"".join(p.read_bytes() for p in folder.glob("*.jsonl"))
    assert content.count(PAYLOAD_PREFIX.encode()) == 3 and MARKER.encode() not in content
    path = next(folder.glob("*.jsonl"))
    records = [
        r
        for batch in PredictionSpool.read(path, batch_size=10, cipher=ws.predlog.cipher)
        for r in batch
    ]
    assert [r.request_id for r in records] == ["req-0", "req-1", "req-2"]
    with pytest.raises(ArtifactIntegrityError, match="no encryption key"):
        list(PredictionSpool.read(path, batch_size=10))
    spool.close()
    ws.close()


def test_a_journal_sealed_with_another_key_is_kept_not_lost(tmp_path: Path) -> None:
    from forgeml.serve._predlog import PredictionLog

    home = tmp_path / "ws"
    old = Workspace(Settings(home=home, encryption_key=secrets.token_hex(32)))
    folder = tmp_path / "spool"
    spool = PredictionSpool(folder, cipher=old.predlog.cipher)
    for i in range(3):
        spool.append(_record(i))
    assert spool.close() == 3  # a server stopped before the store took them
    other = Workspace(Settings(home=home, encryption_key=secrets.token_hex(32)))
    log = PredictionLog(other.predlog, spool=folder, cipher=other.predlog.cipher).start()
    log.close()
    assert other.predlog.count_predictions() == 0 and log.replayed == 0
    assert len(list(folder.glob("*.jsonl"))) == 1  # kept for a server given the right key
    log = PredictionLog(old.predlog, spool=folder, cipher=old.predlog.cipher).start()
    log.close()
    assert log.replayed == 3 and old.predlog.count_predictions() == 3
    assert not list(folder.glob("*.jsonl"))
    old.close()
    other.close()


def test_a_rotation_reseals_the_journal_of_a_stopped_server(store_url: str, tmp_path: Path) -> None:
    """Journal files a server left when it stopped (sealed with the old key, or in clear from
    before encryption was on) are sealed with the new key by ``reencrypt_artifacts``; a torn
    line is dropped; the files of a server still running are left alone and counted; the next
    server, given only the new key, writes every record to the store."""
    from forgeml.serve._app import spool_folder
    from forgeml.serve._predlog import PredictionLog

    old_key, new_key = secrets.token_hex(32), secrets.token_hex(32)

    def open_ws(key: str | None) -> Workspace:
        settings = Settings(
            home=tmp_path / "ws", store_url=store_url, artifacts=tmp_path / "a", encryption_key=key
        )
        return Workspace(settings)

    plain, old = open_ws(None), open_ws(old_key)
    folder = spool_folder(old)
    before = PredictionSpool(folder)  # a server from before encryption was on
    before.append(_record(0))
    assert before.close() == 1
    stopped = PredictionSpool(folder, cipher=old.predlog.cipher, segment_records=2)
    for i in range(1, 6):
        stopped.append(_record(i))
    assert stopped.close() == 5  # three files: 2 + 2 + 1 records
    last = max(folder.glob(f"{stopped.owner}-*.jsonl"))
    with last.open("ab") as f:
        f.write(b"fmlenc1:torn-by-a-cra")  # the write a crash cut short
    running = PredictionSpool(folder, cipher=old.predlog.cipher)
    running.append(_record(9))
    running.sync()
    live = running.folder / f"{running.owner}-0.jsonl"
    live_bytes = live.read_bytes()

    new = open_ws(new_key)
    token = admin_token(new)  # access control is on in team mode (PostgreSQL)
    admin = authenticate(new, token) if token else Principal("admin")
    ctx = workflows.Context(new, admin)
    files = {p: p.read_bytes() for p in folder.glob("*.jsonl") if p != live}
    with pytest.raises(ArtifactIntegrityError, match="Journal file"):
        workflows.reencrypt_artifacts(ctx)  # the old key is needed to open them
    sealed = {p: b for p, b in files.items() if p.name.startswith(stopped.owner)}
    assert {p: p.read_bytes() for p in sealed} == sealed  # each file is replaced whole or not
    outcome = workflows.reencrypt_artifacts(ctx, old_keys=[old_key])
    assert (outcome["journal_files"], outcome["journal_lines"]) == (3, 5)  # the clear one: done
    assert outcome["journal_files_in_use"] == 1
    assert live.read_bytes() == live_bytes  # a running server's file is left alone
    head = f"{PAYLOAD_PREFIX}{new.predlog.cipher.key_id}:".encode()  # type: ignore[union-attr]
    for path in files:
        lines = path.read_bytes().splitlines(keepends=True)
        assert lines and all(line.startswith(head) and line.endswith(b"\n") for line in lines)
        assert MARKER.encode() not in path.read_bytes()
    again = workflows.reencrypt_artifacts(ctx, old_keys=[old_key])
    assert (again["journal_files"], again["journal_lines"]) == (0, 0)
    [entry] = new.audit.entries(action="artifacts.reencrypt")[-1:]
    assert entry.after["journal_lines"] == 0

    running.close()
    live.unlink()  # not part of this check: written by its own server's next start
    log = PredictionLog(new.predlog, spool=folder, cipher=new.predlog.cipher).start()
    log.close()
    assert log.replayed == 6 and new.predlog.count_predictions() == 6
    assert not list(folder.glob("*.jsonl"))
    for w in (plain, old, new):
        w.close()
