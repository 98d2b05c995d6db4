"""The fairness audit: ProPublica's COMPAS finding, through the library and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml.errors import InputError
from forgeml.evaluate import FairnessThresholds, audit_predictions, fairness_audit

# ProPublica, "Machine Bias" (2016), all 7,214 rows, high risk = decile_score >= 5
PROPUBLICA = {
    "African-American": {"fpr": 0.4485, "fnr": 0.2799, "size": 3696},
    "Caucasian": {"fpr": 0.2345, "fnr": 0.4772, "size": 2454},
}


def forgeml(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(cwd / "ws"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_compas_finding_through_the_library(compas):
    assert len(compas) == 7214
    report = fairness_audit(
        compas["two_year_recid"],
        (compas["decile_score"] >= 5).astype(int),
        compas[["race"]],
        n_bootstrap=200,
        seed=0,
    )
    race = report["race"]
    for group, expected in PROPUBLICA.items():
        g = race.group(group)
        assert g.size == expected["size"]
        assert abs(g["fpr"].value - expected["fpr"]) < 0.005
        assert abs(g["fnr"].value - expected["fnr"]) < 0.005
        assert g["fpr"].lower < g["fpr"].value < g["fpr"].upper
    # the disparity is flagged, with an interval that excludes no disparity
    eod = race.disparity("equalized_odds_difference")
    assert eod.lower > 0.1
    assert any(f.metric == "equalized_odds_difference" for f in race.findings)


def test_group_rates_equal_direct_counts(compas):
    y = compas["two_year_recid"].to_numpy()
    p = (compas["decile_score"] >= 5).to_numpy().astype(int)
    report = fairness_audit(y, p, compas["sex"], n_bootstrap=0)
    for g in report["sex"].groups:
        mask = (compas["sex"] == g.group).to_numpy()
        yy, pp = y[mask], p[mask]
        assert g.size == mask.sum()
        assert g["selection_rate"].value == pytest.approx(pp.mean())
        assert g["accuracy"].value == pytest.approx((yy == pp).mean())
        assert g["tpr"].value == pytest.approx(pp[yy == 1].mean())
        assert g["fpr"].value == pytest.approx(pp[yy == 0].mean())
        assert g["fnr"].value == pytest.approx(1 - pp[yy == 1].mean())
    rates = [g["selection_rate"].value for g in report["sex"].groups]
    dp = report["sex"].disparity("demographic_parity_difference").value
    assert dp == pytest.approx(max(rates) - min(rates))
    assert report["sex"].disparity("demographic_parity_ratio").value == pytest.approx(
        min(rates) / max(rates)
    )


def test_thresholds_decide_the_findings(compas):
    y, p = compas["two_year_recid"], (compas["decile_score"] >= 5).astype(int)
    strict = fairness_audit(y, p, compas[["sex"]], n_bootstrap=0)
    lax = fairness_audit(
        y,
        p,
        compas[["sex"]],
        n_bootstrap=0,
        thresholds=FairnessThresholds(
            demographic_parity_difference=0.5,
            demographic_parity_ratio=0.1,
            equalized_odds_difference=0.5,
            group_gap=0.5,
        ),
    )
    dp = strict["sex"].disparity("demographic_parity_difference").value
    tight = fairness_audit(
        y,
        p,
        compas[["sex"]],
        n_bootstrap=0,
        thresholds=FairnessThresholds(demographic_parity_difference=dp / 2),
    )
    assert not lax.findings
    assert any(f.metric == "demographic_parity_difference" for f in tight.findings)
    assert not any(f.metric == "demographic_parity_difference" for f in strict.findings)


def test_string_labels_and_a_named_positive_label():
    y = np.array(["yes", "no", "yes", "no", "yes", "no"] * 10)
    pred = np.array(["yes", "yes", "no", "no", "yes", "no"] * 10)
    group = np.array(["a", "b"] * 30)
    report = fairness_audit(y, pred, {"group": group}, positive_label="yes", n_bootstrap=0)
    assert report.positive_label == "yes"
    flipped = fairness_audit(y, pred, {"group": group}, positive_label="no", n_bootstrap=0)
    a_yes, a_no = report["group"].group("a"), flipped["group"].group("a")
    assert a_yes["tpr"].value == pytest.approx(1 - a_no["fpr"].value)


def test_bad_input_is_an_input_error(compas):
    y, p = compas["two_year_recid"], (compas["decile_score"] >= 5).astype(int)
    with pytest.raises(InputError, match="same number of rows"):
        fairness_audit(y[:-1], p, compas[["race"]])
    with pytest.raises(InputError, match="single group"):
        fairness_audit(y, p, pd.DataFrame({"county": ["Broward"] * len(y)}))
    with pytest.raises(InputError, match="binary labels"):
        fairness_audit(compas["decile_score"], p, compas[["race"]])
    with pytest.raises(InputError, match="not labels"):
        fairness_audit(y, p + 1, compas[["race"]])
    with pytest.raises(InputError, match="must be numeric"):
        audit_predictions(compas, label="two_year_recid", score="race", sensitive=["sex"])
    with pytest.raises(InputError, match="not in the table"):
        audit_predictions(compas, label="nope", score="decile_score", sensitive=["sex"])
    with pytest.raises(InputError, match="exactly one"):
        audit_predictions(compas, label="two_year_recid", sensitive=["sex"])


@pytest.fixture
def compas_csv(compas, tmp_path: Path) -> Path:
    """A table of predictions as a user would export it."""
    path = tmp_path / "predictions.csv"
    table = compas[["two_year_recid", "decile_score", "race", "sex"]].copy()
    table["high_risk"] = (table["decile_score"] >= 5).astype(int)
    table.to_csv(path, index=False)
    return path


def test_compas_finding_through_the_cli(compas_csv: Path, tmp_path: Path):
    common = ["fairness", "audit", "--predictions", str(compas_csv), "--label", "two_year_recid"]
    result = forgeml(
        *common,
        "--score",
        "decile_score",
        "--threshold",
        "5",
        "--sensitive",
        "race",
        "--sensitive",
        "sex",
        "--bootstrap",
        "100",
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    race = next(a for a in data["audits"] if a["column"] == "race")
    groups = {g["group"]: g for g in race["groups"]}
    for group, expected in PROPUBLICA.items():
        assert groups[group]["size"] == expected["size"]
        assert abs(groups[group]["metrics"]["fpr"]["value"] - expected["fpr"]) < 0.005
        assert abs(groups[group]["metrics"]["fnr"]["value"] - expected["fnr"]) < 0.005
    assert set(race["disparities"]) == {
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
    }
    assert {a["column"] for a in data["audits"]} == {"race", "sex"}

    # the same decisions given as a prediction column, shown as tables
    tables = forgeml(
        *common,
        "--prediction",
        "high_risk",
        "--sensitive",
        "race",
        "--bootstrap",
        "0",
        cwd=tmp_path,
    )
    assert tables.returncode == 0, tables.stderr
    assert "44.85%" in tables.stdout and "23.45%" in tables.stdout
    assert "27.99%" in tables.stdout and "47.72%" in tables.stdout
    assert "equalized_odds_difference" in tables.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--score", "race", "--sensitive", "sex"], ["score column 'race'", "numeric"]),
        (["--score", "decile_score", "--sensitive", "county"], ["county"]),
        (["--sensitive", "sex"], ["--score", "--prediction"]),
        (["--prediction", "high_risk", "--sensitive", "constant"], ["single group"]),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(compas_csv: Path, tmp_path: Path, args, words):
    table = pd.read_csv(compas_csv)
    table["constant"] = "x"
    table.to_csv(compas_csv, index=False)
    result = forgeml(
        "fairness",
        "audit",
        "--predictions",
        str(compas_csv),
        "--label",
        "two_year_recid",
        *args,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0]


def test_cli_missing_file_exits_2(tmp_path: Path):
    result = forgeml(
        "fairness",
        "audit",
        "--predictions",
        str(tmp_path / "nope.csv"),
        "--label",
        "y",
        "--score",
        "s",
        "--sensitive",
        "g",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "no file" in result.stderr
