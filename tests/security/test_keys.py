"""API keys: the first is admin, shown once, stored hashed, revoked or expired keys refused."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from forgeml import workflows
from forgeml.errors import (
    AuthenticationError,
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from forgeml.security import (
    INVALID_KEY,
    Principal,
    access_control_on,
    authenticate,
    parse_expiry,
)
from forgeml.store import Workspace, now_ms

from .conftest import Keys, make_keys


def test_the_first_key_is_an_admin_key_and_turns_access_control_on(
    sqlite_workspace: Workspace,
) -> None:
    ws = sqlite_workspace
    local = workflows.Context(ws, Principal("ana"))
    assert not access_control_on(ws)
    with pytest.raises(InputError, match="first key of a workspace is an admin key"):
        workflows.create_key(local, role="viewer")
    assert not access_control_on(ws)
    created = workflows.create_key(local, role="admin", name="root")
    assert access_control_on(ws)
    # without a key, nothing more: not even a second "first" key
    with pytest.raises(AuthenticationError, match="present an API key"):
        workflows.create_key(local, role="admin", name="again")
    with pytest.raises(AuthenticationError, match="present an API key"):
        workflows.list_keys(local)
    admin = workflows.Context(ws, authenticate(ws, created.token))
    assert [k.name for k in workflows.list_keys(admin)] == ["root"]


def test_a_key_is_shown_once_and_stored_only_as_a_digest(keys: Keys) -> None:
    ws = keys.workspace
    with ws.db.transaction(write=False) as conn:
        stored = "\n".join(
            str(v) for table in ("api_keys", "audit_log") for row in conn.execute(
                sa.text(f"SELECT * FROM {table}")
            ) for v in row
        )  # fmt: skip
    for token in keys.tokens.values():
        secret = token.split("_", 2)[2]  # fml_<key id>_<secret>; the secret may hold "_"
        assert secret not in stored and token not in stored
    listed = workflows.list_keys(keys.context("admin"))
    assert all("secret" not in str(k.to_dict()) for k in listed)
    assert {k.role for k in listed} == {"viewer", "scientist", "deployer", "admin"}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "fml_",
        "nonsense",
        "fml_000000000000_" + "A" * 43,  # unknown id
    ],
)
def test_a_bad_key_is_refused_with_one_message(keys: Keys, token: str) -> None:
    with pytest.raises(AuthenticationError) as e:
        authenticate(keys.workspace, token)
    assert e.value.message == INVALID_KEY


def test_a_wrong_secret_revoked_or_expired_key_is_refused_alike(keys: Keys) -> None:
    ws = keys.workspace
    admin = keys.context("admin")
    viewer = keys.tokens["viewer"]
    key_id = viewer.split("_")[1]
    wrong = f"fml_{key_id}_" + ("B" * 43)
    for token in (wrong,):
        with pytest.raises(AuthenticationError, match=INVALID_KEY):
            authenticate(ws, token)
    ctx = keys.context("viewer")
    workflows.revoke_key(admin, "viewer-key")
    with pytest.raises(AuthenticationError, match=INVALID_KEY):
        authenticate(ws, viewer)
    with pytest.raises(AuthenticationError, match=INVALID_KEY):  # a principal made before
        workflows.run_artifacts(ctx, "0" * 32)
    expires = now_ms() + 1_000
    soon = workflows.create_key(admin, role="viewer", name="short", expires_at=expires)
    if now_ms() < expires - 100:  # still valid (a very busy machine may take longer)
        authenticate(ws, soon.token)
    time.sleep(max(0.0, (expires - now_ms()) / 1000 + 0.05))
    with pytest.raises(AuthenticationError, match=INVALID_KEY):
        authenticate(ws, soon.token)
    states = {k.name: k.to_dict()["state"] for k in workflows.list_keys(admin)}
    assert states["viewer-key"] == "revoked" and states["short"] == "expired"


def test_only_an_admin_manages_keys(keys: Keys) -> None:
    for role in ("viewer", "scientist", "deployer"):
        with pytest.raises(PermissionDeniedError, match=f"role {role}"):
            workflows.create_key(keys.context(role), role="admin", name=f"x-{role}")
        with pytest.raises(PermissionDeniedError):
            workflows.revoke_key(keys.context(role), "root")
    with pytest.raises(ConflictError, match="named 'root' exists"):
        workflows.create_key(keys.context("admin"), role="viewer", name="root")
    with pytest.raises(InputError, match="--role is one of viewer, scientist, deployer, admin"):
        workflows.create_key(keys.context("admin"), role="owner")


def test_expiry_takes_durations_and_dates() -> None:
    now = 1_000_000_000_000
    assert parse_expiry("30d", now=now) == now + 30 * 86_400_000
    assert parse_expiry("12h", now=now) == now + 12 * 3_600_000
    assert parse_expiry(None) is None
    assert parse_expiry("2099-01-01") == 4_070_908_800_000
    with pytest.raises(InputError, match="--expires is a duration"):
        parse_expiry("soon")
    with pytest.raises(InputError, match="in the past"):
        parse_expiry("2001-01-01")


def test_team_mode_requires_keys_even_before_the_first(workspace: Workspace) -> None:
    """A PostgreSQL store (team mode) checks keys from the start; the embedded SQLite default
    checks nothing until its first key exists."""
    local = workflows.Context(workspace, Principal("ana"))
    if workspace.db.dialect == "postgresql":
        with pytest.raises(AuthenticationError, match="present an API key"):
            workflows.clear_route(local, "adult")
    else:
        with pytest.raises(NotFoundError, match="adult"):  # checked nothing, went on
            workflows.clear_route(local, "adult")
    make_keys(workspace)
    with pytest.raises(AuthenticationError, match="present an API key"):
        workflows.clear_route(local, "adult")
