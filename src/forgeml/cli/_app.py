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
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key when access control is on (prefer FORGEML_API_KEY or "
            "--api-key-file: arguments are visible to other local users).",
        ),
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option("--api-key-file", help="A file holding the API key (FORGEML_API_KEY_FILE)."),
    ] = None,
) -> None:
    """forgeml: from a table to a monitored, self-improving production model."""
    ctx.obj = settings_from_options(
        {
            "home": home,
            "store_url": store_url,
            "artifacts": artifacts,
            "api_key": api_key,
            "api_key_file": api_key_file,
        }
    )


def settings_from_options(options: dict[str, Any]) -> Settings:
    """The settings of an invocation: the environment, overridden by the root options."""
    overrides = {k: v for k, v in options.items() if v is not None}
    if "api_key_file" in overrides and "api_key" not in overrides:
        overrides["api_key"] = None  # the file named on the command line wins over the env
    return Settings(**overrides)


def build_app() -> typer.Typer:
    """The ``forgeml`` application with every command registered."""
    from forgeml.cli import (
        _data,
        _evaluate,
        _fairness,
        _feedback,
        _gc,
        _loop,
        _models,
        _monitor,
        _monitor_served,
        _predict,
        _quickstart,
        _runs,
        _security,
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
    app.command("gc")(_gc.gc)
    app.command("quickstart")(_quickstart.quickstart)
    app.command("train")(_train.train)
    app.add_typer(_runs.app, name="runs")
    app.add_typer(_data.app, name="data")
    app.command("evaluate")(_evaluate.evaluate)
    app.add_typer(_fairness.app, name="fairness")
    app.add_typer(_feedback.app, name="feedback")
    app.add_typer(_models.app, name="models")
    app.command("predict")(_predict.predict)
    app.command("serve")(_serve.serve)
    app.add_typer(_serve.routes_app, name="routes")
    app.add_typer(_loop.app, name="loop")
    _monitor_served.register(_monitor.app)
    app.add_typer(_monitor.app, name="monitor")
    app.add_typer(_security.keys_app, name="keys")
    app.add_typer(_security.aliases_app, name="aliases")
    app.add_typer(_security.audit_app, name="audit")
    app.add_typer(_security.artifacts_app, name="artifacts")
    return app
