"""Expectations from YAML, checked with pandera; the CLI gates on error-level failures."""

from __future__ import annotations

import pytest

from forgeml import data
from forgeml.cli import main
from forgeml.errors import InputError

RULES = """
row_count: {min: 1000, max: 100000}
column_set: {required: [age, income]}
columns:
  age: {not_null: true, min: 17, max: 90}
  income: {allowed: ["<=50K", ">50K"]}
  sex: {regex: "^(Male|Female)$"}
  workclass: {not_null: true, severity: warning}
"""

FAILING = """
row_count: {max: 100}
columns:
  age: {min: 18}
  fnlwgt: {unique: true}
  native_country: {allowed: [United-States]}
"""


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_rules_that_hold_pass_and_warnings_do_not_fail(ws, adult_path, tmp_path):
    data.add(adult_path, name="adult", target="income", workspace=ws)
    (tmp_path / "rules.yaml").write_text(RULES)
    report = data.validate("adult", expectations=tmp_path / "rules.yaml", workspace=ws)
    outcome = {r.expectation.label: r.passed for r in report.expectations}
    assert outcome.pop("workclass: not_null") is False  # workclass has missing values
    assert all(outcome.values()), outcome
    assert not report.failed("error")
    assert report.failed("warning")


def test_failing_rules_count_and_show_failures(ws, adult_path, adult_frame):
    import yaml

    data.add(adult_path, name="adult", workspace=ws)
    report = data.validate("adult", expectations=yaml.safe_load(FAILING), workspace=ws)
    by_label = {r.expectation.label: r for r in report.expectations}
    assert not by_label["row_count"].passed
    assert by_label["age: min"].failures == int((adult_frame["age"] < 18).sum())
    assert 17 in by_label["age: min"].examples
    duplicated = adult_frame["fnlwgt"].duplicated(keep=False).sum()
    assert by_label["fnlwgt: unique"].failures == duplicated
    others = adult_frame["native_country"].notna() & (
        adult_frame["native_country"] != "United-States"
    )
    assert by_label["native_country: allowed"].failures == int(others.sum())
    assert report.failed()


def test_cli_exit_codes_gate_a_pipeline(ws, adult_path, tmp_path, capsys):
    home = str(ws.home)
    data.add(adult_path, name="adult", workspace=ws)
    (tmp_path / "ok.yaml").write_text(RULES)
    (tmp_path / "bad.yaml").write_text(FAILING)
    (tmp_path / "broken.yaml").write_text("columns: [age\n")
    (tmp_path / "unknown.yaml").write_text("columns: {age: {between: [1, 2]}}\n")
    (tmp_path / "regex_on_numbers.yaml").write_text("columns: {age: {regex: '^1'}}\n")
    code, out, _ = _run(
        capsys, "--home", home, "data", "validate", "adult", "-e", str(tmp_path / "ok.yaml")
    )
    assert code == 0 and "passed" in out
    code, out, _ = _run(
        capsys, "--home", home, "data", "validate", "adult", "-e", str(tmp_path / "bad.yaml")
    )
    assert code == 1 and "FAILED" in out
    for name, words in (
        ("broken.yaml", "not valid YAML"),
        ("unknown.yaml", "unknown rule(s) between"),
        ("regex_on_numbers.yaml", "needs text"),
        ("missing.yaml", "No expectations file"),
    ):
        code, _, err = _run(
            capsys, "--home", home, "data", "validate", "adult", "-e", str(tmp_path / name)
        )
        assert code == 2 and err.startswith("error:") and words in err, err
        assert len(err.strip().splitlines()) == 1


def test_load_expectations_rejects_bad_values():
    with pytest.raises(InputError, match="severity must be"):
        data.load_expectations({"severity": "fatal"})
    with pytest.raises(InputError, match="row_count"):
        data.load_expectations({"row_count": {"least": 3}})
