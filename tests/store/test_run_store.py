"""The run store contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

import math

import pytest

from forgeml.errors import ConflictError, InputError, InvalidFilterError, NotFoundError
from forgeml.store import ArtifactRef, Metric, RunStatus, Workspace, now_ms


def _run(ws: Workspace, experiment: str = "exp", **kwargs) -> str:
    return ws.runs.create_run(experiment, user="ada", **kwargs)


def test_experiment_created_once(workspace: Workspace):
    a = workspace.runs.get_or_create_experiment("churn")
    b = workspace.runs.get_or_create_experiment("churn")
    assert a == b
    assert [e.name for e in workspace.runs.list_experiments()] == ["churn"]
    with pytest.raises(NotFoundError):
        workspace.runs.get_experiment("nope")
    with pytest.raises(InputError):
        workspace.runs.get_or_create_experiment("")


def test_run_round_trip(workspace: Workspace):
    run_id = _run(workspace, name="first", tags={"team": "risk"}, environment={"python": "3.11"})
    workspace.runs.log_batch(
        run_id,
        params={"lr": 0.1, "model": "lgbm", "depth": 6, "flag": True},
        metrics=[
            Metric("auc", 0.7, 0, 1),
            Metric("auc", 0.8, 1, 2),
            Metric("loss", math.nan, 0, 3),
        ],
        tags={"stage": "dev"},
    )
    record = workspace.runs.get_run(run_id)
    assert record.status is RunStatus.RUNNING
    assert record.name == "first"
    assert record.user == "ada"
    assert record.params == {"depth": 6, "flag": "true", "lr": 0.1, "model": "lgbm"}
    assert record.metrics["auc"] == 0.8
    assert math.isnan(record.metrics["loss"])
    assert record.tags == {"stage": "dev", "team": "risk"}
    assert record.environment == {"python": "3.11"}
    workspace.runs.end_run(run_id)
    ended = workspace.runs.get_run(run_id)
    assert ended.status is RunStatus.FINISHED
    assert ended.end_time is not None and ended.end_time >= ended.start_time


def test_latest_metric_is_the_highest_step_whatever_the_write_order(workspace: Workspace):
    run_id = _run(workspace)
    workspace.runs.log_batch(run_id, metrics=[Metric("m", 5.0, 5, 10)])
    workspace.runs.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 20), Metric("m", 2.0, 2, 30)])
    assert workspace.runs.get_run(run_id).metrics["m"] == 5.0
    history = workspace.runs.metric_history(run_id, "m")
    assert [(p.step, p.value) for p in history] == [(1, 1.0), (2, 2.0), (5, 5.0)]


def test_params_are_write_once(workspace: Workspace):
    run_id = _run(workspace)
    workspace.runs.log_batch(run_id, params={"lr": 0.1})
    workspace.runs.log_batch(run_id, params={"lr": 0.1})  # same value: fine
    with pytest.raises(ConflictError, match="lr"):
        workspace.runs.log_batch(run_id, params={"lr": 0.2})
    assert workspace.runs.get_run(run_id).params == {"lr": 0.1}


def test_ended_run_takes_no_more_data(workspace: Workspace):
    run_id = _run(workspace)
    workspace.runs.end_run(run_id, RunStatus.FAILED, error="ValueError: boom")
    assert workspace.runs.get_run(run_id).error == "ValueError: boom"
    with pytest.raises(ConflictError):
        workspace.runs.log_batch(run_id, metrics=[Metric("x", 1.0)])
    with pytest.raises(ConflictError):
        workspace.runs.end_run(run_id)
    with pytest.raises(InputError):
        workspace.runs.end_run(_run(workspace), RunStatus.RUNNING)


def test_unknown_run(workspace: Workspace):
    for call in (
        lambda: workspace.runs.get_run("0" * 32),
        lambda: workspace.runs.log_batch("0" * 32, metrics=[Metric("x", 1.0)]),
        lambda: workspace.runs.end_run("0" * 32),
        lambda: workspace.runs.get_run("zz"),
    ):
        with pytest.raises(NotFoundError):
            call()


def test_run_id_prefix(workspace: Workspace):
    run_id = _run(workspace)
    assert workspace.runs.get_run(run_id[:8]).run_id == run_id
    with pytest.raises(NotFoundError):
        workspace.runs.get_run(run_id[:3])  # too short to be a prefix


def test_lost_run_is_derived_from_a_stale_heartbeat(workspace: Workspace):
    stale = _run(workspace, start_time=now_ms() - 3_600_000)
    workspace.runs.heartbeat([stale], at=now_ms() - 3_600_000)
    fresh = _run(workspace)
    assert workspace.runs.get_run(stale).status is RunStatus.LOST
    assert workspace.runs.get_run(fresh).status is RunStatus.RUNNING
    lost = workspace.runs.search_runs(filter="status = 'lost'").items
    assert [r.run_id for r in lost] == [stale]
    running = workspace.runs.search_runs(filter="status = 'running'").items
    assert [r.run_id for r in running] == [fresh]


def test_artifact_links(workspace: Workspace):
    run_id = _run(workspace)
    digest = workspace.artifacts.put_bytes(b"model bytes")
    workspace.runs.add_artifact(run_id, ArtifactRef("model.bin", digest, 11, "file", now_ms()))
    (ref,) = workspace.runs.get_run(run_id).artifacts
    assert (ref.path, ref.digest, ref.size, ref.kind) == ("model.bin", digest, 11, "file")


@pytest.fixture
def populated(workspace: Workspace) -> dict[str, str]:
    ids = {}
    for i, (model, auc) in enumerate([("lgbm", 0.91), ("xgb", 0.87), ("linear", 0.75)]):
        run_id = _run(workspace, "search" if i < 2 else "baseline", name=model, start_time=1000 + i)
        workspace.runs.log_batch(
            run_id,
            params={"model": model, "lr": 0.05 * (i + 1)},
            metrics=[Metric("auc", auc, 0, 1)],
            tags={"team": "risk" if i else "fraud"},
        )
        if i < 2:
            workspace.runs.end_run(run_id)
        ids[model] = run_id
    return ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metrics.auc > 0.8", {"lgbm", "xgb"}),
        ("metrics.auc >= 0.87 and params.model != 'lgbm'", {"xgb"}),
        ("params.lr < 0.12", {"lgbm", "xgb"}),
        ("params.model in ('linear', 'xgb')", {"linear", "xgb"}),
        ("params.model like 'l%'", {"lgbm", "linear"}),
        ("tags.team = 'risk'", {"xgb", "linear"}),
        ("tags.owner is null", {"lgbm", "xgb", "linear"}),
        ("metrics.missing is not null", set()),
        ("status = 'finished'", {"lgbm", "xgb"}),
        ("status != 'finished'", {"linear"}),
        ("experiment = 'baseline'", {"linear"}),
        ("name ilike 'LG%'", {"lgbm"}),
        ("attributes.start_time > 1000", {"xgb", "linear"}),
        ("metrics.`auc` > 0.9", {"lgbm"}),
        ("", {"lgbm", "xgb", "linear"}),
    ],
)
def test_search_filters(workspace: Workspace, populated, query, expected):
    found = workspace.runs.search_runs(filter=query).items
    names = {r.name for r in found}
    assert names == expected


def test_search_order_and_experiments(workspace: Workspace, populated):
    by_auc = workspace.runs.search_runs(order_by=["metrics.auc desc"]).items
    assert [r.name for r in by_auc] == ["lgbm", "xgb", "linear"]
    by_lr = workspace.runs.search_runs(order_by="params.lr").items
    assert [r.name for r in by_lr] == ["lgbm", "xgb", "linear"]
    newest = workspace.runs.search_runs().items
    assert [r.name for r in newest] == ["linear", "xgb", "lgbm"]
    only = workspace.runs.search_runs(experiments=["search"]).items
    assert {r.name for r in only} == {"lgbm", "xgb"}


@pytest.mark.parametrize("order", [None, ["metrics.auc desc"]])
def test_pagination_visits_every_run_once(workspace: Workspace, order):
    ids = set()
    for i in range(23):
        run_id = _run(workspace, start_time=1000 + i // 3)  # ties on start_time
        workspace.runs.log_batch(run_id, metrics=[Metric("auc", (i * 7) % 10 / 10, 0, 1)])
        ids.add(run_id)
    seen: list[str] = []
    token = None
    while True:
        page = workspace.runs.search_runs(order_by=order, max_results=5, page_token=token)
        seen += [r.run_id for r in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert len(seen) == len(ids) and set(seen) == ids


@pytest.mark.parametrize(
    "query",
    [
        "metrics.auc >",
        "metrics.auc > 'high'",
        "params.x = 1 or params.y = 2",
        "colour = 'red'",
        "metrics.auc ~ 3",
        "status = 'sleeping'",
        "tags.team = 3",
        "(metrics.auc > 1",
        "start_time > 'yesterday'",
    ],
)
def test_malformed_filters_are_named(workspace: Workspace, query):
    with pytest.raises(InvalidFilterError):
        workspace.runs.search_runs(filter=query)


def test_bad_page_arguments(workspace: Workspace):
    with pytest.raises(InvalidFilterError):
        workspace.runs.search_runs(page_token="not-a-token!!")
    with pytest.raises(InputError):
        workspace.runs.search_runs(max_results=0)
    with pytest.raises(InvalidFilterError):
        workspace.runs.search_runs(order_by="metrics.auc sideways")
