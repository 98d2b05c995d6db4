"""The Python tracking API: fm.start_run, logging, search."""

from __future__ import annotations

import math
import threading

import pytest

import forgeml as fm
from forgeml.errors import ConflictError, InputError
from forgeml.store import Metric, RunStatus, Workspace


def test_context_manager_records_everything(workspace: Workspace, tmp_path):
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.txt").write_text("tree")
    with fm.start_run(
        experiment="churn", name="lgbm", tags={"team": 1}, workspace=workspace
    ) as run:
        run.log_params({"lr": 0.1, "leaves": 31})
        run.log_param("model", "lgbm")
        for step in range(3):
            run.log_metrics({"auc": 0.8 + step / 100, "loss": 1 / (step + 1)}, step=step)
        run.set_tag("stage", "dev")
        file_ref = run.log_artifact(artifact)
        dir_ref = run.log_artifact(folder, name="bundle")
    record = fm.get_run(run.run_id, workspace=workspace)
    assert record.status is RunStatus.FINISHED
    assert record.experiment == "churn" and record.name == "lgbm"
    assert record.params == {"leaves": 31, "lr": 0.1, "model": "lgbm"}
    assert record.metrics == {"auc": pytest.approx(0.82), "loss": pytest.approx(1 / 3)}
    assert record.tags == {"stage": "dev", "team": "1"}
    assert {a.path for a in record.artifacts} == {"notes.txt", "bundle"}
    assert workspace.artifacts.get_bytes(file_ref.digest) == b"hello"
    assert dir_ref.kind == "dir" and dir_ref.size == 4
    assert record.environment["python"].count(".") == 2
    assert "numpy" in record.environment["packages"]


def test_exception_marks_the_run_failed(workspace: Workspace):
    with pytest.raises(ZeroDivisionError), fm.start_run(workspace=workspace) as run:
        run.log_metric("x", 1.0)
        1 / 0  # noqa: B018
    record = fm.get_run(run.run_id, workspace=workspace)
    assert record.status is RunStatus.FAILED
    assert record.error.startswith("ZeroDivisionError")
    assert record.metrics == {"x": 1.0}  # what was logged before the failure is kept


def test_keyboard_interrupt_marks_the_run_killed(workspace: Workspace):
    with pytest.raises(KeyboardInterrupt), fm.start_run(workspace=workspace) as run:
        raise KeyboardInterrupt
    assert fm.get_run(run.run_id, workspace=workspace).status is RunStatus.KILLED


def test_steps_default_to_one_more_than_the_last(workspace: Workspace):
    with fm.start_run(workspace=workspace) as run:
        for value in (3.0, 2.0, 1.0):
            run.log_metric("loss", value)
        run.log_metric("loss", 0.5, step=10)
        run.log_metric("loss", 0.4)
    history = fm.metric_history(run.run_id, "loss", workspace=workspace)
    assert [p.step for p in history] == [0, 1, 2, 10, 11]


def test_nan_and_infinity_are_kept(workspace: Workspace):
    with fm.start_run(workspace=workspace) as run:
        run.log_metrics({"nan": math.nan, "inf": math.inf, "neg": -math.inf})
    metrics = fm.get_run(run.run_id, workspace=workspace).metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf and metrics["neg"] == -math.inf


def test_changing_a_parameter_is_refused_at_the_call(workspace: Workspace):
    with fm.start_run(workspace=workspace) as run:
        run.log_param("lr", 0.1)
        with pytest.raises(ConflictError, match="lr"):
            run.log_param("lr", 0.2)
        run.log_param("lr", 0.1)


@pytest.mark.parametrize(
    "call",
    [
        lambda run: run.log_metric("", 1.0),
        lambda run: run.log_metric("x" * 300, 1.0),
        lambda run: run.log_metric("auc", "high"),
        lambda run: run.log_params({None: 1}),
        lambda run: run.log_artifact("/does/not/exist"),
    ],
)
def test_bad_input_is_refused_at_the_call(workspace: Workspace, call):
    with fm.start_run(workspace=workspace) as run, pytest.raises(InputError):
        call(run)
    assert fm.get_run(run.run_id, workspace=workspace).status is RunStatus.FINISHED


def test_an_ended_run_refuses_more_data(workspace: Workspace):
    run = fm.start_run(workspace=workspace)
    run.end()
    with pytest.raises(ConflictError):
        run.log_metric("x", 1.0)
    run.end()  # ending twice is harmless


def test_threads_log_to_one_run(workspace: Workspace):
    run = fm.start_run(workspace=workspace)

    def work(thread: int) -> None:
        for i in range(500):
            run.log_metric(f"t{thread}", float(i), step=i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.end()
    for t in range(4):
        assert len(fm.metric_history(run.run_id, f"t{t}", workspace=workspace)) == 500


def test_child_runs_and_search(workspace: Workspace):
    with fm.start_run("search", workspace=workspace) as parent:
        for i, auc in enumerate([0.7, 0.9, 0.8]):
            with fm.start_run("search", parent=parent, name=f"trial-{i}", workspace=workspace) as t:
                t.log_params({"trial": i})
                t.log_batch([Metric("auc", auc, 0, 0)])
    best = fm.search_runs(
        "metrics.auc > 0.75",
        experiments="search",
        order_by="metrics.auc desc",
        workspace=workspace,
    )
    assert [r.name for r in best] == ["trial-1", "trial-2"]
    assert {r.parent_run_id for r in best} == {parent.run_id}


def test_info_flushes_first(workspace: Workspace):
    run = fm.start_run(workspace=workspace)
    run.log_metric("x", 2.0)
    assert run.info.metrics == {"x": 2.0}
    run.end()
