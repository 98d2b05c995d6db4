"""Bad rows and column types in batch scoring, on the UCI Bank Marketing table.

A LightGBM classifier trained on bank scores copies of the table with a few corrupted rows (a
word in a number column, a category never seen in training, a missing value where training
had none). The oracle is the model on the clean rows, read at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_limits

import forgeml as fm
from forgeml.batch import (
    QUARANTINE_COLUMNS,
    BatchEvent,
    ChunkScored,
    ScoringFinished,
    ScoringStarted,
    predict_file,
)
from forgeml.batch._executors import Processes
from forgeml.config import Settings
from forgeml.errors import InputError, SchemaMismatchError
from forgeml.store import Workspace

ROWS = 6_000
CHUNK = 1_000
FEATURES = ["age", "job", "marital", "education", "campaign", "euribor3m", "nr.employed"]
# 0-based positions of the corrupted rows; row numbers in messages are these plus one
BAD = {1_234: ("age", "forty"), 1_240: ("job", "astronaut"), 4_999: ("euribor3m", None)}


@pytest.fixture(autouse=True)
def workers_score_every_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Processes, "score_while_starting", False)


@pytest.fixture(scope="module")
def bank(bank_path: Path) -> pd.DataFrame:
    """The first ROWS rows of bank-additional-full.csv (real data)."""
    return pd.read_csv(bank_path, nrows=ROWS)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, bank: pd.DataFrame) -> Iterator[Workspace]:
    """``bank-lgbm`` version 1: LightGBM on FEATURES, the text columns as categories."""
    workspace = Workspace(Settings(home=tmp_path_factory.mktemp("bank") / "ws"))
    X = bank[FEATURES].astype({c: "category" for c in ("job", "marital", "education")})
    with threadpool_limits(1):
        model = lgb.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0)
        model.fit(X, bank["y"])
    fm.register(model, name="bank-lgbm", sample=X, workspace=workspace)
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory: pytest.TempPathFactory, bank: pd.DataFrame) -> Path:
    """bank as CSV with the BAD rows corrupted."""
    frame = bank.astype({"age": object})
    for position, (column, value) in BAD.items():
        frame.loc[position, column] = value
    path = tmp_path_factory.mktemp("bad") / "bank-bad.csv"
    frame.to_csv(path, index=False)
    return path


def _clean_scores(ws: Workspace, bank: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    model = fm.load("bank-lgbm@1", workspace=ws)
    good = bank.drop(index=list(BAD))[FEATURES]
    return model.predict(good), model.predict_proba(good)


@pytest.mark.parametrize(("executor", "jobs"), [("local", None), ("threads", 2), ("processes", 2)])
def test_skip_leaves_out_the_bad_rows_and_scores_the_others(
    ws, bank, corrupted, tmp_path, executor, jobs
):
    out = tmp_path / "scored.parquet"
    result = predict_file(
        "bank-lgbm", corrupted, out, workspace=ws, chunk_rows=CHUNK, executor=executor,
        jobs=jobs, on_error="skip",
    )  # fmt: skip
    assert (result.rows, result.skipped, result.rows_read) == (ROWS - 3, 3, ROWS)
    assert result.executor == executor and result.quarantine is None
    scored = pq.read_table(out).to_pandas()
    labels, proba = _clean_scores(ws, bank)
    assert scored["prediction"].tolist() == labels.tolist()
    assert np.array_equal(scored[["proba_no", "proba_yes"]].to_numpy(), proba)
    assert scored["duration"].tolist() == bank.drop(index=list(BAD))["duration"].tolist()


def test_quarantine_writes_each_bad_row_with_its_number_column_and_reason(
    ws, bank, corrupted, tmp_path
):
    out, held = tmp_path / "scored.csv", tmp_path / "held.csv"
    seen: list[BatchEvent] = []
    result = predict_file(
        "bank-lgbm", corrupted, out, workspace=ws, chunk_rows=CHUNK, on_error="quarantine",
        quarantine=held, on_event=seen.append,
    )  # fmt: skip
    assert (result.rows, result.skipped, result.quarantine) == (ROWS - 3, 3, held)
    rows = pd.read_csv(held, keep_default_na=False)
    assert list(rows.columns) == [*QUARANTINE_COLUMNS, *bank.columns]
    assert rows["error_row"].tolist() == [p + 1 for p in BAD]
    assert rows["error_column"].tolist() == [c for c, _ in BAD.values()]
    reasons = rows["error_reason"].tolist()
    assert "'forty'" in reasons[0] and "'astronaut'" in reasons[1] and "missing" in reasons[2]
    assert rows["age"].tolist()[:2] == ["forty", str(bank.loc[1_240, "age"])]  # as read
    assert len(pd.read_csv(out)) == ROWS - 3
    assert isinstance(seen[0], ScoringStarted) and isinstance(seen[-1], ScoringFinished)
    chunks = [e for e in seen if isinstance(e, ChunkScored)]
    assert [e.skipped for e in chunks] == [0, 0, 2, 2, 2, 3, 3]
    assert chunks[-1].rows == ROWS and chunks[-1].written == ROWS - 3
    assert seen[-1].result == result  # type: ignore[union-attr]


def test_a_clean_file_gives_an_empty_quarantine_file(ws, bank, tmp_path):
    source = tmp_path / "clean.parquet"
    bank.to_parquet(source)
    held = tmp_path / "held.parquet"
    result = predict_file(
        "bank-lgbm", source, tmp_path / "o.parquet", workspace=ws, on_error="quarantine",
        quarantine=held,
    )  # fmt: skip
    assert (result.rows, result.skipped) == (ROWS, 0)
    table = pq.read_table(held)
    assert table.num_rows == 0 and table.column_names[:3] == list(QUARANTINE_COLUMNS)


@pytest.mark.parametrize("jobs", [1, 2])
def test_fail_names_the_first_bad_row_and_column(ws, corrupted, tmp_path, jobs):
    out = tmp_path / "o.parquet"
    with pytest.raises(SchemaMismatchError) as caught:
        predict_file("bank-lgbm", corrupted, out, workspace=ws, chunk_rows=CHUNK, jobs=jobs)
    message = caught.value.message
    assert message.startswith("bank-bad.csv, row 1,235: Column 'age'"), message
    assert "'forty'" in message and "\n" not in message
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []


def test_csv_to_parquet_keeps_integer_float_text_boolean_and_datetime_columns(ws, bank, tmp_path):
    frame = bank.copy()
    frame["subscribed"] = frame["y"] == "yes"  # written True/False
    start = pd.Timestamp("2008-05-05 09:00:00")
    frame["called_at"] = start + pd.to_timedelta(np.arange(ROWS) * 7, unit="min")
    frame["duration"] = frame["duration"].astype("Int64")
    frame.loc[10, "duration"] = None  # an integer column with a missing value
    source = tmp_path / "bank.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "scored.parquet"
    predict_file("bank-lgbm", source, out, workspace=ws, chunk_rows=CHUNK, jobs=1)
    schema = pq.read_schema(out)
    expected = {
        "age": pa.int64(), "duration": pa.int64(), "campaign": pa.int64(),
        "euribor3m": pa.float64(), "emp.var.rate": pa.float64(),
        "job": pa.string(), "y": pa.string(),
        "subscribed": pa.bool_(), "called_at": pa.timestamp("us"),
    }  # fmt: skip
    assert {name: schema.field(name).type for name in expected} == expected
    table = pq.read_table(out).to_pandas()
    assert table["called_at"].tolist() == frame["called_at"].tolist()
    assert table["subscribed"].tolist() == frame["subscribed"].tolist()
    assert table["euribor3m"].tolist() == frame["euribor3m"].tolist()
    assert table["duration"].isna().tolist() == frame["duration"].isna().tolist()

    # Parquet to Parquet keeps stored types as they are, categories included
    typed = tmp_path / "bank.parquet"
    frame.astype({"job": "category"}).to_parquet(typed)
    predict_file("bank-lgbm", typed, out, workspace=ws, jobs=1)
    again = pq.read_table(out).to_pandas()
    assert isinstance(again["job"].dtype, pd.CategoricalDtype)
    assert again["called_at"].dtype == frame["called_at"].dtype


def test_skipped_bad_values_do_not_change_a_number_column_into_text(ws, corrupted, tmp_path):
    out = tmp_path / "scored.parquet"
    predict_file("bank-lgbm", corrupted, out, workspace=ws, on_error="skip", jobs=1)
    assert pq.read_schema(out).field("age").type == pa.int64()  # 'forty' was never written


def test_on_error_arguments_are_checked(ws, corrupted, tmp_path):
    out = tmp_path / "o.csv"
    with pytest.raises(InputError, match="on_error"):
        predict_file("bank-lgbm", corrupted, out, workspace=ws, on_error="ignore")
    with pytest.raises(InputError, match="quarantine"):
        predict_file("bank-lgbm", corrupted, out, workspace=ws, on_error="quarantine")
    with pytest.raises(InputError, match="quarantine"):
        predict_file("bank-lgbm", corrupted, out, workspace=ws, quarantine=tmp_path / "q.csv")
    with pytest.raises(InputError, match="quarantine file is the output"):
        predict_file(
            "bank-lgbm", corrupted, out, workspace=ws, on_error="quarantine", quarantine=out
        )
    with pytest.raises(InputError, match="'ray' executor is planned"):
        predict_file("bank-lgbm", corrupted, out, workspace=ws, executor="ray")
    with pytest.raises(InputError, match="executor"):
        predict_file("bank-lgbm", corrupted, out, workspace=ws, executor="gpu")
    assert list(tmp_path.iterdir()) == []


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
def test_cli_on_error(ws, corrupted, tmp_path):
    out, held = tmp_path / "o.csv", tmp_path / "held.parquet"
    failed = _forgeml(ws.home, "bank-lgbm", "-i", str(corrupted), "-o", str(out))
    assert failed.returncode == 2, failed.stderr
    assert failed.stderr.strip().splitlines() == [
        "error: bank-bad.csv, row 1,235: Column 'age' takes integer values; got 'forty'"
    ]
    skipped = _forgeml(
        ws.home, "bank-lgbm", "-i", str(corrupted), "-o", str(out), "--on-error", "skip"
    )
    assert skipped.returncode == 0, skipped.stderr
    assert f"{ROWS - 3:,} of {ROWS:,} rows of bank-bad.csv scored by bank-lgbm@1" in skipped.stdout
    assert "3 rows skipped" in skipped.stdout
    held_run = _forgeml(
        ws.home, "bank-lgbm", "-i", str(corrupted), "-o", str(out), "--quarantine", str(held)
    )
    assert held_run.returncode == 0, held_run.stderr
    assert (
        f"3 rows skipped (values the model cannot take), written with their reasons to {held}"
        in held_run.stdout
    )
    assert pq.read_table(held).column("error_row").to_pylist() == [p + 1 for p in BAD]
    for args, words in [
        (["--on-error", "drop"], "--on-error takes fail, skip or quarantine"),
        (["--on-error", "quarantine"], "needs --quarantine FILE"),
        (["--on-error", "skip", "--quarantine", str(held)], "--quarantine goes with"),
        (["--executor", "ray"], "planned"),
    ]:
        bad = _forgeml(ws.home, "bank-lgbm", "-i", str(corrupted), "-o", str(out), *args)
        assert bad.returncode == 2, (args, bad.stderr)
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], bad.stderr


def test_the_score_a_file_use_case_scores_in_the_contexts_workspace(ws, bank, corrupted, tmp_path):
    from forgeml.workflows import Context, Principal, score_file

    out = tmp_path / "scored.parquet"
    result = score_file(
        Context(ws, Principal("ana")), "bank-lgbm@1", corrupted, out, on_error="skip", jobs=1
    )
    labels, _ = _clean_scores(ws, bank)
    assert (result.rows, result.skipped) == (ROWS - 3, 3)
    assert pq.read_table(out).column("prediction").to_pylist() == labels.tolist()
