"""``forgeml init`` and ``forgeml version``."""

from __future__ import annotations

from typing import Annotated

import typer

from forgeml.cli._common import console, open_workspace, print_json


def init(
    ctx: typer.Context,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create (or upgrade) the workspace: its metadata store and artifact store."""
    workspace = open_workspace(ctx)
    info = {
        "home": str(workspace.settings.home.resolve()),
        "store": workspace.db._safe_url(),
        "schema_revision": workspace.db.current_revision(),
        "artifacts": str(workspace.settings.resolved_artifacts),
    }
    if json:
        print_json(info)
        return
    console.print(f"Workspace ready at {info['home']}")
    console.print(f"  metadata store  {info['store']} (schema {info['schema_revision']})")
    console.print(f"  artifact store  {info['artifacts']}")


def version(
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print forgeml's version and the versions of the packages it runs on."""
    from forgeml._version import __version__
    from forgeml.tracking._environment import environment

    env = environment()
    if json:
        print_json({"forgeml": __version__, **env})
        return
    console.print(f"forgeml {__version__} (Python {env['python']}, {env['platform']})")
    packages: dict[str, str] = env["packages"]  # type: ignore[assignment]
    for name, ver in sorted(packages.items()):
        if name != "forgeml":
            console.print(f"  {name} {ver}")
