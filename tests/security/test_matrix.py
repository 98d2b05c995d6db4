"""The full authorization matrix, generated from the written one: every use case of the Python
API and every CLI command, for every role (and for no key), on SQLite and PostgreSQL."""

from __future__ import annotations

import inspect

import pytest
import typer
from pydantic import SecretStr

from forgeml import workflows
from forgeml.cli._app import build_app
from forgeml.cli._gate import command_path, gate
from forgeml.errors import AuthenticationError, PermissionDeniedError
from forgeml.security import ACTIONS, CLI_COMMANDS, PYTHON_API, ROLES, allowed, render_matrix

from .conftest import Keys

_PROBE = "_matrix_probe"


def _leaf_commands(command: object, path: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    for name, sub in getattr(command, "commands", {}).items():
        if hasattr(sub, "commands"):
            found += _leaf_commands(sub, (*path, name))
        else:
            found.append(" ".join((*path, name)))
    return found


def test_the_written_matrix_covers_every_command_and_use_case() -> None:
    commands = set(_leaf_commands(typer.main.get_command(build_app())))
    assert commands == set(CLI_COMMANDS)
    use_cases = {
        name
        for name in workflows.__all__
        if inspect.isfunction(getattr(workflows, name))
        and "ctx" in inspect.signature(getattr(workflows, name)).parameters
    }
    assert use_cases == set(PYTHON_API)
    assert set(CLI_COMMANDS.values()) | set(PYTHON_API.values()) <= set(ACTIONS)
    for name, action in PYTHON_API.items():
        declared = getattr(getattr(workflows, name), "action", action)
        assert declared == action, name
    text = render_matrix()
    assert "| `alias.move` | move or remove an alias (promote) | - | - | yes | yes |" in text


@pytest.mark.parametrize("role", [*ROLES, None])
def test_every_use_case_checks_its_action(keys: Keys, role: str | None) -> None:
    """A use case refuses a role its action lacks before doing anything; for an allowed role it
    goes on (here into a keyword it does not take, or arguments that name nothing, so nothing
    is done)."""
    from forgeml.security import Principal

    ctx = (
        keys.context(role)
        if role is not None
        else workflows.Context(keys.workspace, Principal("nobody"))
    )
    for name, action in PYTHON_API.items():
        fn = getattr(workflows, name)
        if name == "create_key":
            continue  # checked below: it takes no extra keyword
        args = ["adult", "production"][: _positional(fn)]
        if role is None:
            with pytest.raises(AuthenticationError):
                fn(ctx, *args, **{_PROBE: True})
        elif allowed(role, action):
            with pytest.raises(Exception) as went_on:
                fn(ctx, *args, **{_PROBE: True})
            assert not isinstance(went_on.value, AuthenticationError | PermissionDeniedError)
        else:
            with pytest.raises(PermissionDeniedError, match=f"role {role}"):
                fn(ctx, *args, **{_PROBE: True})
    if role is not None and allowed(role, "keys.manage"):
        workflows.create_key(ctx, role="viewer", name="made-by-admin")
    elif role is not None:
        with pytest.raises(PermissionDeniedError):
            workflows.create_key(ctx, role="viewer")
    else:
        with pytest.raises(AuthenticationError):
            workflows.create_key(ctx, role="viewer")


def _positional(fn: object) -> int:
    params = list(inspect.signature(fn).parameters.values())[1:]  # type: ignore[arg-type]
    return sum(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params)


@pytest.mark.parametrize("role", [*ROLES, None])
def test_every_cli_command_checks_its_action(keys: Keys, role: str | None) -> None:
    settings = keys.workspace.settings
    if role is not None:
        settings = settings.model_copy(update={"api_key": SecretStr(keys.tokens[role])})
    for path, action in CLI_COMMANDS.items():
        if action == "public" or (role is not None and allowed(role, action)):
            principal = gate(settings, path)
            assert principal.role == role or action == "public", path
        elif role is None:
            with pytest.raises(AuthenticationError):
                gate(settings, path)
        else:
            with pytest.raises(PermissionDeniedError, match=f"role {role}"):
                gate(settings, path)


def test_the_command_line_finds_the_command_it_checks() -> None:
    cli = typer.main.get_command(build_app())
    for path in CLI_COMMANDS:
        found, _ = command_path(cli, ["--home", "/tmp/x", *path.split(), "ARG", "--json"])
        assert found == path
    assert command_path(cli, ["models", "promote", "--help"])[0] is None
    assert command_path(cli, ["models"])[0] is None
    assert command_path(cli, ["nope", "x"])[0] is None
    _, options = command_path(cli, ["--api-key-file", "/k", "runs", "list"])
    assert str(options["api_key_file"]) == "/k"


def test_the_documented_matrix_is_the_written_one() -> None:
    from pathlib import Path

    page = Path(__file__).parents[2] / "docs" / "security-matrix.md"
    assert page.read_text(encoding="utf-8").endswith(render_matrix()), (
        "docs/security-matrix.md is stale: regenerate it from `forgeml keys roles`"
    )
