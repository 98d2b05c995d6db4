"""The model registry (capability layer): verified bundles, versions, aliases, lineage, cards.

``register`` turns a fitted model or a training result into the next numbered version of a
model, stored as a bundle (native or ``skops`` model file, manifest with a required signature
and the sha256 of every file, drift baseline, model card). ``load`` verifies every digest before
anything is deserialized and returns a ``LoadedModel`` that checks its inputs against the
signature. Aliases (``production``, ``staging``...) move atomically, and every change is kept
in an append-only history.
"""

from __future__ import annotations

from forgeml.registry._api import (
    ModelVersion,
    alias_at,
    archive,
    card,
    compare,
    get_model,
    get_version,
    history,
    lineage,
    list_models,
    list_versions,
    load,
    models_trained_on,
    parse_model_ref,
    promote,
    reference,
    register,
    remove_alias,
    restore,
    retire,
    set_threshold,
)
from forgeml.registry._bundle import UnsafeModelError
from forgeml.registry._mlflow import import_mlflow
from forgeml.registry._predictor import LoadedModel
from forgeml.registry._signature import (
    ExtraColumnsWarning,
    InputColumn,
    Signature,
    UnknownCategoryWarning,
)
from forgeml.store import ModelEvent, ModelRecord, ModelStatus

__all__ = [
    "ExtraColumnsWarning",
    "InputColumn",
    "LoadedModel",
    "ModelEvent",
    "ModelRecord",
    "ModelStatus",
    "ModelVersion",
    "Signature",
    "UnknownCategoryWarning",
    "UnsafeModelError",
    "alias_at",
    "archive",
    "card",
    "compare",
    "get_model",
    "get_version",
    "history",
    "import_mlflow",
    "lineage",
    "list_models",
    "list_versions",
    "load",
    "models_trained_on",
    "parse_model_ref",
    "promote",
    "reference",
    "register",
    "remove_alias",
    "restore",
    "retire",
    "set_threshold",
]
