"""The audit log: one entry per change in the changing transaction, hash-chained, tamper-evident,
valid under a concurrent burst of writers on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from forgeml import registry, workflows
from forgeml.errors import ConflictError
from forgeml.store import Workspace

from .conftest import Keys


@pytest.fixture
def changed(keys: Keys, adult_numeric: pd.DataFrame) -> Keys:
    """Keys plus real changes: data added, a model registered, promoted, routed, retired."""
    from sklearn.linear_model import LogisticRegression

    sci, dep = keys.context("scientist", "cli"), keys.context("deployer", "http:10.0.0.7")
    workflows.add_data(sci, adult_numeric, name="adult", target="income")
    X = adult_numeric.drop(columns=["income"])
    model = LogisticRegression(max_iter=300).fit(X, adult_numeric["income"])
    with sci.acting():
        for _ in range(2):
            registry.register(
                model, name="adult", sample=X, workspace=sci.workspace, actor=sci.principal
            )
    workflows.promote(dep, "adult", 1, reason="first")
    workflows.promote(dep, "adult", 2, reason="better")
    workflows.set_route(dep, "adult", {"split": {"1": 10, "2": 90}})
    workflows.clear_route(dep, "adult")
    workflows.change_status(dep, "adult", 1, "retired")
    return keys


def test_every_change_is_one_entry_naming_who_what_where_before_and_after(changed: Keys) -> None:
    entries = changed.workspace.audit.entries()
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    summary = [(e.action, e.object, e.actor) for e in entries if not e.action.startswith("key")]
    assert summary == [
        ("workspace.create", "workspace", entries[0].actor),
        ("data.add", "dataset:adult@1", "scientist-key"),
        ("model.register", "model:adult@1", "scientist-key"),
        ("model.register", "model:adult@2", "scientist-key"),
        ("alias.move", "model:adult@production", "deployer-key"),
        ("alias.move", "model:adult@production", "deployer-key"),
        ("route.set", "route:adult", "deployer-key"),
        ("route.clear", "route:adult", "deployer-key"),
        ("model.status", "model:adult@1", "deployer-key"),
    ]
    moves = [e for e in entries if e.action == "alias.move"]
    assert (moves[1].before, moves[1].after) == ({"version": 1}, {"version": 2, "reason": "better"})
    assert moves[1].origin == "http:10.0.0.7" and moves[1].actor_kind == "token"
    assert [e.action for e in entries[1:5]] == ["key.create"] * 4
    assert changed.workspace.audit.verify().ok
    # filters
    audit = changed.context("admin")
    assert {e.action for e in workflows.list_audit(audit, obj="model:adult")} == {
        "model.register", "alias.move", "model.status"
    }  # fmt: skip
    assert len(workflows.list_audit(audit, actor="deployer-key")) == 5
    assert len(workflows.list_audit(audit, action="route")) == 2
    assert [e.seq for e in workflows.list_audit(audit, limit=2)] == [len(entries) - 1, len(entries)]


def test_a_change_that_fails_leaves_no_entry(changed: Keys) -> None:
    ws = changed.workspace
    before = len(ws.audit.entries())
    dep = changed.context("deployer")
    with pytest.raises(ConflictError, match="retired"):
        workflows.promote(dep, "adult", 1)  # version 1 is retired
    with pytest.raises(RuntimeError), ws.unit_of_work():
        workflows.set_route(dep, "adult", {"split": {"2": 100}})
        raise RuntimeError("rolled back")
    assert len(ws.audit.entries()) == before
    assert ws.routing.route("adult") is None
    assert ws.audit.verify().ok


def _tamper(ws: Workspace, sql: str) -> None:
    with ws.db.transaction() as conn:
        for statement in sql.split("; "):
            conn.execute(sa.text(statement))


@pytest.mark.parametrize(
    ("sql", "first_broken", "problem"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 6", 6, "entry 6 was edited"),
        ("UPDATE audit_log SET after = '{\"version\": 9}' WHERE seq = 8", 8, "was edited"),
        ("UPDATE audit_log SET at = at + 1 WHERE seq = 3", 3, "was edited"),
        ("UPDATE audit_log SET origin = 'cli' WHERE seq = 9", 9, "was edited"),
        ("DELETE FROM audit_log WHERE seq = 5", 5, "entry 5 is missing"),
        ("DELETE FROM audit_log WHERE seq >= 11", 11, "entries at the end were deleted"),
        # two entries swap places (their contents exchanged, numbers kept)
        (
            "UPDATE audit_log SET seq = 0 WHERE seq = 6; "
            "UPDATE audit_log SET seq = 6 WHERE seq = 7; "
            "UPDATE audit_log SET seq = 7 WHERE seq = 0",
            6,
            "",
        ),
        # an entry rewritten with a recomputed hash breaks its successor's link
        ("UPDATE audit_log SET hash = prev_hash WHERE seq = 4", 4, "was edited"),
    ],
)
def test_tampering_with_any_row_is_detected(
    changed: Keys, sql: str, first_broken: int, problem: str
) -> None:
    ws = changed.workspace
    assert ws.audit.verify().ok and len(ws.audit.entries()) == 13
    _tamper(ws, sql)
    report = workflows.verify_audit(changed.context("admin"))
    assert not report.ok
    assert report.first_broken == first_broken
    assert problem in (report.problem or "")


def test_a_rehashed_edit_is_caught_by_its_successor(changed: Keys) -> None:
    from forgeml.store._audit import entry_hash

    ws = changed.workspace
    with ws.db.transaction() as conn:
        row = conn.execute(sa.text("SELECT * FROM audit_log WHERE seq = 5")).one()
        fields = (row.at, "mallory", row.actor_kind, row.origin, row.action, row.object,
                  row.before, row.after)  # fmt: skip
        conn.execute(
            sa.text("UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = 5"),
            {"h": entry_hash(row.prev_hash, 5, fields)},
        )
    report = ws.audit.verify()
    assert (report.ok, report.first_broken) == (False, 6)
    assert "does not follow entry 5" in (report.problem or "")


def test_a_concurrent_burst_keeps_one_valid_chain(keys: Keys) -> None:
    """Eight threads, each with its own workspace (own connections), move aliases and set
    guards at once: every change gets its entry, numbers are gap-free, the chain verifies."""
    ws = keys.workspace
    settings = ws.settings
    errors: list[BaseException] = []
    per_thread = 6

    def writer(i: int) -> None:
        from forgeml.security import authenticate

        try:
            with Workspace(settings) as own:
                ctx = workflows.Context(own, authenticate(own, keys.tokens["admin"]))
                for j in range(per_thread):
                    workflows.protect_alias(ctx, f"a{i}-{j}", roles=["deployer"])
        except BaseException as e:
            errors.append(e)

    before = len(ws.audit.entries())
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = ws.audit.entries()
    assert len(entries) == before + 8 * per_thread
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    report = ws.audit.verify()
    assert report.ok and report.entries == len(entries)


def test_concurrent_first_writers_of_a_fresh_store_start_one_chain(store_url: str) -> None:
    """Eight writers with their own connections append the first entries of an empty log at
    once (the head row does not exist yet; the first creates it, the others wait for it)."""
    from forgeml.store import AuditStore, Database
    from forgeml.store._audit import record_change

    Database(store_url).close()  # migrated, no entry yet
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        db = Database(store_url)
        AuditStore(db)
        try:
            start.wait()
            for j in range(3):
                with db.transaction():
                    record_change(db, "test.write", f"object:{i}-{j}", f"writer-{i}")
        except BaseException as e:
            errors.append(e)
        finally:
            db.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = Database(store_url)
    try:
        audit = AuditStore(db)
        entries = audit.entries()
        assert [e.seq for e in entries] == list(range(1, 25))
        written = {f"object:{i}-{j}" for i in range(8) for j in range(3)}
        assert {e.object for e in entries} == written
        report = audit.verify()
        assert report.ok and report.entries == 24
    finally:
        db.close()
