"""Monitoring a served model through a real server: delayed labels give the true metric per
window, equal to scikit-learn's on the same rows; before labels, the estimate only."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from forgeml.errors import InputError, NotFoundError
from forgeml.monitor import served_report

from .conftest import MODEL, POSITIVE, TARGET, records, register_adult, wait_logged

REQUESTS, ROWS = 30, 20
WINDOW = 200


def _send(url: str, adult, headers: dict[str, str]) -> list[dict]:
    """30 requests of 20 Adult rows (rows 3000-3599, never trained on); returns each request's
    id, first row, predictions and probabilities."""
    sent = []
    for i in range(REQUESTS):
        start = 3000 + i * ROWS
        body = {"records": records(adult, start, ROWS)}
        answer = httpx.post(
            f"{url}/v1/models/{MODEL}/predict", json=body, headers=headers, timeout=60
        )
        assert answer.status_code == 200, answer.text
        sent.append({"start": start, **answer.json()})
    return sent


def test_delayed_labels_give_the_true_metric_per_window(workspace, adult, server_factory):
    register_adult(workspace, adult)
    server = server_factory(workspace, models=(f"{MODEL}@production",))
    sent = _send(server.url, adult, server.headers)
    wait_logged(workspace, MODEL, REQUESTS)

    before = served_report(
        f"{MODEL}@production", window=str(WINDOW), workspace=workspace, n_bootstrap=200
    )
    assert [w.rows for w in before.windows] == [WINDOW] * 3
    assert all(w.complete for w in before.windows)
    assert sum(w.requests for w in before.windows) >= REQUESTS
    for w in before.windows:
        assert w.labelled_rows == 0 and w.true == {}
        assert 0.5 < w.estimated["accuracy"] <= 1.0 and 0.5 < w.estimated["roc_auc"] <= 1.0
        assert w.input_drift is not None and w.prediction_drift is not None
        assert w.latency_ms["p50"] <= w.latency_ms["p99"]
        assert any("estimated only" in n for n in w.notes)

    # labels come back later, for two requests in three
    labelled = [r for i, r in enumerate(sent) if i % 3 != 2]
    feedback = [
        {
            "request_id": r["request_id"],
            "labels": adult[TARGET].iloc[r["start"] : r["start"] + ROWS].tolist(),
        }
        for r in labelled
    ]
    answer = httpx.post(
        f"{server.url}/v1/feedback",
        json={"feedback": feedback},
        headers=server.headers,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text

    after = served_report(
        f"{MODEL}@production", window=str(WINDOW), workspace=workspace, n_bootstrap=200
    )
    per_window = WINDOW // ROWS
    for k, w in enumerate(after.windows):
        mine = [
            (i, r)
            for i, r in enumerate(sent[k * per_window : (k + 1) * per_window], k * per_window)
            if i % 3 != 2
        ]
        truth = np.concatenate(
            [adult[TARGET].iloc[r["start"] : r["start"] + ROWS].to_numpy() for _, r in mine]
        )
        predicted = np.concatenate([r["predictions"] for _, r in mine])
        positive = np.concatenate([np.asarray(r["probabilities"])[:, 1] for _, r in mine])
        assert w.labelled_rows == len(truth)
        accuracy, auc = w.true["accuracy"], w.true["roc_auc"]
        assert accuracy["value"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
        assert auc["value"] == pytest.approx(roc_auc_score(truth == POSITIVE, positive), abs=1e-12)
        assert accuracy["lower"] <= accuracy["value"] <= accuracy["upper"]
        assert auc["lower"] < auc["upper"]
        assert w.values()["true.accuracy"] == accuracy["value"]
    assert "version 1" in after.header and "reference sample" in after.header


def test_unknown_model_alias_and_bad_window_are_refused(workspace, adult):
    register_adult(workspace, adult)
    with pytest.raises(InputError, match="window: expected a duration"):
        served_report(f"{MODEL}@production", window="1x", workspace=workspace)
    with pytest.raises(InputError, match="window"):
        served_report(f"{MODEL}@production", window="0", workspace=workspace)
    with pytest.raises(NotFoundError):
        served_report(f"{MODEL}@staging", workspace=workspace)
    with pytest.raises(NotFoundError):
        served_report("nobody@production", workspace=workspace)
    with pytest.raises(InputError, match="sensitive"):
        served_report(f"{MODEL}@production", sensitive=["income"], workspace=workspace)


def test_a_model_without_predictions_gives_no_window(workspace, adult):
    register_adult(workspace, adult)
    report = served_report(f"{MODEL}@production", workspace=workspace)
    assert report.windows == ()
    assert "No logged predictions" in report.notes[0]
