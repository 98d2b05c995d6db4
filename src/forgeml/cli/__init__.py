"""The ``forgeml`` command line (interface layer): a thin layer over the Python API.

Each noun is a module exposing a Typer ``app`` (``forgeml runs ...`` is ``_runs.app``) or plain
commands, registered in ``_app.build_app``. Errors: ``ForgeMLError`` prints one line and exits
with the error's exit code (2 for bad input); a usage error prints one line and exits 2; any
other exception prints one line and exits 1 (``FORGEML_DEBUG=1`` adds the traceback).
"""

from __future__ import annotations

import sys
import traceback

import typer

from forgeml.errors import ForgeMLError

try:  # Typer >= 0.22 vendors Click
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # pragma: no cover - older Typer depends on Click
    from click.exceptions import NoArgsIsHelpError  # type: ignore[no-redef,assignment]

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with its status."""
    from forgeml.cli._app import build_app
    from forgeml.cli._common import err_console

    app = build_app()
    args = sys.argv[1:] if argv is None else argv
    try:
        result = _run(app, args)
    except NoArgsIsHelpError as e:
        ctx = getattr(e, "ctx", None)
        typer.echo(ctx.get_help() if ctx else str(e))
        sys.exit(2)
    except typer.TyperException as e:  # usage errors (exit 2) and other command-line errors
        ctx = getattr(e, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None and e.exit_code == 2 else ""
        err_console.print(f"error: {e.format_message()}{hint}", markup=False)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except ForgeMLError as e:
        _maybe_traceback()
        err_console.print(f"error: {e.message}", markup=False)
        sys.exit(e.exit_code)
    except Exception as e:
        _maybe_traceback()
        err_console.print(f"internal error: {type(e).__name__}: {e}", markup=False)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _run(app: typer.Typer, args: list[str]) -> object:
    """Check the command against the written matrix, then run it as the principal found."""
    from forgeml.cli._app import settings_from_options
    from forgeml.cli._common import PRINCIPAL
    from forgeml.cli._gate import command_path, gate
    from forgeml.store import acting

    path, options = command_path(typer.main.get_command(app), args)
    if path is None:
        return app(args=args, prog_name="forgeml", standalone_mode=False)
    settings = settings_from_options(options)
    principal = gate(settings, path)
    token = PRINCIPAL.set(principal)
    try:
        with acting(principal.name, principal.kind, "cli"):
            return app(args=args, prog_name="forgeml", standalone_mode=False)
    finally:
        PRINCIPAL.reset(token)


def _maybe_traceback() -> None:
    from forgeml.config import Settings

    try:
        debug = Settings().debug
    except Exception:
        debug = False
    if debug:
        traceback.print_exc()
