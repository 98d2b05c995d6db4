"""forgeml monitor drift through a real process, files and dataset versions as inputs, the
HTML page, and one readable line for every bad input."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import forgeml as fm
from forgeml.config import Settings
from forgeml.errors import InputError, NotFoundError
from forgeml.monitor import drift, render_html, write_html
from forgeml.store import Workspace


def forgeml(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )


def assert_clean_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def files(tmp_path, bike_months) -> dict[str, Path]:
    paths = {
        "jan": tmp_path / "jan.csv",
        "jul": tmp_path / "jul.parquet",
        "feb": tmp_path / "feb.csv",
    }
    bike_months[(2011, 1)].to_csv(paths["jan"], index=False)
    bike_months[(2011, 7)].to_parquet(paths["jul"])
    bike_months[(2011, 2)].to_csv(paths["feb"], index=False)
    return paths


def test_cli_prints_the_table_and_writes_the_page(tmp_path, files):
    page = tmp_path / "out" / "drift.html"
    result = forgeml(
        "monitor", "drift", str(files["jan"]), str(files["jul"]), "--html", str(page),
        home=tmp_path / "ws",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "jul.parquet (744 rows) against" in out and "(688 rows)" in out
    assert re.search(r"temp\s+│ numeric │ ks\s+│ 1\s", out)
    assert "table: DRIFT" in out and "Bonferroni" in out
    assert "not compared: instant (identifier" in out
    html = page.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 16  # one figure per compared column
    assert base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert "domain classifier" in html and "temp" in html


def test_cli_json(tmp_path, files):
    result = forgeml(
        "monitor", "drift", str(files["jan"]), str(files["feb"]), "--json",
        "--column", "temp", "--column", "weathersit", "--categorical", "weathersit",
        home=tmp_path / "ws",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [c["column"] for c in data["columns"]] == ["temp", "weathersit"]
    assert data["columns"][1]["test"] == "jensen_shannon"
    assert data["n_reference"] == 688 and data["n_current"] == 649
    assert data["multivariate"]["auc"] is not None


@pytest.mark.parametrize(
    ("make", "words"),
    [
        # columns that differ
        (lambda ref: ref.drop(columns=["temp"]), ("different columns", "'temp'")),
        # a column of the wrong type
        (lambda ref: ref.assign(hum="high"), ("'hum' is numeric", "'high'")),
        # an empty current table (a header only)
        (lambda ref: ref.iloc[:0], ("current table", "no rows")),
        # a date column holding something else
        (lambda ref: ref.assign(dteday="soon"), ("'dteday' holds dates", "'soon'")),
    ],
)
def test_cli_bad_current_table(tmp_path, files, bike_months, make, words):
    bad = tmp_path / "bad.csv"
    make(bike_months[(2011, 2)]).to_csv(bad, index=False)
    result = forgeml("monitor", "drift", str(files["jan"]), str(bad), home=tmp_path / "ws")
    assert_clean_error(result, *words)


def test_cli_other_bad_input(tmp_path, files, bike_months):
    small = tmp_path / "small.csv"
    bike_months[(2011, 1)].iloc[:40].to_csv(small, index=False)
    assert_clean_error(
        forgeml("monitor", "drift", str(small), str(files["feb"]), home=tmp_path / "ws"),
        "40 rows", "at least 100",
    )  # fmt: skip
    assert_clean_error(
        forgeml("monitor", "drift", str(tmp_path / "nope.csv"), str(files["feb"]),
                home=tmp_path / "ws"),
        "no file",
    )  # fmt: skip
    assert_clean_error(
        forgeml("monitor", "drift", str(files["jan"]), str(files["feb"]), "--alpha", "3",
                home=tmp_path / "ws"),
        "`alpha`",
    )  # fmt: skip
    assert_clean_error(
        forgeml("monitor", "drift", str(files["jan"]), "bikes@1", home=tmp_path / "ws"),
        "bikes",
    )  # fmt: skip


def test_dataset_versions_as_inputs(workspace, bike_months):
    fm.data.add(bike_months[(2011, 1)], name="bikes", workspace=workspace)
    fm.data.add(bike_months[(2011, 8)], name="bikes", workspace=workspace)
    report = drift("bikes@1", "bikes@2", workspace=workspace, multivariate=False)
    assert report.reference == "dataset bikes@1" and report.current == "dataset bikes@2"
    assert report["season"].drifted and report.n_current == len(bike_months[(2011, 8)])
    with pytest.raises(NotFoundError):
        drift("bikes@1", "bikes@9", workspace=workspace)
    with pytest.raises(InputError, match="NAME@V"):
        drift("bikes@1", "not a ref!", workspace=workspace)


def test_cli_reads_dataset_versions(tmp_path, bike_months):
    home = tmp_path / "ws"
    with Workspace(Settings(home=home)) as ws:
        fm.data.add(bike_months[(2011, 1)], name="bikes", workspace=ws)
        fm.data.add(bike_months[(2011, 2)], name="bikes", workspace=ws)
    result = forgeml("monitor", "drift", "bikes@1", "bikes@2", "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["current"] == "dataset bikes@2"


def test_page_for_a_categorical_column_and_no_classifier(tmp_path, hotel):
    ref = hotel.iloc[:3000]
    cur = hotel.iloc[3000:6000].assign(meal=lambda f: f["meal"].where(f.index % 4 > 0, "Brunch"))
    report = drift(ref, cur, columns=["meal", "adr", "country"], multivariate=False)
    html = render_html(report)
    assert "Brunch" in html and "unseen" in html and "Not run (multivariate=False)" in html
    path = write_html(report, tmp_path / "page.html")
    assert path.read_text(encoding="utf-8").count("data:image/png;base64,") == 3
    with pytest.raises(InputError, match="Cannot write"):
        write_html(report, tmp_path / "page.html" / "inside")


def test_empty_dataframe_is_refused():
    frame = pd.DataFrame({"a": range(200)})
    with pytest.raises(InputError, match="current table is empty"):
        drift(frame, frame.iloc[:0])
