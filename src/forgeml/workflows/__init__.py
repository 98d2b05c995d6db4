"""Use cases (workflows layer): one plain function per thing a user does across capabilities.

Each takes an explicit ``Context(workspace, principal)``. Every interface (the CLI, the
server's admin routes, later the loop, pipelines and the UI) calls these; no interface
composes capabilities itself, and no capability reads the acting user from settings.
"""

from __future__ import annotations

from forgeml.security import Principal
from forgeml.workflows._context import Context
from forgeml.workflows._models import change_status, promote, remove_alias
from forgeml.workflows._routes import RouteChange, clear_route, set_route
from forgeml.workflows._score import score_file

__all__ = [
    "Context",
    "Principal",
    "RouteChange",
    "change_status",
    "clear_route",
    "promote",
    "remove_alias",
    "score_file",
    "set_route",
]
