"""Promote, status changes and traffic routes as use cases: who acted is recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from forgeml import registry, workflows
from forgeml.errors import InputError, NotFoundError
from forgeml.security import Principal, actor_name
from forgeml.store import Workspace
from forgeml.workflows import Context

from .conftest import principal, ws_admin


@pytest.fixture
def ctx(workspace: Workspace, adult_numeric: pd.DataFrame) -> Context:
    from sklearn.linear_model import LogisticRegression

    X = adult_numeric.drop(columns=["income"])
    model = LogisticRegression(max_iter=500).fit(X, adult_numeric["income"])
    for _ in range(3):
        registry.register(model, name="adult", sample=X, workspace=workspace, actor="setup")
    return Context(workspace, principal(workspace, "ana"))


def test_principal_is_validated() -> None:
    assert Principal("loop", "loop").to_dict() == {"name": "loop", "kind": "loop"}
    with pytest.raises(InputError, match="kind is one of user, token, loop, service; got 'robot'"):
        Principal("x", "robot")
    with pytest.raises(InputError, match="name is a non-empty string"):
        Principal(" ")
    with pytest.raises(InputError, match="printable"):
        Principal("a\nb")
    with pytest.raises(InputError, match="actor is a Principal or a name; got int"):
        actor_name(3, None)  # type: ignore[arg-type]


def test_context_takes_a_workspace_and_a_principal(sqlite_workspace: Workspace) -> None:
    with pytest.raises(InputError, match=r"Context\.principal is a Principal; got str"):
        Context(sqlite_workspace, "ana")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"Context\.workspace is a Workspace; got str"):
        Context("ws", Principal("ana"))  # type: ignore[arg-type]


def test_promote_and_status_record_the_principal(ctx: Context) -> None:
    event = workflows.promote(ctx, "adult", 2, alias="production", reason="better")
    assert (event.actor, event.from_version, event.to_version) == ("ana", None, 2)
    loop = Context(ctx.workspace, principal(ctx.workspace, "loop", "loop"))
    workflows.promote(loop, "adult", 3, alias="production", reason="retrained")
    workflows.change_status(loop, "adult", 1, "archived", reason="old")
    history = registry.history("adult", workspace=ctx.workspace)
    assert [(e.kind, e.actor) for e in history] == [
        ("registered", "setup"),
        ("registered", "setup"),
        ("registered", "setup"),
        ("alias", "ana"),
        ("alias", "loop"),
        ("status", "loop"),
    ]
    assert registry.get_version("adult@production", workspace=ctx.workspace).version == 3
    with pytest.raises(InputError, match="status is one of"):
        workflows.change_status(ctx, "adult", 1, "deleted")
    with pytest.raises(NotFoundError):
        workflows.promote(ctx, "nope", 1)


def test_set_and_clear_route(ctx: Context) -> None:
    workflows.promote(ctx, "adult", 1, alias="production")
    change = workflows.set_route(
        ctx,
        "adult",
        {"split": {"production": 90, "2": 10}, "shadow": {"version": "3", "fraction": 0.5}},
    )
    assert change.revision == 1
    assert change.resolved["split"] == {"1": 0.9, "2": 0.1}
    assert change.resolved["shadow"] == {"version": 3, "fraction": 0.5}
    assert change.actor == "ana"
    stored = ctx.workspace.routing.route("adult")
    assert stored == ({"split": {"production": 90, "2": 10}, "shadow": change.config["shadow"]}, 1)

    cleared = workflows.clear_route(ctx, "adult")
    assert (cleared.config, cleared.revision) == (None, 2)
    assert ctx.workspace.routing.route("adult") is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"split": {"9": 100}}, r"The route names '9', which model 'adult' lacks"),
        ({"split": {"staging": 100}}, r"names 'staging'"),
        ({"split": {"1": -1}}, r"route.split\['1'\] is a finite weight > 0; got -1"),
        ({"split": {"1": 1}, "colour": 1}, r"Unknown route field"),
        ([1, 2], r"A route is an object"),
    ],
)
def test_a_bad_route_is_refused_and_nothing_is_written(
    ctx: Context, config: object, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        workflows.set_route(ctx, "adult", config)  # type: ignore[arg-type]
    assert ctx.workspace.routing.route("adult") is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"split": {"1": float("inf")}}, r"route.split\['1'\] is a finite weight > 0; got inf"),
        ({"split": {"1": float("nan")}}, r"route.split\['1'\] is a finite weight > 0; got nan"),
        ({"split": {"1": 100, "2": 0}}, r"route.split\['2'\] is a finite weight > 0; got 0"),
        ({"split": {"1": 1e308, "2": 1e308}}, r"route.split: the weights' sum is not finite"),
        ({"split": {"1": 1, "3": 1}}, r"route.split\['3'\]: adult@3 is retired"),
        ({"split": {"1": 1}, "shadow": {"version": "3"}}, r"route.shadow.version: adult@3 is"),
        ({"split": {"1": 1}, "shadow": {"version": 2, "fraction": float("nan")}}, "fraction"),
    ],
)
def test_a_route_the_servers_cannot_serve_is_refused(
    ctx: Context, config: dict, message: str
) -> None:
    workflows.change_status(ctx, "adult", 3, "retired")
    with pytest.raises(InputError, match=message):
        workflows.set_route(ctx, "adult", config)
    assert ctx.workspace.routing.route("adult") is None


def test_routes_set_exits_2_naming_the_field(ctx: Context, tmp_path) -> None:
    import os
    import subprocess
    import sys

    workflows.change_status(ctx, "adult", 3, "retired")
    settings = ctx.workspace.settings
    root = ["--home", str(settings.home), "--artifacts", str(settings.artifacts)]
    if settings.store_url:
        root += ["--store-url", settings.store_url]
    env = os.environ.copy()
    if id(ctx.workspace) in ws_admin:  # team mode: the command presents the admin key
        env["FORGEML_API_KEY"] = ws_admin[id(ctx.workspace)]
    for split, field in [("1=inf", "route.split['1']"), ("3=1", "route.split['3']")]:
        done = subprocess.run(
            [sys.executable, "-m", "forgeml", *root, "routes", "set", "adult", "--split", split],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and field in lines[0], done.stderr
    assert ctx.workspace.routing.route("adult") is None


def test_routes_of_an_unknown_model(ctx: Context) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        workflows.set_route(ctx, "nope", {"split": {"1": 1}})
    with pytest.raises(NotFoundError, match="nope"):
        workflows.clear_route(ctx, "nope")


def test_a_promotion_and_its_route_commit_together(ctx: Context) -> None:
    workflows.promote(ctx, "adult", 1, alias="production")
    event = workflows.promote(
        ctx, "adult", 2, alias="production", reason="canary done", route={"split": {"2": 1}}
    )
    assert (event.from_version, event.to_version) == (1, 2)
    assert ctx.workspace.routing.route("adult") == ({"split": {"2": 1}}, 1)
    # A route that cannot be stored takes the promotion back with it.
    with pytest.raises(InputError, match="names '9'"):
        workflows.promote(ctx, "adult", 3, alias="production", route={"split": {"9": 1}})
    assert registry.get_version("adult@production", workspace=ctx.workspace).version == 2
    assert [e.to_version for e in registry.history("adult", workspace=ctx.workspace)][-1] == 2
    assert ctx.workspace.routing.route("adult") == ({"split": {"2": 1}}, 1)
