"""The prediction log store contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import math
import uuid
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from forgeml.errors import ConflictError, InputError, NotFoundError
from forgeml.store import Database, PredictionLogStore, PredictionRecord, Workspace
from forgeml.store._db import _MIGRATIONS

CLASSES = ["<=50K", ">50K"]
T0 = 1_780_000_000_000


@cache
def adult() -> pd.DataFrame:
    with resources.as_file(resources.files("forgeml.examples") / "adult.csv.gz") as path:
        frame = pd.read_csv(path)
    return frame.drop(columns=["income", "split"])


@cache
def adult_rows() -> tuple[dict[str, Any], ...]:
    return tuple(adult().to_dict("records"))


@cache
def adult_single_rows() -> tuple[dict[str, list[Any]], ...]:
    return tuple({c: [v] for c, v in row.items()} for row in adult_rows())


def adult_inputs(start: int, n: int) -> dict[str, list[Any]]:
    """``n`` real adult rows from ``start`` (wrapping around), column-oriented."""
    rows = adult_rows()
    if n == 1:  # shared, never changed: many records are built cheaply
        return adult_single_rows()[start % len(rows)]
    chosen = [rows[(start + i) % len(rows)] for i in range(n)]
    return {c: [row[c] for row in chosen] for c in chosen[0]}


def record(
    start: int,
    n: int = 1,
    *,
    model: str = "adult",
    version: int = 1,
    role: str = "primary",
    time_ms: int | None = None,
    request_id: str | None = None,
    probabilities: bool = True,
) -> PredictionRecord:
    p = [round(((start + i) % 97) / 97, 4) for i in range(n)]
    outputs: dict[str, Any] = {
        "predictions": [CLASSES[int(q > 0.5)] for q in p],
        "probabilities": [[1 - q, q] for q in p] if probabilities else None,
        "classes": CLASSES if probabilities else None,
    }
    return PredictionRecord(
        request_id=request_id or str(uuid.uuid4()),
        model=model,
        version=version,
        role=role,
        time_ms=T0 + start if time_ms is None else time_ms,
        latency_ms=1.25,
        n_rows=n,
        inputs=adult_inputs(start, n),
        outputs=outputs,
        protocol="json",
    )


def test_records_expand_to_one_row_per_predicted_row(workspace: Workspace):
    store = workspace.predlog
    records = [record(0, 3), record(3, 1), record(4, 2, version=2)]
    assert store.write_predictions(records) == 3
    frame = store.predictions("adult")
    expected_inputs = adult().iloc[:6].reset_index(drop=True)
    assert list(frame.columns) == [
        "request_id",
        "version",
        "time_ms",
        "latency_ms",
        *expected_inputs.columns,
        "prediction",
        "proba_<=50K",
        "proba_>50K",
        "label",
    ]
    assert len(frame) == 6
    assert (
        frame["request_id"].tolist()
        == [records[0].request_id] * 3 + [records[1].request_id] + [records[2].request_id] * 2
    )
    assert frame["version"].tolist() == [1, 1, 1, 1, 2, 2]
    assert frame["time_ms"].tolist() == [T0] * 3 + [T0 + 3] + [T0 + 4] * 2
    pd.testing.assert_frame_equal(
        frame[expected_inputs.columns], expected_inputs, check_dtype=False
    )
    probabilities = [q for r in records for q in r.outputs["probabilities"]]
    np.testing.assert_allclose(frame["proba_>50K"], [q[1] for q in probabilities])
    np.testing.assert_allclose(frame["proba_<=50K"], [q[0] for q in probabilities])
    assert frame["prediction"].tolist() == [p for r in records for p in r.outputs["predictions"]]
    assert frame["label"].isna().all()


def test_filters_select_version_window_role_and_latest_rows(workspace: Workspace):
    store = workspace.predlog
    primaries = [record(i, 2, version=1 + i % 2, time_ms=T0 + 10 * i) for i in range(10)]
    shadows = [
        record(i, 2, version=3, role="shadow", time_ms=T0 + 10 * i, request_id=r.request_id)
        for i, r in enumerate(primaries)
    ]
    store.write_predictions(primaries + shadows + [record(50, model="other")])
    assert store.count_predictions() == 21
    assert store.count_predictions("adult") == 20
    assert store.count_predictions("nothing") == 0
    assert len(store.predictions("adult")) == 20
    assert set(store.predictions("adult", version=2)["version"]) == {2}
    window = store.predictions("adult", since_ms=T0 + 20, until_ms=T0 + 50)
    assert sorted(set(window["time_ms"])) == [T0 + 20, T0 + 30, T0 + 40]
    shadow = store.predictions("adult", role="shadow")
    assert len(shadow) == 20
    assert set(shadow["version"]) == {3}
    latest = store.predictions("adult", limit=5)
    assert len(latest) == 5
    assert latest["request_id"].tolist() == [primaries[7].request_id] + [
        r.request_id for r in primaries[8:] for _ in range(2)
    ]
    assert len(store.predictions("adult", limit=0)) == 0
    empty = store.predictions("nothing")
    assert empty.empty
    assert {"request_id", "prediction", "label"} <= set(empty.columns)
    with pytest.raises(InputError, match="role"):
        store.predictions("adult", role="canary")


def test_writing_a_batch_again_adds_no_duplicate(workspace: Workspace):
    store = workspace.predlog
    records = [record(i) for i in range(20)]
    store.write_predictions(records)
    assert store.write_predictions([*records[10:], record(30)]) == 11
    assert store.count_predictions() == 21
    assert store.predictions("adult")["request_id"].is_unique


def test_invalid_records_are_refused_or_skipped(workspace: Workspace):
    store = workspace.predlog
    good = record(0)
    too_long = record(1, request_id="x" * 37)
    short_inputs = PredictionRecord(
        **{**_fields(record(2, 2)), "inputs": {"age": [1]}}  # 1 value for 2 rows
    )
    with pytest.raises(InputError, match="request id"):
        store.write_predictions([good, too_long])
    with pytest.raises(InputError, match=r"'age' has 1 values for 2 rows"):
        store.write_predictions([good, short_inputs])
    assert store.count_predictions() == 0
    assert store.write_predictions([good, too_long, short_inputs], on_invalid="skip") == 1
    assert store.count_predictions() == 1
    unserializable = PredictionRecord(**{**_fields(record(3)), "inputs": {"x": [object()]}})
    with pytest.raises(InputError, match="JSON"):
        store.write_predictions([unserializable])


def values(column: pd.Series) -> list[Any]:
    """The column's values with every kind of missing value (None, NaN, NA) as None."""
    return [None if pd.isna(v) else v for v in column.tolist()]


def _fields(r: PredictionRecord) -> dict[str, Any]:
    return {name: getattr(r, name) for name in r.__slots__}


def test_numpy_and_missing_values_are_stored(workspace: Workspace):
    store = workspace.predlog
    r = PredictionRecord(
        request_id="np-1",
        model="adult",
        version=1,
        role="primary",
        time_ms=T0,
        latency_ms=np.float32(2.5),
        n_rows=np.int64(3),
        inputs={
            "age": np.array([39, 50, 38]),
            "hours": np.array([40.0, np.nan, 13.5]),
            "sex": np.array(["Male", None, "Female"], dtype=object),
        },
        outputs={"predictions": np.array([1.5, 2.5, 3.5]), "probabilities": None, "classes": None},
        protocol="v2",
    )
    store.write_predictions([r])
    frame = store.predictions("adult")
    assert frame["age"].tolist() == [39, 50, 38]
    assert frame["hours"].tolist()[0] == 40.0 and math.isnan(frame["hours"].tolist()[1])
    assert frame["sex"].tolist()[0] == "Male" and pd.isna(frame["sex"].tolist()[1])
    assert frame["prediction"].tolist() == [1.5, 2.5, 3.5]
    assert not any(c.startswith("proba_") for c in frame.columns)
    assert frame["latency_ms"].tolist() == [2.5] * 3


def test_irregular_logs_expand_like_regular_ones(workspace: Workspace):
    store = workspace.predlog
    a = record(0, 2)
    # a later version that lost a column, gained one, names a value differently and has
    # other classes: each part falls back to the plain expansion
    b = PredictionRecord(
        request_id="b",
        model="adult",
        version=2,
        role="primary",
        time_ms=T0 + 1,
        latency_ms=1.0,
        n_rows=1,
        inputs={"age": ["unknown"], "fnlwgt": [1], "signup": ["2024-01-02"], "label": [7]},
        outputs={"predictions": [1], "probabilities": [[0.2, 0.8]], "classes": [0, 1]},
        protocol="json",
    )
    c = record(2, 1, probabilities=False, time_ms=T0 + 2)
    store.write_predictions([a, b, c])
    frame = store.predictions("adult")
    assert len(frame) == 4
    assert frame["age"].tolist() == [*a.inputs["age"], "unknown", c.inputs["age"][0]]
    assert values(frame["workclass"])[2] is None
    assert values(frame["signup"]) == [None, None, "2024-01-02", None]
    assert values(frame["input_label"]) == [None, None, 7, None]
    assert frame["prediction"].tolist() == [*a.outputs["predictions"], 1, "<=50K"]
    first, second = a.outputs["probabilities"]
    np.testing.assert_allclose(frame["proba_>50K"], [first[1], second[1], math.nan, math.nan])
    np.testing.assert_allclose(frame["proba_1"], [math.nan, math.nan, 0.8, math.nan])
    # a date column logged as strings stays strings on the fast path too
    store.write_predictions(
        [
            PredictionRecord(
                **{**_fields(record(5, model="dated")), "inputs": {"signup": ["2024-01-02"]}}
            )
        ]
    )
    assert store.predictions("dated")["signup"].tolist() == ["2024-01-02"]


def test_feedback_is_joined_written_once_and_corrected(workspace: Workspace):
    store = workspace.predlog
    a, b, c = record(0, 2), record(2, 1), record(3, 1)
    store.write_predictions([a, b, c])
    store.write_predictions(
        [record(0, 2, role="shadow", version=2, request_id=a.request_id, time_ms=a.time_ms)]
    )
    assert store.known_requests([a.request_id, c.request_id, "nope"]) == {
        a.request_id,
        c.request_id,
    }
    store.add_feedback({a.request_id: [">50K", "<=50K"], b.request_id: np.array(["<=50K"])})
    frame = store.predictions("adult")
    assert values(frame["label"]) == [">50K", "<=50K", "<=50K", None]
    # labels are written once: sending them again is refused, nothing changes
    with pytest.raises(ConflictError, match="already have labels; labels are written once"):
        store.add_feedback({a.request_id: ["<=50K", "<=50K"], c.request_id: ["<=50K"]})
    assert store.known_requests([c.request_id]) == {c.request_id}
    assert values(store.predictions("adult")["label"]) == [">50K", "<=50K", "<=50K", None]
    store.add_feedback({a.request_id: ["<=50K", "<=50K"]}, user="ada", correct=True)
    corrected = workspace.audit.entries(action="feedback.correct")
    assert [(e.actor, e.object, e.before, e.after) for e in corrected] == [
        (
            "ada",
            f"feedback:{a.request_id}",
            {"labels": {a.request_id: [">50K", "<=50K"]}},
            {
                "labels": {a.request_id: ["<=50K", "<=50K"]},
                "revisions": {a.request_id: 2},
                "reason": None,
            },
        )
    ]
    frame = store.predictions("adult")
    assert values(frame["label"]) == ["<=50K", "<=50K", "<=50K", None]
    shadow = store.predictions("adult", role="shadow")
    assert shadow["label"].tolist() == ["<=50K", "<=50K"]
    with workspace.db.transaction(write=False) as conn:
        rows = conn.exec_driver_sql(
            "SELECT request_id, created_by FROM prediction_feedback ORDER BY request_id"
        ).all()
    assert dict(rows) == {a.request_id: "ada", b.request_id: None}
    store.add_feedback({})  # nothing to do


def test_a_correction_is_a_new_revision_read_as_the_effective_label(workspace: Workspace):
    """Corrections add revisions (history kept, latest wins) and one audit entry each; the
    windows monitoring reads and the loop's predictions() both see the latest labels."""
    store = workspace.predlog
    a, b = record(0, 1, time_ms=T0), record(1, 2, time_ms=T0 + 10)
    store.write_predictions([a, b])
    with pytest.raises(ConflictError, match="no labels to correct; send them as feedback"):
        store.correct_feedback({a.request_id: ["<=50K"]}, user="bo")
    store.add_feedback({a.request_id: [">50K"], b.request_id: [">50K", ">50K"]}, user="ada")
    assert store.correct_feedback({a.request_id: ["<=50K"]}, user="bo", reason="typo") == {
        a.request_id: 2
    }
    assert store.correct_feedback(
        {a.request_id: [">50K"], b.request_id: ["<=50K", ">50K"]}, user="cy"
    ) == {a.request_id: 3, b.request_id: 2}
    history = store.feedback_history(a.request_id)
    assert [(h.revision, h.labels, h.created_by, h.reason) for h in history] == [
        (1, [">50K"], "ada", None),
        (2, ["<=50K"], "bo", "typo"),
        (3, [">50K"], "cy", None),
    ]
    assert store.feedback_history("never-labelled") == []
    assert values(store.predictions("adult")["label"]) == [">50K", "<=50K", ">50K"]
    [(_, window)] = list(store.windows("adult", output="pandas"))
    assert values(window["label"]) == [">50K", "<=50K", ">50K"]
    entries = workspace.audit.entries(action="feedback")
    assert [(e.action, e.actor) for e in entries] == [
        ("feedback.add", "ada"),
        ("feedback.correct", "bo"),
        ("feedback.correct", "cy"),
    ]
    assert entries[1].after["reason"] == "typo"
    assert entries[2].before == {
        "labels": {a.request_id: ["<=50K"], b.request_id: [">50K", ">50K"]}
    }
    # a refused correction writes nothing: wrong count, unknown id, bad reason
    for bad, error in (
        ({a.request_id: ["<=50K", "<=50K"]}, InputError),
        ({"nope": ["<=50K"]}, NotFoundError),
    ):
        with pytest.raises(error):
            store.correct_feedback(bad, user="dee")
    with pytest.raises(InputError, match="reason"):
        store.correct_feedback({a.request_id: ["<=50K"]}, reason="x" * 1001)
    assert len(store.feedback_history(a.request_id)) == 3
    assert len(workspace.audit.entries(action="feedback")) == 3
    assert workspace.audit.verify().ok


def test_feedback_for_unknown_requests_writes_nothing(workspace: Workspace):
    store = workspace.predlog
    known = record(0)
    store.write_predictions([known, record(1, role="shadow", request_id="shadow-only")])
    unknown = [f"missing-{i:02d}" for i in range(12)]
    labels = {known.request_id: ["<=50K"]} | {r: ["<=50K"] for r in unknown}
    with pytest.raises(NotFoundError) as info:
        store.add_feedback(labels)
    message = str(info.value)
    assert "12 request id(s)" in message
    assert all(r in message for r in unknown[:10])
    assert unknown[10] not in message and "2 more" in message
    with pytest.raises(NotFoundError, match="shadow-only"):
        store.add_feedback({"shadow-only": ["<=50K"]})  # a shadow row alone is not enough
    assert store.predictions("adult")["label"].isna().all()


def test_feedback_with_a_wrong_label_count_writes_nothing(workspace: Workspace):
    store = workspace.predlog
    a, b = record(0, 1), record(1, 3)
    store.write_predictions([a, b])
    with pytest.raises(InputError, match=rf"{b.request_id}.*3 row\(s\); got 2 label"):
        store.add_feedback({a.request_id: ["<=50K"], b.request_id: ["<=50K", ">50K"]})
    with pytest.raises(InputError, match="list"):
        store.add_feedback({a.request_id: "<=50K"})
    assert store.predictions("adult")["label"].isna().all()


def test_indexes_serve_the_read_paths(store_url: str):
    db = Database(store_url)
    try:
        inspector = sa.inspect(db.engine)
        indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("predictions")}
        assert ("model", "time_ms") in indexes
        unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("predictions")}
        assert ("request_id", "role") in unique  # leads with request_id: the id lookups use it
    finally:
        db.close()


def test_migration_0004_downgrades_and_upgrades(store_url: str):
    from alembic import command
    from alembic.config import Config

    Database(store_url).close()
    engine = sa.create_engine(store_url)
    try:
        for target in ("0003", "0004"):
            with engine.begin() as conn:
                config = Config()
                config.set_main_option("script_location", str(_MIGRATIONS))
                config.attributes["connection"] = conn
                (command.downgrade if target == "0003" else command.upgrade)(config, target)
            tables = set(sa.inspect(engine).get_table_names())
            serving = {"predictions", "prediction_feedback", "serving_routes"}
            assert (serving <= tables) == (target == "0004")
    finally:
        engine.dispose()


def test_migration_0011_keeps_labels_stored_before_it_as_their_first_revision(store_url: str):
    from alembic import command
    from alembic.config import Config

    db = Database(store_url)
    store, a = PredictionLogStore(db), record(0, 1)
    store.write_predictions([a])
    store.add_feedback({a.request_id: [">50K"]}, user="ada")
    db.close()
    engine = sa.create_engine(store_url)
    try:
        for target in ("0009", "0011"):
            with engine.begin() as conn:
                config = Config()
                config.set_main_option("script_location", str(_MIGRATIONS))
                config.attributes["connection"] = conn
                (command.downgrade if target == "0009" else command.upgrade)(config, target)
        with engine.begin() as conn:
            rows = conn.exec_driver_sql(
                "SELECT request_id, revision, labels, created_by FROM feedback_revisions"
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(a.request_id, 1, '[">50K"]', "ada")]


def test_ten_thousand_records_write_in_one_batch(store_url: str):
    db = Database(store_url)
    try:
        store = PredictionLogStore(db)
        records = [record(i) for i in range(10_000)]
        assert store.write_predictions(records) == 10_000
        assert store.count_predictions() == 10_000
        assert store.count_predictions("other") == 0
    finally:
        db.close()


# -- reading at scale: keyset pages, windows, aggregates in SQL -------------------------------

HOUR = 3_600_000
H0 = T0 - T0 % HOUR  # a whole UTC hour


def spread_log(store: PredictionLogStore) -> list[PredictionRecord]:
    """Records over three hours: multi-row requests, two versions, equal timestamps."""
    rng = np.random.default_rng(7)
    records = []
    for i in range(60):
        hour = (0, 0, 1, 2)[i % 4]
        time_ms = H0 + hour * HOUR + int(rng.integers(0, HOUR)) if i % 10 else H0 + HOUR - 1
        records.append(
            record(i, n=1 + i % 3, version=1 + i % 2, time_ms=time_ms, probabilities=i % 7 != 0)
        )
    store.write_predictions(records)
    store.add_feedback({records[5].request_id: [">50K"] * records[5].n_rows})
    return records


def failed(time_ms: int, latency_ms: float, *, model: str = "adult") -> PredictionRecord:
    return PredictionRecord(
        request_id=str(uuid.uuid4()),
        model=model,
        version=1,
        role="primary",
        time_ms=time_ms,
        latency_ms=latency_ms,
        n_rows=0,
        inputs={},
        outputs={},
        protocol="json",
        error="schema_mismatch",
    )


def test_batches_page_by_keyset_and_add_up_to_the_whole_log(workspace: Workspace):
    store = workspace.predlog
    spread_log(store)
    whole = store.predictions("adult")
    pages = []
    for batch in store.batches("adult", page_size=7, output="pandas"):
        assert not workspace.db.in_transaction()  # no transaction spans the caller's work
        pages.append(batch)
    assert len(pages) == 9  # 60 records, 7 per page
    # a page without feedback has a float label column: compare values, not dtypes
    pd.testing.assert_frame_equal(pd.concat(pages, ignore_index=True), whole, check_dtype=False)
    arrow = [b for b in store.batches("adult", page_size=7, version=2)]
    table = pa.concat_tables(arrow, promote_options="default")
    assert table.num_rows == len(whole[whole["version"] == 2])
    expected = whole[whole["version"] == 2].reset_index(drop=True)
    assert table.column("request_id").to_pylist() == expected["request_id"].tolist()
    assert table.column("age").to_pylist() == expected["age"].tolist()
    assert table.column("label").null_count == table.num_rows - (expected["label"].notna().sum())


def test_ties_on_time_cross_page_boundaries_without_loss_or_repeat(workspace: Workspace):
    store = workspace.predlog
    records = [record(i, time_ms=T0) for i in range(25)]  # one instant, 25 requests
    store.write_predictions(records)
    ids = [rid for b in store.batches("adult", page_size=4) for rid in b["request_id"].to_pylist()]
    assert ids == [r.request_id for r in records]


def test_windows_hold_one_hour_each_and_add_up_to_the_whole_log(workspace: Workspace):
    store = workspace.predlog
    spread_log(store)
    whole = store.predictions("adult")
    starts, frames = [], []
    for start, frame in store.windows("adult", page_size=5, output="pandas"):
        assert frame["time_ms"].between(start, start + HOUR - 1).all()
        starts.append(start)
        frames.append(frame)
    assert starts == [H0, H0 + HOUR, H0 + 2 * HOUR]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole, check_dtype=False)
    tables = dict(store.windows("adult", every_ms=2 * HOUR, since_ms=H0 + 1, page_size=1000))
    assert list(tables) == [H0, H0 + 2 * HOUR]
    counted = sum(t.num_rows for t in tables.values())
    assert counted == int((whole["time_ms"] >= H0 + 1).sum())
    assert isinstance(tables[H0], pa.Table)


def test_window_stats_are_computed_in_sql_and_match_numpy(workspace: Workspace):
    store = workspace.predlog
    rng = np.random.default_rng(11)
    records, fails = [], []
    for i in range(300):
        time_ms = H0 + int(rng.integers(0, 3 * HOUR))
        latency = float(np.round(rng.lognormal(1.0, 0.8), 3))
        if i % 9 == 0:
            fails.append(failed(time_ms, latency))
        else:
            records.append(
                dataclasses.replace(record(i, n=1 + i % 4, time_ms=time_ms), latency_ms=latency)
            )
    store.write_predictions(records + fails)
    store.write_predictions([record(1_000, model="other", time_ms=H0)])  # another model
    stats = store.window_stats("adult", percentiles=(50, 90, 99, 99.9))
    assert [s.start_ms for s in stats] == [H0, H0 + HOUR, H0 + 2 * HOUR]
    for window in stats:
        assert window.end_ms == window.start_ms + HOUR
        inside = [r for r in records + fails if window.start_ms <= r.time_ms < window.end_ms]
        latencies = np.array([r.latency_ms for r in inside])
        assert window.requests == len(inside)
        assert window.rows == sum(r.n_rows for r in inside if r.error is None)
        assert window.errors == sum(r.error is not None for r in inside)
        assert window.error_rate == pytest.approx(window.errors / len(inside))
        for q in (50, 90, 99, 99.9):
            expected = np.percentile(latencies, q, method="inverted_cdf")  # nearest rank
            assert window.latency_ms[q] == pytest.approx(expected), q
    total = store.window_stats("adult", every_ms=10 * HOUR, version=1, since_ms=H0)
    assert [s.requests for s in total] == [len(records) + len(fails)]
    assert total[0].to_dict()["latency_ms"].keys() == {"p50", "p90", "p99"}
    assert store.window_stats("adult", role="shadow") == []


def test_failed_requests_count_as_errors_but_hold_no_prediction_rows(workspace: Workspace):
    store = workspace.predlog
    ok, bad = record(0), failed(T0 + 1, 3.5)
    assert store.write_predictions([ok, bad]) == 2
    assert store.count_predictions("adult") == 2
    assert store.predictions("adult")["request_id"].tolist() == [ok.request_id]
    assert store.known_requests([ok.request_id, bad.request_id]) == {ok.request_id}
    with pytest.raises(NotFoundError, match=bad.request_id):
        store.add_feedback({bad.request_id: []})
    (window,) = store.window_stats("adult", every_ms=HOUR)
    assert (window.requests, window.rows, window.errors) == (2, 1, 1)
    invalid = dataclasses.replace(failed(T0, 1.0), outputs={"predictions": [1]})
    with pytest.raises(InputError, match="no outputs"):
        store.write_predictions([invalid])
    with pytest.raises(InputError, match="error code"):
        store.write_predictions([dataclasses.replace(failed(T0, 1.0), error="x" * 65)])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: list(s.batches("adult", page_size=0)), "page_size"),
        (lambda s: list(s.batches("adult", output="csv")), "output"),
        (lambda s: list(s.windows("adult", every_ms=0)), "every_ms"),
        (lambda s: list(s.windows("adult", role="canary")), "role"),
        (lambda s: s.window_stats("adult", percentiles=[0]), "percentiles"),
        (lambda s: s.window_stats("adult", percentiles=[99.999]), "percentiles"),
        (lambda s: s.window_stats("adult", percentiles=[]), "percentiles"),
    ],
)
def test_reading_arguments_are_checked(sqlite_workspace: Workspace, call: Any, match: str):
    with pytest.raises(InputError, match=match):
        call(sqlite_workspace.predlog)
