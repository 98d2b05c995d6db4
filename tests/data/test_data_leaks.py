"""Leak checks on real tables: the leaks that are there are named with their columns and the
``--drop`` that removes them; the shipped tables raise no false leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml import data
from forgeml.cli import main
from forgeml.data import Severity, leak_gate
from forgeml.train._task import detect_task, infer_column_kinds

from .conftest import shared_file

_LEAK_CHECKS = ("leakage", "leak_formula", "leak_identifier")


def _gate(frame: pd.DataFrame, target: str) -> tuple:
    kinds = infer_column_kinds(frame)
    task = detect_task(frame[target].dropna(), kinds[target])
    return leak_gate(frame, target=target, kinds=kinds, task=task)


def _columns(findings) -> set[str]:
    return {c for f in findings for c in (f.column or "").split(",")}


def test_bike_sum_is_reported_at_add_and_validate(ws, bike):
    version = data.add(bike, name="bike", target="cnt", workspace=ws)
    formula = version.quality.by_check("leak_formula")
    assert len(formula) == 1
    finding = formula[0]
    assert finding.severity is Severity.ERROR
    assert set(finding.column.split(",")) == {"casual", "registered"}
    assert "cnt = casual + registered" in finding.message
    assert "--drop casual,registered" in finding.message
    assert "17,379 rows" in finding.message
    report = data.validate("bike", workspace=ws)
    assert report.failed()
    assert _columns(report.quality.by_check("leak_formula")) == {"casual", "registered"}
    # with the leak dropped, no leak remains
    clean = data.add(
        bike.drop(columns=["casual", "registered"]), name="b2", target="cnt", workspace=ws
    )
    assert not [f for f in clean.quality if f.check in _LEAK_CHECKS]


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("adult.csv", "income"),
        ("bank-additional-full.csv", "y"),
        ("german-credit.csv", "class"),
        ("california-housing.csv", "median_house_value"),
    ],
)
def test_no_false_leak_on_shipped_tables(name, target):
    frame = pd.read_csv(shared_file(name)).drop(columns=["split"], errors="ignore")
    assert _gate(frame, target) == ()


@pytest.fixture(scope="module")
def california() -> pd.DataFrame:
    return pd.read_csv(shared_file("california-housing.csv"))


def test_target_copy_and_sum_injected_into_california_are_caught(california):
    y = california["median_house_value"]
    copy = california.assign(value_in_k=y / 1000)
    found = _gate(copy, "median_house_value")
    assert _columns(found) == {"value_in_k"}
    assert all(f.severity is Severity.ERROR for f in found)
    assert "--drop value_in_k" in found[0].message
    # a sum of the target and a feature: neither alone reproduces it, the difference does
    noise = np.random.default_rng(0).normal(0, y.std() * 3, len(y)).round(2)
    summed = california.assign(offset=noise, value_plus_offset=y + noise)
    found = _gate(summed, "median_house_value")
    assert _columns(found) == {"offset", "value_plus_offset"}
    assert found[0].check == "leak_formula"
    assert "--drop offset,value_plus_offset" in found[0].message or (
        "--drop value_plus_offset,offset" in found[0].message
    )
    # a ratio
    ratio = california.assign(value_per_household=y / california["households"])
    found = _gate(ratio, "median_house_value")
    assert _columns(found) == {"value_per_household", "households"}


def test_target_copy_and_sum_injected_into_adult_are_caught(adult_frame):
    frame = adult_frame.drop(columns=["split"], errors="ignore")
    positive = (frame["income"] == ">50K").astype(int)
    found = _gate(frame.assign(flag=positive), "income")
    assert _columns(found) == {"flag"}
    found = _gate(frame.assign(hours_plus=frame["hours_per_week"] + positive), "income")
    assert _columns(found) == {"hours_per_week", "hours_plus"}
    assert "(as 0/1, 1 = '>50K')" in found[0].message


def test_identifier_following_the_target_is_reported(california):
    ordered = california.sort_values("median_house_value", kind="stable").reset_index(drop=True)
    ordered.insert(0, "row_id", np.arange(len(ordered)))
    found = _gate(ordered, "median_house_value")
    assert [f.check for f in found] == ["leak_identifier"]
    assert found[0].column == "row_id" and found[0].severity is Severity.WARNING
    assert "not used as a feature" in found[0].message
    # unique integers roughly in target order, with gaps: not taken for an identifier, so a
    # feature (a loose order: a perfect one would be a single-column leak)
    rng = np.random.default_rng(3)
    y = california["median_house_value"].to_numpy()
    loose = np.argsort(np.argsort(y + rng.normal(0, 2 * y.std(), len(y))))
    parcel = rng.integers(1, 50, len(y)).cumsum()[loose]
    found = _gate(california.assign(parcel=parcel), "median_house_value")
    assert [f.column for f in found] == ["parcel"]
    assert "it is used as a feature" in found[0].message and "--drop parcel" in found[0].message


def test_large_tables_are_sampled_and_say_so(california):
    big = pd.concat([california] * 3, ignore_index=True)
    big["minus"] = big["median_house_value"] - big["population"]
    found = _gate(big, "median_house_value")
    assert found and "a seeded sample of 50,000 of 61,920 rows" in found[0].message


@pytest.fixture
def cli(tmp_path, capsys):
    home = str(tmp_path / "home")

    def invoke(*args):
        with pytest.raises(SystemExit) as exit_info:
            main(["--home", home, *args])
        out = capsys.readouterr()
        return exit_info.value.code, out.out, out.err

    return invoke


def test_sensitive_bins_at_data_add(cli):
    bank = str(shared_file("bank-additional-full.csv"))
    code, _, err = cli(
        "data", "add", bank, "--name", "bank", "--target", "y",
        "--sensitive", "age", "--sensitive", "marital", "--bins", "age=25,40,65",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = cli(
        "data", "add", bank, "--name", "bank2", "--target", "y", "--sensitive", "age"
    )
    assert code == 0, err


def test_sensitive_bins_recorded(ws):
    bank = shared_file("bank-additional-full.csv")
    given = data.add(
        bank,
        name="bank",
        target="y",
        sensitive=["age", "marital"],
        bins={"age": [25, 40, 65]},
        workspace=ws,
    )
    assert given.schema["age"].bins == (25.0, 40.0, 65.0)
    assert given.schema["marital"].bins is None
    quartiles = data.add(bank, name="bank_q", target="y", sensitive=["age"], workspace=ws)
    assert quartiles.schema["age"].bins == (32.0, 38.0, 47.0)
    reread = data.get("bank_q", workspace=ws)
    assert reread.schema["age"].bins == (32.0, 38.0, 47.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sensitive", "age", "--bins", "age=40,25"], "increasing"),
        (["--sensitive", "age", "--bins", "age=young"], "--bins takes COLUMN=EDGE"),
        (["--sensitive", "age", "--bins", "duration=60"], "'duration' is not declared sensitive"),
        (["--sensitive", "sex", "--bins", "sex=1,2"], "numeric"),
    ],
)
def test_bad_bins_exit_2_with_one_line(cli, args, message):
    german = str(shared_file("german-credit.csv"))
    code, _, err = cli("data", "add", german, "--name", "g", "--target", "class", *args)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
