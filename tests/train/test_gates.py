"""Training's gates on real data: leaks stop a training before its budget is spent, sensitive
columns are audited and not used, failed trials are visible, XGBoost fits categorical data."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pandas as pd
import pytest

from forgeml import data
from forgeml.errors import InputError
from forgeml.tracking import search_runs
from forgeml.train import _zoo, train
from forgeml.train._api import _audit_frame

from .conftest import shared
from .test_cli import forgeml


def test_bike_leak_stops_training_before_the_budget(ws):
    data.add(shared("bike-sharing-hour.csv"), name="bike", target="cnt", workspace=ws)
    with pytest.raises(InputError) as caught:
        train("bike", time_budget=60, workspace=ws)
    message = str(caught.value)
    assert "casual" in message and "registered" in message
    assert "--drop casual,registered" in message
    assert search_runs(workspace=ws) == []  # refused before a run started: no budget spent


def test_bike_leak_through_the_cli_exits_2_and_drop_is_recorded(tmp_path):
    path = str(shared("bike-sharing-hour.csv"))
    home = tmp_path / "ws"
    result = forgeml("train", path, "--target", "cnt", "--time-budget", "60", home=home)
    assert result.returncode == 2, result.stderr
    assert "casual" in result.stderr and "registered" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = forgeml(
        "train", "bike-sharing-hour", "--drop", "casual,registered", "--time-budget", "60",
        "--trials", "2", "--models", "lgbm", "--no-evaluate", "--no-register", "--json", home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "casual" not in summary["feature_columns"]
    assert not [n for n in summary["notes"] if "too good" in n]
    from forgeml.config import Settings
    from forgeml.store import Workspace

    with Workspace(Settings(home=home)) as ws:
        run = ws.runs.get_run(summary["run_id"])
        assert run.params["drop"] == "casual,registered"
        features = json.loads(ws.artifacts.get_bytes(_artifact(run, "features.json")))
    assert features["dropped"] == ["casual", "registered"]
    assert "registered" not in features["features"] and "hr" in features["features"]
    assert features["identifiers"] == ["instant"]


def _artifact(run, path: str) -> str:
    return next(a.digest for a in run.artifacts if a.path == path)


def test_allow_leaks_trains_and_notes_the_leak(german, ws):
    frame = german.assign(flag=(german["class"] == "good").astype(int))
    with pytest.raises(InputError, match="'flag' alone predicts the target"):
        train(frame, target="class", time_budget=3, models=["linear"], workspace=ws)
    result = train(
        frame, target="class", time_budget=3, models=["linear"], workspace=ws, allow_leaks=True
    )
    assert any("leak check: 'flag'" in note for note in result.notes)


def test_bank_sensitive_columns_are_not_model_inputs(ws):
    from forgeml.registry import load, register

    data.add(
        shared("bank-additional-full.csv"),
        name="bank",
        target="y",
        sensitive=["age", "marital"],
        workspace=ws,
    )
    assert data.get("bank", workspace=ws).schema["age"].bins is not None  # binned at add
    result = train("bank", time_budget=4, models=["lgbm"], workspace=ws)
    assert "age" not in result.feature_columns and "marital" not in result.feature_columns
    assert "duration" in result.feature_columns
    # a domain leak no statistic names: the model leans on it, and the run says so
    assert any("too good to be true? 'duration' carries" in n for n in result.notes)
    run = ws.runs.get_run(result.run_id)
    assert "--drop duration" in run.tags["forgeml.too_good"]
    for member in result.model.members:
        pipelines = getattr(member, "pipelines", None) or [member]
        for pipeline in pipelines:
            encoder = pipeline.named_steps["encode"]
            assert "age" not in encoder.kinds and "marital" not in encoder.kinds
    version = data.get("bank", workspace=ws)
    frame = data.load("bank", workspace=ws)[["age", "marital"]]
    audit = _audit_frame(frame, {"age": version.schema["age"].bins})
    assert set(audit["age"].cat.categories) == {"<32", "32-38", "38-47", ">=47"}
    assert audit["marital"].equals(frame["marital"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a pickled bundle is not the point here
        registered = register(result, name="bank", workspace=ws)
    loaded = load(f"bank@{registered.version}", workspace=ws)
    names = [c.name for c in loaded.signature.inputs]
    assert "age" not in names and "marital" not in names and "duration" in names
    # the evaluation of the registered model audits both, age in its recorded ranges
    from forgeml.security import Principal
    from forgeml.workflows import Context, evaluate_model

    evaluation = evaluate_model(
        Context(ws, Principal("ana")), f"bank@{registered.version}", "bank", explain=False
    )
    audits = {a.column: a for a in evaluation.report.fairness.audits}
    assert set(audits) == {"age", "marital"}
    assert {g.group for g in audits["age"].groups} == {"<32", "32-38", "38-47", ">=47"}
    # asked for, they are inputs
    used = train("bank", time_budget=3, models=["lgbm"], workspace=ws, use_sensitive=True)
    assert {"age", "marital"} <= set(used.feature_columns)


def test_xgboost_fits_bank(ws):
    data.add(shared("bank-additional-full.csv"), name="bank", target="y", workspace=ws)
    result = train("bank", time_budget=8, models=["xgb"], workspace=ws)
    assert set(result.model.families) == {"xgb"}  # one xgb or an ensemble of xgb trials
    assert result.best["model"] == "xgb"
    assert result.failures == {}
    assert "failed" not in result.n_trials


def test_families_that_all_fail_are_refused_with_their_error(german, ws, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("this family cannot fit")

    family = _zoo.FAMILIES["linear"]
    monkeypatch.setitem(_zoo.FAMILIES, "linear", dataclasses.replace(family, build=broken))
    with pytest.raises(InputError) as caught:
        train(german, target="class", time_budget=3, models=["linear"], workspace=ws)
    assert "linear" in str(caught.value) and "this family cannot fit" in str(caught.value)
    # one family failing beside a working one: counted, its first error kept, on the run too
    result = train(
        german, target="class", time_budget=20, max_trials=2, models=["linear", "lgbm"],
        workspace=ws,
    )  # fmt: skip
    failures = result.failures["linear"]
    assert failures["failed"] >= 1 and "this family cannot fit" in failures["first_error"]
    run = ws.runs.get_run(result.run_id)
    assert "this family cannot fit" in run.tags["forgeml.failed.linear"]
    assert any(note.startswith("linear:") for note in result.notes)


def test_a_sensitive_column_the_frame_lacks_is_refused(german):
    with pytest.raises(InputError, match="'nope' is not in the data"):
        train(german, target="class", sensitive=["nope"], time_budget=2)


def test_sensitive_columns_of_a_frame_are_left_out(german, ws):
    result = train(
        german, target="class", sensitive=["sex", "age"], time_budget=3, models=["linear"],
        workspace=ws,
    )  # fmt: skip
    assert "sex" not in result.feature_columns and "age" not in result.feature_columns


def test_a_leaky_model_is_called_too_good(ws):
    frame = pd.read_csv(shared("bike-sharing-hour.csv"))
    result = train(
        frame, target="cnt", time_budget=4, models=["lgbm"], workspace=ws, allow_leaks=True
    )
    notes = [n for n in result.notes if n.startswith("too good to be true?")]
    assert any("the test r2 is 0.99" in n and "3,476 held-out rows" in n for n in notes)
    assert any("leak check:" in n and "casual" in n for n in result.notes)


def test_the_permutation_check_short_of_time_reads_fewer_rows_and_still_names_the_leak(
    ws, monkeypatch
):
    """A wide table or a slow model: fewer held-out rows rather than an overrun budget; still
    'duration', and nothing without it."""
    import re

    import numpy as np

    from forgeml.train import _api
    from forgeml.train._metrics import get_metric

    bank = pd.read_csv(shared("bank-additional-full.csv")).sample(n=6000, random_state=0)
    fit, held = bank.iloc[:4000], bank.iloc[4000:].reset_index(drop=True)
    metric = get_metric("roc_auc", "binary")
    found = {}
    for name, frame in (("with", fit), ("without", fit.drop(columns=["duration"]))):
        # a fixed number of trials and no latency bound: the models do not depend on the clock
        result = train(
            frame, target="y", time_budget=120, max_trials=4, max_latency_ms=None,
            models=["lgbm"], workspace=ws, seed=0,
        )  # fmt: skip
        X = held[result.feature_columns]
        y = pd.Categorical(held["y"], categories=result.classes_).codes.astype(np.int64)
        for when in ("in time", "short"):
            # 0.2 s a prediction and 3 s left pay for about 14 of the 19 or 20 columns
            clock = _Clock()
            model = result.model if when == "in time" else _Slow(result.model, 0.2, clock)
            deadline = None if when == "in time" else clock.monotonic() + 3.0
            with monkeypatch.context() as patched:
                patched.setattr(_api, "time", clock)
                found[name, when] = _api.too_good_to_be_true(
                    model, X, y, task="binary", metric=metric, test_metrics={},
                    baseline_metrics={}, kinds=result.column_kinds, seed=0, deadline=deadline,
                )  # fmt: skip
    assert len(found["with", "in time"]) == 1 and len(found["with", "short"]) == 1
    assert "'duration' carries" in found["with", "in time"][0]
    assert "1,000 held-out rows" in found["with", "in time"][0]
    assert "'duration' carries" in found["with", "short"][0]
    rows = int(re.search(r"roc_auc, ([\d,]+) held-out rows", found["with", "short"][0])[1])
    assert 100 <= rows < 1000
    assert found["without", "in time"] == [] and found["without", "short"] == []


def test_the_permutation_check_stops_at_its_deadline_and_says_so(ws, german, monkeypatch):
    import numpy as np

    from forgeml.train import _api
    from forgeml.train._metrics import get_metric

    result = train(german.iloc[:700], target="class", time_budget=2, models=["lgbm"], workspace=ws)
    held = german.iloc[700:].reset_index(drop=True)
    y = pd.Categorical(held["class"], categories=result.classes_).codes.astype(np.int64)
    clock = _Clock()
    slow = _Slow(result.model, 0.6, clock)  # the base rows and one eighth take the grace
    notes: list[str] = []
    monkeypatch.setattr(_api, "time", clock)
    found = _api.too_good_to_be_true(
        slow, held[result.feature_columns], y, task="binary",
        metric=get_metric("roc_auc", "binary"), test_metrics={}, baseline_metrics={},
        kinds=result.column_kinds, deadline=clock.monotonic() + 0.01, notes=notes,
    )  # fmt: skip
    assert found == []
    assert len(notes) == 1 and "cut at the budget's end after 3 of 21 columns" in notes[0]
    assert slow.calls == 2  # the base rows, then one eighth of the columns


class _Clock:
    """A monotonic clock that moves only when a prediction is made: the permutation check's
    deadline arithmetic, tested without depending on how busy the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class _Slow:
    """A model whose every prediction takes ``delay`` seconds more on ``clock``."""

    def __init__(self, model, delay: float, clock: _Clock) -> None:
        self.model, self.delay, self.clock, self.calls = model, delay, clock, 0

    def predict_proba(self, frame):
        self.calls += 1
        self.clock.now += self.delay
        return self.model.predict_proba(frame)
