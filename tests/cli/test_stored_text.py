"""Everything a user stored is printed as text: Rich markup in a name, a description or a
reason is shown as written and never breaks a command for the other users of the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml import registry
from forgeml.config import Settings
from forgeml.store import ArtifactRef, Metric, Workspace

MARKUP = "[/]"
BOLD = "[bold]x[/bold] [red"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200", "FORGEML_USER": "[/]user"},
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("markup") / "ws"
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a[/]": rng.normal(size=80), "b": rng.normal(size=80)})
    y = (X["a[/]"] > 0).astype(int).to_numpy()
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, y)
    with Workspace(Settings(home=home, user="[/]user")) as ws:
        run_id = ws.runs.create_run(f"exp {BOLD}", name=f"run {MARKUP}", tags={MARKUP: BOLD})
        ws.runs.log_batch(run_id, params={MARKUP: BOLD}, metrics=[Metric("auc[/]", 0.5)])
        digest = ws.artifacts.put_bytes(b"x")
        ws.runs.add_artifact(run_id, ArtifactRef(f"notes {MARKUP}.txt", digest, 1, "file", 0))
        ws.runs.end_run(run_id)
        registry.register(model, name="churn", sample=X, description=f"desc {MARKUP}", workspace=ws)
        registry.promote("churn", 1, alias="production", reason=f"why {BOLD}", workspace=ws)
        frame = X.assign(y=y)
        frame.to_csv(home.parent / "m.csv", index=False)
    assert _cli(home, "data", "add", str(home.parent / "m.csv"), "--name", "m").returncode == 0
    return home


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("runs", "list"), f"run {MARKUP}"),
        (("runs", "list"), f"exp {BOLD}"),
        (("runs", "show", "RUN"), f"run {MARKUP}"),
        (("runs", "show", "RUN"), f"notes {MARKUP}.txt"),
        (("runs", "show", "RUN"), BOLD),
        (("runs", "artifacts", "RUN"), f"notes {MARKUP}.txt"),
        (("runs", "compare", "RUN", "RUN"), "auc[/]"),
        (("models", "list"), "[/]user"),
        (("models", "show", "churn"), "[/]user"),
        (("models", "show", "churn@1"), f"desc {MARKUP}"),
        (("models", "history", "churn"), f"why {BOLD}"),
        (("data", "show", "m"), "a[/]"),
        (("data", "list"), "[/]user"),
        (("data", "validate", "m"), "passed"),
    ],
)
def test_stored_markup_is_printed_as_text(home, args, shown):
    if "RUN" in args:
        with Workspace(Settings(home=home)) as ws:
            run_id = ws.runs.search_runs().items[0].run_id
        args = tuple(run_id if a == "RUN" else a for a in args)
    result = _cli(home, *args)
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout
    assert "\\[" not in result.stdout  # not escaped either: the text as the user wrote it


BIG = "99999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ("data", "show", f"m@{BIG}"),
        ("data", "validate", f"m@{BIG}"),
        ("data", "diff", "m@1", f"m@{BIG}"),
        ("data", "report", f"m@{BIG}", "--html", "r.html"),
        ("data", "split", f"m@{BIG}"),
        ("train", f"m@{BIG}", "--time-budget", "2"),
        ("models", "show", f"churn@{BIG}"),
        ("models", "promote", "churn", BIG, "--alias", "staging"),
        ("models", "retire", "churn", BIG),
        ("models", "archive", "churn", BIG),
        ("models", "compare", "churn@1", f"churn@{BIG}"),
        ("models", "lineage", f"churn@{BIG}"),
        ("models", "card", f"churn@{BIG}"),
        ("evaluate", f"churn@{BIG}", "--data", "m@1"),
        ("evaluate", "churn@1", "--data", f"m@{BIG}"),
        ("predict", f"churn@{BIG}", "in.csv", "-o", "out.csv"),
        ("serve", f"churn@{BIG}", "--port", "0"),
        ("routes", "set", "churn", "--split", f"{BIG}=100"),
        ("data", "show", "m@²"),
        ("models", "promote", "churn", "²", "--alias", "staging"),
    ],
)
def test_a_huge_version_number_is_one_readable_line(home, args):
    result = _cli(home, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "internal error" not in result.stderr
