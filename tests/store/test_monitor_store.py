"""Monitoring records: alerts once per rule and window, latest values with NaN, state."""

from __future__ import annotations

import math

import pytest

from forgeml.errors import InputError, NotFoundError
from forgeml.store import NewAlert


def _alert(rule: str = "drift", start: int = 0, end: int = 3_600_000) -> NewAlert:
    return NewAlert(
        rule=rule,
        model="churn",
        ref="churn@production",
        metric="input_drift.share_drifted",
        op=">",
        threshold=0.3,
        value=0.5,
        severity="warning",
        window_start_ms=start,
        window_end_ms=end,
        message="input_drift.share_drifted 0.5 > 0.3",
    )


def test_an_alert_is_recorded_once_per_rule_and_window(workspace):
    store = workspace.monitor
    first = store.record_alert(_alert())
    assert first is not None and first.delivery == "pending"
    assert store.record_alert(_alert()) is None
    other = store.record_alert(_alert(start=3_600_000, end=7_200_000))
    assert other is not None and other.alert_id != first.alert_id
    store.set_delivery(first.alert_id, "sent")
    listed = store.alerts(model="churn")
    assert [a.alert_id for a in listed] == [other.alert_id, first.alert_id]
    assert listed[1].delivery == "sent"
    assert store.alerts(model="other") == []
    with pytest.raises(NotFoundError):
        store.set_delivery(10_000, "sent")


def test_a_bad_severity_is_refused(workspace):
    import dataclasses

    with pytest.raises(InputError, match="severity"):
        workspace.monitor.record_alert(dataclasses.replace(_alert(), severity="loud"))
    assert workspace.monitor.alerts() == []


def test_latest_values_replace_and_keep_nan(workspace):
    store = workspace.monitor
    store.put_values(
        "churn",
        {"true.accuracy": 0.8, "estimated.roc_auc": float("nan")},
        window_start_ms=0,
        window_end_ms=10,
    )
    store.put_values("churn", {"true.accuracy": 0.7}, window_start_ms=10, window_end_ms=20)
    values = {v.metric: v for v in store.latest_values(["churn"])}
    assert values["true.accuracy"].value == 0.7 and values["true.accuracy"].window_end_ms == 20
    assert math.isnan(values["estimated.roc_auc"].value)
    assert store.latest_values(["other"]) == []


def test_state_round_trips(workspace):
    store = workspace.monitor
    assert store.get_state("watch") is None
    store.set_state("watch", {"last_end_ms": 5})
    store.set_state("watch", {"last_end_ms": 9})
    assert store.get_state("watch") == {"last_end_ms": 9}
    with pytest.raises(InputError):
        store.set_state("", {})
