"""A label correction is what the served-model report reads: the latest revision wins, the
first labels stay in the request's history."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from forgeml import workflows
from forgeml.monitor import served_report
from forgeml.security import Principal

from .conftest import DAY, MODEL, REF, T0, TARGET, log_day, register_adult


def test_the_report_reads_the_corrected_labels(sqlite_workspace, adult: pd.DataFrame) -> None:
    ws = sqlite_workspace
    register_adult(ws, adult)
    log_day(ws, adult.iloc[3000:3600], 0)
    logged = ws.predlog.predictions(MODEL)
    truth = adult[TARGET].iloc[3000:3600].to_numpy()
    labels: dict[str, list] = {}
    for request_id, label in zip(logged["request_id"], truth, strict=True):
        labels.setdefault(request_id, []).append(label)
    ws.predlog.add_feedback(labels, user="ada")

    def accuracy() -> float:
        [window] = served_report(
            REF, window="1d", workspace=ws, n_bootstrap=50, now_ms=T0 + 2 * DAY
        ).windows
        assert window.labelled_rows == 600
        return float(window.true["accuracy"]["value"])

    first = accuracy()
    assert first == pytest.approx(accuracy_score(truth, logged["prediction"]), abs=1e-12)
    assert first < 0.95
    # a reviewer corrects the labels of the requests the model got wrong to its answers
    wrong = logged[logged["label"] != logged["prediction"]]
    fixes = {
        r: logged.loc[logged["request_id"] == r, "prediction"].tolist()
        for r in wrong["request_id"].unique()
    }
    assert fixes
    ctx = workflows.Context(ws, Principal("reviewer"))
    revisions = workflows.correct_feedback(ctx, fixes, reason="re-labelled")
    assert set(revisions.values()) == {2}
    assert accuracy() == 1.0  # every label now equals the answer
    some = next(iter(fixes))
    history = workflows.label_history(ctx, some)
    assert [h.labels for h in history] == [labels[some], fixes[some]]
    assert [h.created_by for h in history] == ["ada", "reviewer"]
