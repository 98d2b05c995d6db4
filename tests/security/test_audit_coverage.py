"""One audit entry per state change: every use case whose action changes state, run for real,
writes exactly the entries of its changes (on SQLite and PostgreSQL); the changes made below
the use cases (run tracking, loop decisions, alerts) are audited in their own transactions."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

import forgeml as fm
from forgeml import registry, workflows
from forgeml.config import Settings
from forgeml.security import ACTIONS, PYTHON_API
from forgeml.store import NewAlert, PredictionRecord, Workspace, acting
from forgeml.testing import DEFAULT_POSTGRES_URL, isolated_postgres_url

from .conftest import Keys

#: Use cases that change state through other use cases or capabilities, each of whose changes
#: is audited by the store that makes it; where that is tested.
COMPOSITE = {
    "train_model": "a run (run.create, run.tags, run.end), a hold-out split (data.split) and "
    "model.register: test_tracked_runs_are_audited and the rows below",
    "evaluate_model": "a run: test_tracked_runs_are_audited",
    "quickstart": "add_data, train_model, promote, feedback: the rows below",
    "check_alerts": "alert.record per new alert: test_alerts_and_loop_decisions_are_audited",
    "watch_alerts": "check_alerts on a schedule",
    "reencrypt_artifacts": "artifacts.reencrypt: tests/security/test_encryption.py",
}


def _new_actions(ws: Workspace, call: Callable[[], Any]) -> list[str]:
    before = len(ws.audit.entries())
    call()
    return [e.action for e in ws.audit.entries()[before:]]


def test_every_state_changing_use_case_writes_one_entry_per_change(
    keys: Keys, adult_numeric: pd.DataFrame
) -> None:
    from sklearn.linear_model import LogisticRegression

    ws = keys.workspace
    admin = keys.context("admin", "cli")
    X = adult_numeric.drop(columns=["income"])
    model = LogisticRegression(max_iter=300).fit(X, adult_numeric["income"])
    with admin.acting():
        for _ in range(2):
            registry.register(model, name="adult", sample=X, workspace=ws, actor=admin.principal)
    record = PredictionRecord(
        request_id="req-1",
        model="adult",
        version=1,
        role="primary",
        protocol="json",
        time_ms=1_780_000_000_000,
        latency_ms=1.0,
        n_rows=1,
        inputs={"age": [39]},
        outputs={"predictions": [">50K"]},
    )
    ws.predlog.write_predictions([record])
    ws.predlog.add_feedback({"req-1": [">50K"]}, user="ada")
    orphan = ws.artifacts.put_bytes(b"referenced by nothing")
    old = time.time() - 3600
    os.utime(ws.artifacts.path(orphan), (old, old))

    calls: dict[str, tuple[Callable[[], Any], list[str]]] = {
        "add_data": (
            lambda: workflows.add_data(admin, adult_numeric, name="adult", target="income"),
            ["data.add"],
        ),
        "split_data": (
            lambda: workflows.split_data(admin, "adult@1", fractions=(0.8, 0.2)),
            ["data.split"],
        ),
        "promote": (lambda: workflows.promote(admin, "adult", 1), ["alias.move"]),
        "set_route": (
            lambda: workflows.set_route(admin, "adult", {"split": {"1": 1, "2": 1}}),
            ["route.set"],
        ),
        "clear_route": (lambda: workflows.clear_route(admin, "adult"), ["route.clear"]),
        "remove_alias": (
            lambda: workflows.remove_alias(admin, "adult", "production"),
            ["alias.remove"],
        ),
        "change_status": (
            lambda: workflows.change_status(admin, "adult", 2, "archived"),
            ["model.status"],
        ),
        "protect_alias": (
            lambda: workflows.protect_alias(admin, "production", roles=["deployer"]),
            ["guard.set"],
        ),
        "unprotect_alias": (
            lambda: workflows.unprotect_alias(admin, "production"),
            ["guard.remove"],
        ),
        "create_key": (
            lambda: workflows.create_key(admin, role="viewer", name="extra"),
            ["key.create"],
        ),
        "revoke_key": (lambda: workflows.revoke_key(admin, "extra"), ["key.revoke"]),
        "correct_feedback": (
            lambda: workflows.correct_feedback(admin, {"req-1": ["<=50K"]}, reason="checked"),
            ["feedback.correct"],
        ),
        "collect_garbage": (
            lambda: workflows.collect_garbage(admin, apply=True, grace_s=60),
            ["gc.apply"],
        ),
    }
    # list_keys reads, under the action that manages keys
    calls["list_keys"] = (lambda: workflows.list_keys(admin), [])
    changing = {u for u, a in PYTHON_API.items() if ACTIONS[a].changes_state}
    assert changing == set(calls) | set(COMPOSITE), "a state-changing use case is not covered"
    for name, (call, expected) in calls.items():
        assert _new_actions(ws, call) == expected, name
    # reading changes nothing and writes no entry
    assert _new_actions(ws, lambda: workflows.label_history(admin, "req-1")) == []
    assert _new_actions(ws, lambda: workflows.collect_garbage(admin, grace_s=60)) == []
    assert ws.audit.verify().ok


def test_tracked_runs_are_audited(workspace: Workspace) -> None:
    """Experiment created, run created, tags changed, run ended: one entry each; metrics and
    parameters are the run's data, not state changes of the workspace."""
    ws = workspace

    def track() -> str:
        with fm.start_run(experiment="churn", tags={"team": "risk"}, workspace=ws) as run:
            run.log_params({"lr": 0.05})
            run.log_metrics({"loss": 0.5}, step=0)
            run.set_tags({"team": "risk"})  # unchanged: no entry
            run.set_tags({"stage": "tuned"})
            return run.run_id

    run_id = ""

    def first() -> None:
        nonlocal run_id
        run_id = track()

    assert _new_actions(ws, first) == ["experiment.create", "run.create", "run.tags", "run.end"]
    entries = ws.audit.entries(obj=f"run:{run_id}")
    assert entries[0].after["tags"] == {"team": "risk"}
    assert (entries[1].before, entries[1].after) == (None, {"stage": "tuned"})
    assert (entries[2].before, entries[2].after) == (
        {"status": "running"},
        {"status": "finished"},
    )
    assert _new_actions(ws, track) == ["run.create", "run.tags", "run.end"]  # experiment exists

    def as_ada() -> None:
        with acting("ada", "user", "cli"):
            track()

    assert _new_actions(ws, as_ada) == ["run.create", "run.tags", "run.end"]
    # the tags written by the flusher thread name the run's starter too
    assert {(e.actor, e.origin) for e in ws.audit.entries()[-3:]} == {("ada", "cli")}


def test_alerts_and_loop_decisions_are_audited(workspace: Workspace) -> None:
    ws = workspace
    alert = NewAlert(
        rule="drift",
        model="adult",
        ref="adult@production",
        metric="input_drift.share_drifted",
        op=">",
        threshold=0.3,
        value=0.5,
        severity="critical",
        window_start_ms=0,
        window_end_ms=3_600_000,
        message="drifted",
    )
    assert _new_actions(ws, lambda: ws.monitor.record_alert(alert)) == ["alert.record"]
    assert _new_actions(ws, lambda: ws.monitor.record_alert(alert)) == []  # the same alert

    def decide() -> None:
        ws.loop.record_decision(
            "adult", kind="trigger", name="drift", passed=True, summary="fired", actor="loop"
        )

    assert _new_actions(ws, decide) == ["loop.decision"]
    [entry] = ws.audit.entries(action="loop.decision")
    assert (entry.actor, entry.object, entry.after["summary"]) == ("loop", "model:adult", "fired")


def test_creating_or_upgrading_a_workspace_is_audited(store_url: str, tmp_path: Path) -> None:
    """``forgeml init`` (any first opening) records ``workspace.create``; an older store
    opened by this forgeml records ``workspace.upgrade``; an opening that changes nothing,
    nothing."""
    from alembic import command
    from alembic.config import Config
    from tests.cli.test_cli import forgeml

    from forgeml.store._db import _MIGRATIONS, known_revisions

    env = {"FORGEML_STORE_URL": store_url, "FORGEML_USER": "ada"}
    team = not store_url.startswith("sqlite")  # team mode: the first command makes the admin key
    first = ("keys", "create", "--role", "admin") if team else ("init", "--json")
    done = forgeml(*first, home=tmp_path / "ws", env=env)
    assert done.returncode == 0, done.stderr
    settings = Settings(home=tmp_path / "ws", store_url=store_url, user="bob")
    with Workspace(settings) as ws:  # already at the head: no entry
        entry = ws.audit.entries()[0]
        assert (entry.action, entry.object, entry.actor, entry.origin) == (
            "workspace.create", "workspace", "ada", "cli"
        )  # fmt: skip
        assert entry.after["schema_revision"] == known_revisions()[-1]
        assert [e.action for e in ws.audit.entries()[1:]] == (["key.create"] if team else [])
        assert ws.audit.verify().ok
    if not team:
        assert forgeml("init", home=tmp_path / "ws", env=env).returncode == 0
    with Workspace(settings) as ws:
        assert len(ws.audit.entries()) == (2 if team else 1)

    # a store left at the first revision by an older forgeml
    older = tmp_path / "older"
    older.mkdir()
    with contextlib.ExitStack() as stack:
        if store_url.startswith("sqlite"):
            url = f"sqlite:///{older / 'forgeml.db'}"
        else:  # a second isolated schema of the same server
            url = stack.enter_context(isolated_postgres_url(DEFAULT_POSTGRES_URL))
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, known_revisions()[0])
        engine.dispose()
        with Workspace(Settings(home=older, store_url=url, user="bob")) as ws:
            [entry] = ws.audit.entries()
            assert (entry.action, entry.actor) == ("workspace.upgrade", "bob")
            assert entry.before == {"schema_revision": known_revisions()[0]}
            assert entry.after["schema_revision"] == known_revisions()[-1]
            assert ws.audit.verify().ok
