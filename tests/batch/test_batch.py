"""Batch scoring (``predict_file``, ``forgeml predict``) on the shipped UCI Adult table.

The oracle is the registered model itself: every output row must equal what
``LoadedModel.predict`` / ``predict_proba`` give on the whole table read at once, in input
order, whatever the format, the chunk size (none divides the row count) or the number of
processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_limits

import forgeml as fm
from forgeml.batch import ChunkScored, predict_file
from forgeml.batch._executors import Processes
from forgeml.batch._scorer import Scorer
from forgeml.batch._source import chunks
from forgeml.config import Settings
from forgeml.errors import InputError, NotFoundError, SchemaMismatchError
from forgeml.examples import adult_path
from forgeml.store import Workspace

TARGET = "income"
CHUNK = 7_000  # 48,842 rows: six full chunks and one of 6,842


@pytest.fixture(autouse=True)
def workers_score_every_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``jobs > 1`` every chunk goes to the worker processes: the parent scores none
    while they start (it would score all of these small files)."""
    monkeypatch.setattr(Processes, "score_while_starting", False)


@pytest.fixture(scope="module")
def adult_table() -> pd.DataFrame:
    """The shipped UCI Adult table as pandas reads it (48,842 rows, missing values included)."""
    return pd.read_csv(adult_path())


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, adult_table: pd.DataFrame) -> Iterator[Workspace]:
    """``adult-lgbm`` (a bare LightGBM classifier on pandas categoricals, @production = 1) and
    ``adult-pipe`` (a scikit-learn pipeline on the raw text columns)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    workspace = Workspace(Settings(home=tmp_path_factory.mktemp("batch") / "ws"))
    X = adult_table.drop(columns=[TARGET, "split"])
    y = adult_table[TARGET]
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    X_cat = X.astype({c: "category" for c in text})
    encode = ColumnTransformer(
        [("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), text)],
        remainder="passthrough",
    )
    pipeline = Pipeline(
        [("encode", encode), ("model", HistGradientBoostingClassifier(max_iter=20))]
    )
    with threadpool_limits(1):  # OpenMP threads spinning on a busy machine cost more than they give
        booster = lgb.LGBMClassifier(n_estimators=50, verbose=-1, random_state=0).fit(X_cat, y)
        pipeline.fit(X, y)
    fm.register(booster, name="adult-lgbm", sample=X_cat, workspace=workspace)
    fm.registry.promote("adult-lgbm", 1, workspace=workspace)
    fm.register(pipeline, name="adult-pipe", sample=X, workspace=workspace)
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, adult_table: pd.DataFrame) -> dict[str, Path]:
    """The table as .csv.gz (the shipped file), .csv and .parquet."""
    folder = tmp_path_factory.mktemp("inputs")
    adult_table.to_csv(folder / "adult.csv", index=False)
    adult_table.to_parquet(folder / "adult.parquet", index=False)
    return {
        "csv.gz": adult_path(),
        "csv": folder / "adult.csv",
        "parquet": folder / "adult.parquet",
    }


def _expected(ws: Workspace, ref: str, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    model = fm.load(ref, workspace=ws)
    X = frame[list(model.signature.names)]
    return model.predict(X), model.predict_proba(X)


def _read(path: Path) -> pd.DataFrame:
    """An output file as written: CSV through Arrow, whose float parsing round-trips."""
    if path.suffix in (".parquet", ".pq"):
        return pq.read_table(path).to_pandas()
    return pcsv.read_csv(path).to_pandas()


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize(
    ("ref", "source", "suffix", "jobs"),
    [
        ("adult-lgbm@1", "csv", ".csv", 1),
        ("adult-lgbm@1", "csv", ".csv", 2),
        ("adult-lgbm@production", "parquet", ".parquet", 1),
        ("adult-lgbm@production", "parquet", ".parquet", 2),
        ("adult-pipe@1", "csv.gz", ".parquet", 2),
        ("adult-pipe@1", "parquet", ".csv", 1),
    ],
)
def test_scores_equal_the_model_on_the_whole_table_in_input_order(
    ws, files, adult_table, tmp_path, ref, source, suffix, jobs
):
    out = tmp_path / f"scored{suffix}"
    result = predict_file(ref, files[source], out, workspace=ws, chunk_rows=CHUNK, jobs=jobs)
    assert (result.rows, result.chunks, result.jobs) == (len(adult_table), 7, jobs)
    assert result.model == ref.split("@")[0] + "@1"
    assert result.output == out and result.rows_per_second > 0
    labels, proba = _expected(ws, ref, adult_table)
    scored = _read(out)
    inputs = list(adult_table.columns)
    assert list(scored.columns) == [*inputs, "prediction", "proba_<=50K", "proba_>50K"]
    assert scored["prediction"].tolist() == labels.tolist()
    assert np.array_equal(scored[["proba_<=50K", "proba_>50K"]].to_numpy(), proba)  # exactly
    if suffix == ".csv":  # kept columns written back as read: the same table for pandas
        again = pd.read_csv(out)[inputs]
        pd.testing.assert_frame_equal(again, adult_table, check_dtype=False)
    elif source == "parquet":
        pd.testing.assert_frame_equal(scored[inputs], adult_table)
    assert not _partials(tmp_path)


def test_the_parent_scores_while_the_workers_start(ws, files, adult_table, tmp_path, monkeypatch):
    monkeypatch.setattr(Processes, "score_while_starting", True)
    out = tmp_path / "scored.parquet"
    predict_file("adult-lgbm", files["parquet"], out, workspace=ws, chunk_rows=CHUNK, jobs=2)
    labels, proba = _expected(ws, "adult-lgbm", adult_table)
    scored = _read(out)
    assert scored["prediction"].tolist() == labels.tolist()
    assert np.array_equal(scored[["proba_<=50K", "proba_>50K"]].to_numpy(), proba)


def test_a_worker_that_cannot_load_the_model_gives_its_error(ws, files, tmp_path):
    local = Scorer(fm.load("adult-lgbm@1", workspace=ws), True, find_all=False)
    empty = Settings(home=tmp_path / "empty")  # the workers' workspace lacks the model
    pool = Processes("adult-lgbm@1", empty, local, 2)
    try:
        with pytest.raises(NotFoundError, match="adult-lgbm"):
            pool.submit(pq.read_table(files["parquet"]).slice(0, 10)).result()
    finally:
        pool.close()


def test_csv_to_parquet_has_one_schema_and_a_row_group_per_chunk(ws, files, tmp_path):
    out = tmp_path / "scored.pq"
    predict_file("adult-lgbm", files["csv"], out, workspace=ws, chunk_rows=CHUNK, jobs=1)
    metadata = pq.ParquetFile(out).metadata
    assert metadata.num_row_groups == 7
    assert metadata.row_group(6).num_rows == 48_842 - 6 * CHUNK
    schema = pq.read_schema(out)
    assert schema.field("age").type == pa.int64()  # kept CSV columns keep their types
    assert schema.field("workclass").type == pa.string()
    assert schema.field("prediction").type == pa.string()
    assert schema.field("proba_>50K").type == pa.float64()


def test_keep_some_columns_or_none_and_no_probabilities(ws, files, adult_table, tmp_path):
    out = tmp_path / "ids.csv"
    predict_file(
        "adult-lgbm", files["parquet"], out, workspace=ws, keep=["fnlwgt"], probabilities=False
    )
    scored = _read(out)
    assert list(scored.columns) == ["fnlwgt", "prediction"]
    assert scored["fnlwgt"].tolist() == adult_table["fnlwgt"].tolist()
    predict_file("adult-lgbm", files["parquet"], out, workspace=ws, keep=False, jobs=1)
    assert list(_read(out).columns) == ["prediction", "proba_<=50K", "proba_>50K"]
    with pytest.raises(InputError, match="no column 'id' to keep"):
        predict_file("adult-lgbm", files["parquet"], out, workspace=ws, keep=["id"])


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_chunk_that_fails_the_signature_stops_and_leaves_no_output(
    ws, adult_table, tmp_path, jobs
):
    frame = adult_table.astype({"age": object})
    frame.loc[15_000, "age"] = "forty"  # row 15,001: the third chunk
    source = tmp_path / "bad.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "scored.parquet"
    out.write_bytes(b"previous output")
    with pytest.raises(SchemaMismatchError) as caught:
        predict_file("adult-lgbm", source, out, workspace=ws, chunk_rows=CHUNK, jobs=jobs)
    message = caught.value.message
    assert message.startswith("bad.csv, row 15,001: Column 'age'") and "forty" in message
    assert out.read_bytes() == b"previous output"  # untouched
    assert not _partials(tmp_path)


def test_an_unknown_category_names_the_column_and_rows(ws, adult_table, tmp_path):
    frame = adult_table.copy()
    frame.loc[48_000, "workclass"] = "Astronaut"
    source = tmp_path / "new.parquet"
    frame.to_parquet(source, index=False)
    with pytest.raises(SchemaMismatchError, match=r"new.parquet, row 48,001: Column 'workclass'"):
        predict_file("adult-lgbm", source, tmp_path / "o.csv", workspace=ws, chunk_rows=CHUNK)
    assert not (tmp_path / "o.csv").exists() and not _partials(tmp_path)


def test_input_problems_are_refused_before_scoring(ws, files, adult_table, tmp_path):
    no_age = tmp_path / "no-age.csv"
    adult_table.drop(columns=["age"]).head(100).to_csv(no_age, index=False)
    with pytest.raises(SchemaMismatchError, match="lacks the column 'age' that adult-lgbm@1"):
        predict_file("adult-lgbm", no_age, tmp_path / "o.csv", workspace=ws)
    with pytest.raises(InputError, match=r"extension \.txt"):
        predict_file("adult-lgbm", tmp_path / "in.txt", tmp_path / "o.csv", workspace=ws)
    with pytest.raises(InputError, match=r"output o\.json .* extension \.json"):
        predict_file("adult-lgbm", files["csv"], tmp_path / "o.json", workspace=ws)
    with pytest.raises(NotFoundError, match="No file at"):
        predict_file("adult-lgbm", tmp_path / "absent.csv", tmp_path / "o.csv", workspace=ws)
    with pytest.raises(NotFoundError):
        predict_file("nope@1", files["csv"], tmp_path / "o.csv", workspace=ws)
    with pytest.raises(InputError, match="chunk_rows"):
        predict_file("adult-lgbm", files["csv"], tmp_path / "o.csv", workspace=ws, chunk_rows=0)
    clash = tmp_path / "clash.parquet"
    adult_table.head(100).assign(prediction=1).to_parquet(clash)
    with pytest.raises(InputError, match="'prediction' would clash"):
        predict_file("adult-lgbm", clash, tmp_path / "o.csv", workspace=ws)
    predict_file("adult-lgbm", clash, tmp_path / "o.csv", workspace=ws, keep=["fnlwgt"], jobs=1)
    ragged = tmp_path / "ragged.csv"
    with ragged.open("w") as f:  # a short line after the first block Arrow reads
        adult_table.to_csv(f, index=False)
        f.write("39,Private\n")
    with pytest.raises(InputError, match=r"ragged\.csv cannot be read after row [\d,]+: .*columns"):
        predict_file("adult-lgbm", ragged, tmp_path / "r.csv", workspace=ws, jobs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clash.parquet", "no-age.csv", "o.csv", "ragged.csv",
    ]  # fmt: skip


def test_values_that_need_quotes_round_trip_through_csv(ws, adult_table, tmp_path):
    frame = adult_table.head(3_000).drop(columns=["split"])
    frame.insert(0, "note", "plain")
    frame.loc[2_500, "note"] = 'says "hi", twice'  # after the first chunk: quoting starts
    frame.loc[2_501, "note"] = "two\nlines"
    source = tmp_path / "notes.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "scored.csv.gz"
    predict_file("adult-lgbm", source, out, workspace=ws, chunk_rows=1_000, jobs=1)
    again = pd.read_csv(out)
    assert again["note"].tolist() == frame["note"].tolist()
    assert again.shape == (3_000, frame.shape[1] + 3)


def test_a_file_without_rows_gives_an_output_without_rows(ws, adult_table, tmp_path):
    source = tmp_path / "empty.csv"
    adult_table.head(0).to_csv(source, index=False)
    out = tmp_path / "scored.parquet"
    result = predict_file("adult-lgbm", source, out, workspace=ws)
    assert (result.rows, result.chunks) == (0, 0)
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert table.column_names[-3:] == ["prediction", "proba_<=50K", "proba_>50K"]


def test_progress_counts_rows_of_parquet_and_bytes_of_csv(ws, files, tmp_path):
    seen: list[ChunkScored] = []
    predict_file(
        "adult-lgbm", files["parquet"], tmp_path / "a.parquet", workspace=ws,
        chunk_rows=20_000, jobs=1, on_event=lambda e: isinstance(e, ChunkScored) and seen.append(e),
    )  # fmt: skip
    assert [p.rows for p in seen] == [0, 20_000, 40_000, 48_842]
    assert {p.total_rows for p in seen} == {48_842} and seen[-1].fraction == 1.0
    seen.clear()
    predict_file(
        "adult-lgbm", files["csv"], tmp_path / "a.csv", workspace=ws,
        chunk_rows=20_000, jobs=1, on_event=lambda e: isinstance(e, ChunkScored) and seen.append(e),
    )  # fmt: skip
    size = files["csv"].stat().st_size
    assert {p.total_bytes for p in seen} == {size} and seen[-1].rows == 48_842
    read = [p.bytes_read or 0 for p in seen[1:]]
    assert read == sorted(read) and read[-1] == size


def test_chunks_have_the_asked_size_whatever_the_batches():
    batches = [pa.record_batch({"x": list(range(a, b))}) for a, b in [(0, 3), (3, 3), (3, 11)]]
    tables = list(chunks(iter(batches), 4, "x"))
    assert [t.num_rows for t in tables] == [4, 4, 3]
    assert [v for t in tables for v in t.column("x").to_pylist()] == list(range(11))


# -- the command line -------------------------------------------------------------------------


def _forgeml(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", "--home", str(home), "predict", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_cli_scores_a_file_and_prints_rows_and_speed(ws, files, adult_table, tmp_path):
    out = tmp_path / "scored.parquet"
    result = _forgeml(
        ws.home, "adult-lgbm@production", "--input", str(files["parquet"]), "--output", str(out),
        "--chunk-rows", str(CHUNK), "--jobs", "2", "--keep", "fnlwgt", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["model"] == "adult-lgbm@1"
    assert (info["rows"], info["jobs"], info["chunks"]) == (48_842, 2, 7)
    assert info["rows_per_second"] > 0 and Path(info["output"]) == out
    labels, _ = _expected(ws, "adult-lgbm@1", adult_table)
    scored = _read(out)
    assert list(scored.columns) == ["fnlwgt", "prediction", "proba_<=50K", "proba_>50K"]
    assert scored["prediction"].tolist() == labels.tolist()
    text = _forgeml(
        ws.home, "adult-pipe", "-i", str(files["csv"]), "-o", str(tmp_path / "s.csv"),
        "--jobs", "1", "--no-probabilities", "--predictions-only",
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert (
        "48,842 of 48,842 rows of adult.csv scored by adult-pipe@1" in text.stdout
        and "rows/s" in text.stdout
    )
    assert list(_read(tmp_path / "s.csv").columns) == ["prediction"]


@pytest.mark.slow
def test_cli_bad_input_is_one_line_and_exit_2(ws, files, adult_table, tmp_path):
    no_age = tmp_path / "no-age.parquet"
    adult_table.drop(columns=["age"]).head(100).to_parquet(no_age)
    bad = tmp_path / "bad.csv"
    adult_table.head(20_000).astype({"age": object}).assign(age="old").to_csv(bad, index=False)
    out = str(tmp_path / "o.csv")
    cases = [
        (["adult-lgbm", "-i", str(tmp_path / "absent.csv"), "-o", out], "No file at"),
        (["adult-lgbm", "-i", str(tmp_path / "x.xlsx"), "-o", out], "extension .xlsx"),
        (["nope", "-i", str(files["csv"]), "-o", out], "nope"),
        (["adult-lgbm", "-i", str(no_age), "-o", out], "lacks the column 'age'"),
        (["adult-lgbm", "-i", str(bad), "-o", out, "--jobs", "2"], "bad.csv, row 1: Column 'age'"),
        (["adult-lgbm", "-i", str(files["csv"]), "-o", out, "--chunk-rows", "0"], "at least 1"),
    ]
    for args, words in cases:
        result = _forgeml(ws.home, *args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert words in lines[0], lines[0]
        assert "Traceback" not in result.stderr
    assert not Path(out).exists() and not _partials(tmp_path)


def test_the_cli_progress_bar_is_drawn_from_the_events(ws, files, tmp_path):
    from rich.console import Console

    from forgeml.cli._predict import _ProgressView

    console = Console(record=True, force_terminal=True, width=120)
    view = _ProgressView(console)
    frames: list[str] = []

    def draw(event: object) -> None:
        view(event)  # type: ignore[arg-type]
        if isinstance(event, ChunkScored) and view._progress is not None:
            view._progress.refresh()
            frames.append(console.export_text(clear=False))

    predict_file(
        "adult-lgbm", files["parquet"], tmp_path / "a.parquet", workspace=ws,
        chunk_rows=20_000, jobs=1, on_event=draw,
    )  # fmt: skip
    view.close()
    assert "scoring adult.parquet with adult-lgbm@1" in frames[-1]
    assert "48,842 rows (0 skipped)" in frames[-1] and "100%" in frames[-1]
