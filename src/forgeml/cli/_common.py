"""What every command shares: the workspace from the root options, output helpers."""

from __future__ import annotations

import math
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from forgeml._json import dumps_text
from forgeml.config import Settings
from forgeml.errors import InputError
from forgeml.security import Principal
from forgeml.store import Workspace
from forgeml.workflows import Context

__all__ = [
    "console",
    "err_console",
    "fmt_ms",
    "fmt_value",
    "get_settings",
    "open_context",
    "open_workspace",
    "principal_of",
    "print_json",
    "styled",
    "table",
]

# Markup is off on both consoles: every string printed, and every table cell and title, is
# shown as the text it is. Stored names, descriptions and reasons are written by users and may
# carry "[/]" or "[bold]"; read as Rich markup they would break the command for every user of
# the store (MarkupError). Deliberate styling goes through ``styled`` (a ``Text`` object).
console = Console(highlight=False, soft_wrap=False, markup=False)
#: The principal ``cli.main`` authorized this command as.
PRINCIPAL: ContextVar[Principal | None] = ContextVar("forgeml_cli_principal", default=None)

if not console.is_terminal:  # piped output: do not squeeze tables into 80 columns
    console = Console(highlight=False, soft_wrap=False, markup=False, width=max(console.width, 200))
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)  # one line


def styled(text: str, style: str) -> Text:
    """``text`` shown in ``style`` (never read as markup)."""
    return Text(text, style=style)


def get_settings(ctx: typer.Context) -> Settings:
    """The settings of this invocation (environment plus root options)."""
    root = ctx.find_root()
    settings = root.obj if isinstance(root.obj, Settings) else None
    return settings or Settings()


def open_workspace(ctx: typer.Context) -> Workspace:
    """Open the workspace named by the root options or the environment."""
    workspace = Workspace(get_settings(ctx))
    ctx.call_on_close(workspace.close)
    return workspace


def principal_of(ctx: typer.Context) -> Principal:
    """Who runs this command: the principal its API key authenticated (``cli.main`` checks it
    before the command runs), else the local user the settings name."""
    return PRINCIPAL.get() or Principal.from_settings(get_settings(ctx))


def open_context(ctx: typer.Context) -> Context:
    """The use-case context of this invocation: the workspace, acted on by the principal
    the command was authorized as (the local user when the workspace has no keys)."""
    return Context(open_workspace(ctx), principal_of(ctx), origin="cli")


def print_json(obj: Any) -> None:
    """Print JSON for machines to stdout (NaN and infinity as null)."""
    sys.stdout.write(dumps_text(obj, indent=True, lenient=True) + "\n")


def table(*columns: str, title: str | None = None) -> Table:
    """A table in the house style."""
    t = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    return t


def fmt_ms(ms: int | None) -> str:
    """Milliseconds since the epoch as a short local time."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_value(value: Any) -> str:
    """A metric or parameter for a table cell."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return str(value)


def require_positive(name: str, value: int) -> int:
    """Check a count option."""
    if value < 1:
        raise InputError(f"--{name} must be at least 1; got {value}")
    return value
