"""forgeml: from a table to a monitored, self-improving production model.

``import forgeml as fm``; the public surface is the names in ``__all__``.
"""

from typing import TYPE_CHECKING

import lazy_loader

from forgeml import data
from forgeml._version import __version__
from forgeml.config import Settings
from forgeml.errors import ForgeMLError
from forgeml.store import RunRecord, RunStatus, Workspace
from forgeml.tracking import (
    ActiveRun,
    default_workspace,
    get_run,
    metric_history,
    search_runs,
    set_workspace,
    start_run,
)

__all__ = [
    "ActiveRun",
    "ForgeMLError",
    "RunRecord",
    "RunStatus",
    "Settings",
    "TrainConfig",
    "Workspace",
    "__version__",
    "data",
    "default_workspace",
    "evaluate",
    "get_run",
    "load",
    "metric_history",
    "monitor",
    "register",
    "registry",
    "search_runs",
    "set_workspace",
    "start_run",
    "train",
]


if TYPE_CHECKING:
    from forgeml import evaluate, monitor, registry, train
    from forgeml.registry import load, register
    from forgeml.train import TrainConfig

# Evaluation, training and the registry (pandas, scikit-learn...) load on first use. The
# evaluation and training packages are callable: ``fm.train(df, target=...)`` and
# ``fm.evaluate(model, X, y)`` work as well as ``fm.evaluate.explain``.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submodules=["evaluate", "monitor", "registry", "train"],
    submod_attrs={"registry": ["load", "register"], "train": ["TrainConfig"]},
)


def __dir__() -> list[str]:
    return sorted(__all__)
