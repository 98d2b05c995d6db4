"""``forgeml evaluate MODEL --data DATASET`` through a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import forgeml as fm
from forgeml.config import Settings
from forgeml.store import Workspace


def _forgeml(*args: str, home) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_evaluate_a_registered_model_on_a_dataset(tmp_path, datasets_dir):
    home = tmp_path / "ws"
    frame = pd.read_csv(datasets_dir / "german-credit.csv")
    features = ["duration", "credit_amount", "age", "checking_status", "purpose"]
    with Workspace(Settings(home=home)) as ws:
        fm.data.add(frame, name="credit", target="class", sensitive=["sex"], workspace=ws)
        columns = ColumnTransformer(
            [
                ("num", StandardScaler(), features[:3]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), features[3:]),
            ]
        )
        model = make_pipeline(columns, LogisticRegression(max_iter=500))
        model.fit(frame[features], frame["class"])
        fm.register(model, name="credit-lr", sample=frame[features], workspace=ws)
    result = _forgeml("evaluate", "credit-lr", "--data", "credit", "--json", home=home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "credit-lr@1" and report["dataset"] == "credit@1"
    auc = report["metrics"]["metrics"]["roc_auc"]
    assert 0.6 < auc["value"] < 1.0 and auc["lower"] < auc["value"] < auc["upper"]
    shown = _forgeml("runs", "show", report["run_id"], "--json", home=home)
    assert "evaluation" in {a["path"] for a in json.loads(shown.stdout)["artifacts"]}
    for args, words in (
        (("evaluate", "ghost", "--data", "credit"), "No model"),
        (("evaluate", "credit-lr", "--data", "ghost"), "No dataset"),
    ):
        bad = _forgeml(*args, home=home)
        assert bad.returncode == 2 and words in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
