"""Loop records: steps finish once across restarts, decisions append, leases have one holder."""

from __future__ import annotations

import time

import pytest

from forgeml.errors import InputError, NotFoundError


def test_a_step_restarted_after_a_crash_is_the_same_row_and_finishes_once(workspace):
    store = workspace.loop
    first = store.start_step("elec", cycle=1, kind="train", key="cycle-1/train", holder="a")
    assert (first.state, first.attempts, first.output) == ("started", 1, None)
    # the holder died: the next pass starts the same key again
    again = store.start_step("elec", cycle=1, kind="train", key="cycle-1/train", holder="b")
    assert again.step_id == first.step_id
    assert (again.state, again.attempts, again.holder) == ("started", 2, "b")
    done = store.finish_step(again.step_id, {"version": 3})
    assert done.state == "finished" and done.output == {"version": 3}
    assert done.finished_at is not None and done.finished_at >= done.started_at
    # a finished step is never started again
    later = store.start_step("elec", cycle=1, kind="train", key="cycle-1/train", holder="c")
    assert later.state == "finished" and later.attempts == 2 and later.holder == "b"
    assert [s.key for s in store.steps("elec")] == ["cycle-1/train"]
    assert store.steps("elec", state="started") == []
    assert store.step("elec", "cycle-2/train") is None


def test_a_failed_step_keeps_its_error_until_it_starts_again(workspace):
    store = workspace.loop
    step = store.start_step("elec", cycle=2, kind="assemble", key="cycle-2/assemble", holder="a")
    failed = store.fail_step(step.step_id, "no labelled rows")
    assert failed.state == "failed" and failed.error == "no labelled rows"
    retry = store.start_step("elec", cycle=2, kind="assemble", key="cycle-2/assemble", holder="a")
    assert retry.state == "started" and retry.error is None and retry.attempts == 2
    with pytest.raises(NotFoundError):
        store.finish_step(10_000, {})
    with pytest.raises(InputError, match="state"):
        store.steps("elec", state="done")


def test_decisions_are_appended_in_order_with_their_numbers(workspace):
    store = workspace.loop
    a = store.record_decision(
        "elec",
        kind="trigger",
        name="performance",
        passed=True,
        summary="accuracy 0.71 on 500 labelled rows < 0.80 - 0.05",
        detail={"value": 0.71, "rows": 500, "nan": float("nan")},
        actor="loop",
    )
    b = store.record_decision(
        "elec",
        kind="gate",
        name="gate.latency",
        passed=False,
        summary="slow",
        cycle=1,
        actor="loop",
    )
    assert a.detail == {"value": 0.71, "rows": 500, "nan": None}
    listed = store.decisions("elec")
    assert [d.decision_id for d in listed] == [a.decision_id, b.decision_id]
    assert [d.passed for d in listed] == [True, False]
    assert store.decisions("elec", kind="gate") == [b]
    assert store.decisions("elec", cycle=1) == [b]
    assert store.decisions("elec", limit=1) == [b]
    assert store.decisions("other") == []
    assert store.loop_models() == ["elec"]


def test_a_lease_has_one_holder_until_it_expires(workspace):
    store = workspace.loop
    assert store.acquire_lease("elec", "a", ttl_ms=60_000)
    assert not store.acquire_lease("elec", "b", ttl_ms=60_000)
    assert store.acquire_lease("elec", "a", ttl_ms=60_000)  # a renewal
    assert store.lease("elec").holder == "a"
    assert not store.release_lease("elec", "b")
    assert store.release_lease("elec", "a")
    assert store.lease("elec") is None
    assert store.acquire_lease("elec", "b", ttl_ms=1)
    time.sleep(0.01)  # the lease expired: anyone may take it
    assert store.acquire_lease("elec", "c", ttl_ms=60_000)
    assert store.lease("elec").holder == "c"
    with pytest.raises(InputError, match="time to live"):
        store.acquire_lease("elec", "c", ttl_ms=0)


def test_state_is_replaced_whole(workspace):
    store = workspace.loop
    assert store.state("elec") == {}
    store.put_state("elec", {"cycle": 1, "labels_seen": 10})
    store.put_state("elec", {"cycle": 2})
    assert store.state("elec") == {"cycle": 2}
