"""Assembles the command tree in one visible place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from forgeml.config import Settings


def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Workspace folder (default ./.forgeml; FORGEML_HOME)."),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option("--store-url", help="Metadata store URL (FORGEML_STORE_URL)."),
    ] = None,
    artifacts: Annotated[
        Path | None,
        typer.Option("--artifacts", help="Artifact store folder (FORGEML_ARTIFACTS)."),
    ] = None,
) -> None:
    """forgeml: from a table to a monitored, self-improving production model."""
    overrides: dict[str, Any] = {
        k: v
        for k, v in {"home": home, "store_url": store_url, "artifacts": artifacts}.items()
        if v is not None
    }
    ctx.obj = Settings(**overrides)


def build_app() -> typer.Typer:
    """The ``forgeml`` application with every command registered."""
    from forgeml.cli import (
        _data,
        _evaluate,
        _fairness,
        _loop,
        _models,
        _monitor,
        _monitor_served,
        _predict,
        _quickstart,
        _runs,
        _serve,
        _train,
        _workspace,
    )

    app = typer.Typer(
        name="forgeml",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    app.command("init")(_workspace.init)
    app.command("version")(_workspace.version)
    app.command("quickstart")(_quickstart.quickstart)
    app.command("train")(_train.train)
    app.add_typer(_runs.app, name="runs")
    app.add_typer(_data.app, name="data")
    app.command("evaluate")(_evaluate.evaluate)
    app.add_typer(_fairness.app, name="fairness")
    app.add_typer(_models.app, name="models")
    app.command("predict")(_predict.predict)
    app.command("serve")(_serve.serve)
    app.add_typer(_serve.routes_app, name="routes")
    app.add_typer(_loop.app, name="loop")
    _monitor_served.register(_monitor.app)
    app.add_typer(_monitor.app, name="monitor")
    return app
