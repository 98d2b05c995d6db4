"""forgeml: from a table to a monitored, self-improving production model.

``import forgeml as fm``; the public surface is the names in ``__all__``.
"""

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
    "default_workspace",
    "get_run",
    "metric_history",
    "search_runs",
    "set_workspace",
    "start_run",
]
