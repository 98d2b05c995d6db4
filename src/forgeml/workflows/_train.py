"""Use case: train on a dataset (or a file added as one), evaluate, register."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.errors import InputError
from forgeml.workflows._context import Context, use_case
from forgeml.workflows._data import add_data

if TYPE_CHECKING:
    from forgeml.store import ModelVersionRecord
    from forgeml.train import TrainConfig, TrainResult
    from forgeml.train._progress import ProgressHandler

__all__ = ["TrainOutcome", "dataset_name_for", "train_model"]

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".gz", ".parquet", ".pq")


@dataclass(frozen=True)
class TrainOutcome:
    """What a training produced.

    Attributes:
        result: the training result (model, leaderboard, scores, run, recorded split).
        dataset: the dataset version trained on, ``NAME@V``.
        registered: the registered model version (``None`` when not registered).
        seconds: wall seconds per step: ``data``, ``training``, ``registration``.
    """

    result: TrainResult
    dataset: str
    registered: ModelVersionRecord | None
    seconds: dict[str, float] = field(default_factory=dict)


def dataset_name_for(path: Path) -> str:
    """The dataset name a file is added under: its name up to the first dot, cleaned."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.name.split(".")[0]).strip("-.") or "data"


def _is_file_source(source: str) -> bool:
    path = Path(source)
    return path.is_file() or "/" in source or path.suffix.lower() in _TABLE_SUFFIXES


@use_case("train")
def train_model(
    ctx: Context,
    source: str,
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    sensitive: Sequence[str] = (),
    register: bool = True,
    model_name: str | None = None,
    progress: bool | ProgressHandler = False,
    data_options: Mapping[str, Any] | None = None,
) -> TrainOutcome:
    """Train on a dataset version, evaluate on its recorded hold-out, register the model.

    Args:
        ctx: where and who (recorded on the dataset, the run, the split and the version).
        source: a dataset of the workspace (``NAME``, ``NAME@V``) or a CSV/Parquet file,
            which is added as a version of the dataset named after the file first.
        config: the ``TrainConfig`` (or its fields); its ``target`` and ``time_column``
            also become the added file's roles.
        sensitive: sensitive columns of an added file (a dataset keeps its own).
        register: register the trained model.
        model_name: the registered model's name (default: the dataset's name).
        progress: a callable given each ``TrainingProgress`` event of the search (an
            interface draws them), or ``True`` for log lines.
        data_options: other roles and types for an added file (see ``forgeml.data.add``).

    Returns:
        The result, the dataset version, the registered version and the time per step.

    Raises:
        InputError: no file at a path, sensitive columns for a dataset source, or any bad
            configuration (see ``forgeml.train``).
        NotFoundError: no such dataset or version.
    """
    from forgeml import data as datasets
    from forgeml.refs import check_name
    from forgeml.train import TrainConfig, check_training_data, train

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.build(config or {})
    ws = ctx.workspace
    seconds: dict[str, float] = {}
    mark = time.monotonic()
    # Everything the work will need is checked before anything is written or the budget spent:
    # the model's name, then (for a file) the table, before it is added as a dataset version.
    file_source = _is_file_source(source)
    if file_source:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"No data file at {path}")
        dataset_name = dataset_name_for(path)
    else:
        if sensitive or data_options:
            raise InputError(
                "--sensitive and --bins apply to a file source; a dataset keeps its own"
            )
        dataset_name = datasets.parse_ref(source)[0]
    if register:
        check_name(model_name or dataset_name, kind="model")
    if file_source:
        added = add_data(
            ctx,
            path,
            name=dataset_name,
            target=cfg.target,
            time=cfg.time_column,
            sensitive=tuple(sensitive),
            check=lambda frame: check_training_data(frame, cfg, sensitive=sensitive),
            **dict(data_options or {}),
        )
        version = added.version
    else:
        version = datasets.get(source, workspace=ws)
    seconds["data"] = round(time.monotonic() - mark, 3)

    mark = time.monotonic()
    result = train(version.ref, cfg, workspace=ws, progress=progress, actor=ctx.principal)
    seconds["training"] = round(time.monotonic() - mark, 3)
    registered = None
    if register:
        from forgeml.registry import register as register_model

        mark = time.monotonic()
        registered = register_model(
            result, name=model_name or version.name, workspace=ws, actor=ctx.principal
        )
        seconds["registration"] = round(time.monotonic() - mark, 3)
    return TrainOutcome(result, version.ref, registered, seconds)
