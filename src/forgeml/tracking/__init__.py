"""Run tracking: ``start_run`` and ``search_runs`` over the workspace's run store."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forgeml.config import Settings
from forgeml.security import Principal
from forgeml.store import Metric, RunRecord, Workspace
from forgeml.tracking._run import ActiveRun

__all__ = [
    "ActiveRun",
    "default_workspace",
    "get_run",
    "metric_history",
    "search_runs",
    "set_workspace",
    "start_run",
]

_default: Workspace | None = None
_default_lock = threading.Lock()


def default_workspace() -> Workspace:
    """The workspace named by the environment (``FORGEML_HOME`` etc.), opened once."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Workspace(Settings())
        return _default


def set_workspace(workspace: Workspace | str | None) -> Workspace | None:
    """Make ``workspace`` (or a workspace folder path) the default; ``None`` resets it."""
    global _default
    with _default_lock:
        if isinstance(workspace, str):
            workspace = Workspace(Settings(home=Path(workspace)))
        _default = workspace
        return _default


def start_run(
    experiment: str = "default",
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: str | ActiveRun | None = None,
    workspace: Workspace | None = None,
    capture_code: bool = True,
    actor: Principal | str | None = None,
) -> ActiveRun:
    """Start recording a run.

    Example::

        with fm.start_run(experiment="churn") as run:
            run.log_params({"lr": 0.1})
            run.log_metrics({"auc": 0.91}, step=1)
            run.log_artifact("model.txt")

    Args:
        experiment: the experiment's name (created if missing).
        name: a readable run name (default ``run-<id prefix>``).
        tags: tags to set at once.
        parent: a parent run (or its id), e.g. the search a trial belongs to.
        workspace: where to record (default: ``default_workspace()``).
        capture_code: record the git revision of the working directory.
        actor: who runs it (default: the local user of the workspace's settings).
    """
    return ActiveRun(
        workspace or default_workspace(),
        experiment=experiment,
        name=name,
        tags=tags,
        parent=parent,
        capture_code=capture_code,
        actor=actor,
    )


def search_runs(
    filter: str | None = None,
    *,
    experiments: Sequence[str] | str | None = None,
    order_by: Sequence[str] | str | None = None,
    max_results: int = 1000,
    workspace: Workspace | None = None,
) -> list[RunRecord]:
    """Runs matching ``filter`` (e.g. ``"metrics.auc > 0.8 and params.model = 'lgbm'"``).

    Reads every page up to ``max_results`` runs; use ``Workspace.runs.search_runs`` for paging.
    """
    store = (workspace or default_workspace()).runs
    if isinstance(experiments, str):
        experiments = [experiments]
    found: list[RunRecord] = []
    token = None
    while len(found) < max_results:
        page = store.search_runs(
            experiments=experiments,
            filter=filter,
            order_by=order_by,
            max_results=min(1000, max_results - len(found)),
            page_token=token,
        )
        found.extend(page.items)
        token = page.next_page_token
        if token is None:
            break
    return found


def get_run(run_id: str, *, workspace: Workspace | None = None) -> RunRecord:
    """A run by id or unique id prefix."""
    return (workspace or default_workspace()).runs.get_run(run_id)


def metric_history(run_id: str, key: str, *, workspace: Workspace | None = None) -> list[Metric]:
    """Every point of one metric of a run."""
    return (workspace or default_workspace()).runs.metric_history(run_id, key)
