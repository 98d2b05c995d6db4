"""``forgeml data ...`` through the command line entry point."""

from __future__ import annotations

import json

import pytest

from forgeml.cli import main


@pytest.fixture
def run(tmp_path, capsys):
    home = str(tmp_path / "home")

    def invoke(*args):
        with pytest.raises(SystemExit) as exit_info:
            main(["--home", home, "data", *args])
        out = capsys.readouterr()
        return exit_info.value.code, out.out, out.err

    return invoke


def test_add_list_show_as_tables_and_json(run, adult_path, tmp_path):
    code, out, _ = run(
        "add",
        str(adult_path),
        "--name",
        "adult",
        "--target",
        "income",
        "--sensitive",
        "sex",
        "--sensitive",
        "race",
    )
    assert code == 0 and "Added adult@1" in out and "48,842 rows" in out
    code, out, _ = run(
        "add",
        str(adult_path),
        "--name",
        "adult",
        "--target",
        "income",
        "--sensitive",
        "sex",
        "--sensitive",
        "race",
        "--json",
    )
    added = json.loads(out)
    assert code == 0 and added["created"] is False and added["version"] == 1
    assert added["sensitive"] == ["sex", "race"]
    code, out, _ = run("list", "--json")
    assert json.loads(out)[0]["name"] == "adult" and json.loads(out)[0]["latest_version"] == 1
    code, out, _ = run("list", "adult")
    assert code == 0 and "48,842" in out
    code, out, _ = run("show", "adult@latest")
    assert code == 0 and "hours_per_week" in out and "categorical" in out
    code, out, _ = run("show", "adult@1", "--json")
    shown = json.loads(out)
    assert shown["digest"] == added["digest"]
    assert {c["name"] for c in shown["schema"]["columns"]} >= {"age", "income"}
    assert shown["profile"]["columns"][0]["name"] == "age"


def test_diff_split_report_and_validate(run, adult_path, adult_frame, tmp_path):
    changed = adult_frame.copy()
    changed.loc[5, "education"] = "Doctorate"
    changed.to_csv(tmp_path / "b.csv", index=False)
    run("add", str(adult_path), "--name", "adult", "--target", "income")
    run("add", str(tmp_path / "b.csv"), "--name", "adult", "--target", "income")
    code, out, _ = run("diff", "adult@1", "adult@2", "--json")
    assert code == 0 and json.loads(out)["changed_columns"] == ["education"]
    code, out, _ = run("diff", "adult@1", "adult@2")
    assert code == 0 and "education" in out and "changed" in out
    code, out, _ = run("split", "adult", "--seed", "4", "--json")
    split = json.loads(out)
    assert (
        code == 0 and split["strategy"] == "stratified" and sum(split["counts"].values()) == 48_842
    )
    code, out, _ = run("report", "adult@2", "--html", str(tmp_path / "r.html"))
    assert code == 0 and (tmp_path / "r.html").stat().st_size > 10_000
    code, out, _ = run("validate", "adult", "--json")
    assert code == 0 and json.loads(out)["failed"] is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("show", "adult@x"), "must be a positive number"),
        (("show", "adult@5"), "has no version 5"),
        (("show", "ghost"), "No dataset named 'ghost'"),
        (("add", "{adult}", "--name", "a", "--target", "salary"), "target column 'salary'"),
        (("add", "{adult}", "--name", "a", "--type", "age=datetime"), "cannot be datetime"),
        (("add", "{adult}", "--name", "a", "--type", "age"), "COLUMN=KIND"),
        (("add", "{empty}", "--name", "a"), "is empty"),
        (("split", "adult", "--fractions", "a,b"), "--fractions takes numbers"),
    ],
)
def test_bad_input_exits_2_with_one_line(run, adult_path, tmp_path, args, words):
    (tmp_path / "empty.csv").write_text("")
    run("add", str(adult_path), "--name", "adult")
    args = [a.format(adult=adult_path, empty=tmp_path / "empty.csv") for a in args]
    code, _, err = run(*args)
    assert code == 2
    assert err.startswith("error:") and words in err and len(err.strip().splitlines()) == 1
    code, out, _ = run("list", "--json")
    assert [d["name"] for d in json.loads(out)] == ["adult"]  # nothing half-written
