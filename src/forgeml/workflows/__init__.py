"""Use cases (workflows layer): one plain function per thing a user does across capabilities.

Each takes an explicit ``Context(workspace, principal)``. Every interface (the CLI, the
server's admin routes, later the loop, pipelines and the UI) calls these; no interface
composes capabilities itself, and no capability reads the acting user from settings.
"""

from __future__ import annotations

from forgeml.security import Principal
from forgeml.workflows._context import Context
from forgeml.workflows._data import AddedData, add_data, split_data
from forgeml.workflows._evaluate import ModelEvaluation, ScoredRows, evaluate_model
from forgeml.workflows._feedback import correct_feedback, label_history
from forgeml.workflows._gc import GarbageCollection, collect_garbage
from forgeml.workflows._models import change_status, promote, remove_alias
from forgeml.workflows._monitor import check_alerts, served_model_report, watch_alerts
from forgeml.workflows._quickstart import quickstart
from forgeml.workflows._routes import RouteChange, clear_route, set_route
from forgeml.workflows._runs import RunArtifact, download_run_artifacts, run_artifacts
from forgeml.workflows._score import score_file
from forgeml.workflows._security import (
    create_key,
    list_audit,
    list_keys,
    protect_alias,
    reencrypt_artifacts,
    revoke_key,
    unprotect_alias,
    verify_audit,
)
from forgeml.workflows._train import TrainOutcome, train_model

__all__ = [
    "AddedData",
    "Context",
    "GarbageCollection",
    "ModelEvaluation",
    "Principal",
    "RouteChange",
    "RunArtifact",
    "ScoredRows",
    "TrainOutcome",
    "add_data",
    "change_status",
    "check_alerts",
    "clear_route",
    "collect_garbage",
    "correct_feedback",
    "create_key",
    "download_run_artifacts",
    "evaluate_model",
    "label_history",
    "list_audit",
    "list_keys",
    "promote",
    "protect_alias",
    "quickstart",
    "reencrypt_artifacts",
    "remove_alias",
    "revoke_key",
    "run_artifacts",
    "score_file",
    "served_model_report",
    "set_route",
    "split_data",
    "train_model",
    "unprotect_alias",
    "verify_audit",
    "watch_alerts",
]
