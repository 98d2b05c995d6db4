"""forgeml: from a table to a monitored, self-improving production model.

``import forgeml as fm``; the public surface is the names in ``__all__``.
"""

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
    "Workspace",
    "__version__",
    "data",
    "default_workspace",
    "evaluate",
    "get_run",
    "load",
    "metric_history",
    "register",
    "registry",
    "search_runs",
    "set_workspace",
    "start_run",
    "train",
]


def __getattr__(name: str) -> object:
    # ``fm.evaluate`` loads the evaluation package on first use (it pulls in pandas); the
    # package is callable, so ``fm.evaluate(model, X, y)`` and ``fm.evaluate.explain`` both work.
    if name == "evaluate":
        import forgeml.evaluate

        return forgeml.evaluate
    # ``fm.train(df, target=...)``: the training package, loaded on first use, is callable.
    if name == "train":
        import forgeml.train

        return forgeml.train
    # ``fm.register`` / ``fm.load`` (the model registry) load it on first use as well.
    if name in ("register", "load", "registry"):
        import forgeml.registry

        return forgeml.registry if name == "registry" else getattr(forgeml.registry, name)
    raise AttributeError(f"module 'forgeml' has no attribute {name!r}")
