"""Column names any CSV may carry, duplicate names, and a 10,000-column table: trained,
evaluated, registered and served by the table's own names. Real data: German credit (names
changed) and the Elec2 electricity prices (10,000 lagged prices per row)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forgeml as fm
from forgeml import data, registry
from forgeml.errors import InputError
from forgeml.serve._runners import runner_for

NAMES = {
    "duration": "temp[C]",
    "credit_amount": "ratio:x",
    "age": "âge (années)",
    "purpose": 'pur"pose',
    "job": "job,{}",
    "housing": "a b",
    "checking_status": "x<y>",
    "savings_status": "100%",
    "employment": "emp%5B",  # what "emp[" would encode to: names stay distinct
}


@pytest.fixture(scope="module")
def renamed(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    frame = pd.read_csv(shared_dataset("german-credit.csv")).rename(columns=NAMES)
    return frame.assign(**{"emp[": frame["installment_commitment"]})


def test_any_column_name_trains_evaluates_registers_and_serves(workspace, renamed, tmp_path):
    path = tmp_path / "credit.csv"
    renamed.to_csv(path, index=False)
    version = data.add(path, name="credit", target="class", workspace=workspace)
    assert set(NAMES.values()) <= {c.name for c in version.schema}
    result = fm.train(
        "credit", models="lgbm,xgb", max_trials=2, time_budget=30, n_jobs=1, seed=0,
        evaluate=True, workspace=workspace,
    )  # fmt: skip
    assert not result.failures, result.failures
    features = set(renamed.columns) - {"class"}
    evaluation = result.evaluation
    assert evaluation is not None and evaluation.importance
    assert {name for name, _ in evaluation.importance} <= features
    assert {name for name, _ in evaluation.importance} & set(NAMES.values())
    record = registry.register(result, name="credit", workspace=workspace)
    model = registry.load(f"credit@{record.version}", workspace=workspace)
    assert set(model.signature.names) == features
    rows = renamed.drop(columns=["class"]).head(50)
    expected = model.predict_proba(rows)
    runner = runner_for(model, sample=rows)
    columns = {c: rows[c].tolist() for c in rows.columns}
    _, proba = runner.run(columns, len(rows))
    assert np.allclose(proba, expected, atol=1e-9)
    explanation = fm.evaluate.explain(model.model.explainable_model, rows.head(5))
    assert set(explanation.columns) == features


def test_duplicate_column_names_are_refused(tmp_path, sqlite_workspace):
    path = tmp_path / "dup.csv"
    path.write_text("a,a,b,y\n1,2,3,0\n4,5,6,1\n")
    with pytest.raises(InputError, match=r"'a' \(columns 1, 2\)"):
        data.add(path, name="dup", workspace=sqlite_workspace)
    assert sqlite_workspace.datasets.list_datasets() == []
    ok = tmp_path / "ok.csv"
    ok.write_text("a,a.1,b,y\n1,2,3,0\n4,5,6,1\n")  # a name like pandas' renaming is a name
    assert [c.name for c in data.add(ok, name="ok", workspace=sqlite_workspace).schema] == [
        "a", "a.1", "b", "y",
    ]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(tmp_path / "ws"), "train", str(path),
         "--target", "y"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "names a column more than once: 'a' (columns 1, 2)" in run.stderr


@pytest.fixture(scope="module")
def wide(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    """100 rows of 10,000 consecutive half-hourly NSW prices; the target is whether the
    price went up at the next half hour (Elec2's own label)."""
    elec = pd.read_csv(shared_dataset("electricity-elec2.csv"))
    price, label = elec["nswprice"].to_numpy(), elec["class"].to_numpy()
    width, starts = 10_000, np.arange(100) * 300
    frame = pd.DataFrame(
        np.stack([price[s : s + width] for s in starts]),
        columns=[f"price[t-{width - i}]" for i in range(width)],
    )
    return frame.assign(next=label[starts + width])


def test_ten_thousand_columns_train_evaluate_and_register(sqlite_workspace, wide):
    result = fm.train(
        wide, target="next", models="lgbm,linear", max_trials=2, time_budget=10, n_jobs=1,
        evaluate=True, seed=0, workspace=sqlite_workspace,
    )  # fmt: skip
    evaluation = result.evaluation
    assert evaluation is not None
    assert any("Slices by a seeded sample of 100 of 10,000 columns" in n for n in evaluation.notes)
    assert {name for name, _ in evaluation.importance} <= set(wide.columns)
    record = registry.register(result, name="wide", workspace=sqlite_workspace)
    model = registry.load(f"wide@{record.version}", workspace=sqlite_workspace)
    assert model.predict_proba(wide.drop(columns=["next"]).head(3)).shape == (3, 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_wide_permutation_explanation_is_bounded_and_says_so(wide):
    """A model only the permutation explainer can explain (an MLP) on 10,000 columns."""
    from sklearn.neural_network import MLPClassifier

    X, y = wide.drop(columns=["next"]).head(60), wide["next"].head(60)
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=50, random_state=0).fit(X, y)
    explanation = fm.evaluate.explain(model, X.head(4), background=X, seed=0)
    assert "24 of 10,000 model features" in explanation.note
    raw = np.asarray(fm.evaluate.raw_output(model, X.head(4)))
    total = explanation.contributions.sum(axis=1) + explanation.base_values
    assert np.allclose(total, raw.reshape(total.shape), atol=1e-6)  # additive, row by row
    assert np.count_nonzero(np.abs(explanation.contributions).sum(axis=0)) <= 24
