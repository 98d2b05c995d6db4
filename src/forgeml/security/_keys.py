"""API keys: made here, stored hashed, shown once, checked in constant time.

A key reads ``fml_<id>_<secret>``: ``id`` (12 hex characters) is public and finds the stored
row; ``secret`` is 32 random bytes (``secrets.token_urlsafe``). The store keeps only the
sha256 of the secret (a 256-bit random secret needs no slow hash: nothing to guess from its
digest), compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from forgeml.errors import AuthenticationError, InputError
from forgeml.security._matrix import ROLES
from forgeml.security._principal import Principal
from forgeml.store import KeyRecord, Workspace, now_ms

__all__ = [
    "INVALID_KEY",
    "KEY_PREFIX",
    "CreatedKey",
    "authenticate",
    "check_token",
    "create_key",
    "hash_secret",
    "parse_expiry",
    "principal_for",
    "revoke_key",
]

KEY_PREFIX: Final = "fml_"
_KEY = re.compile(r"^fml_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
_DURATION = re.compile(r"^(\d+)\s*([dhm])$")
#: What every refused key is told, whatever the reason (unknown, wrong secret, revoked,
#: expired): the answer says nothing about which keys exist.
INVALID_KEY: Final = "The API key is missing or not valid"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: its stored record and the key itself, shown this once."""

    record: KeyRecord
    token: str


def hash_secret(secret: str) -> str:
    """The stored digest of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_expiry(text: str | None, *, now: int | None = None) -> int | None:
    """``30d``, ``12h``, ``45m`` or an ISO date/time as ms since the epoch (``None``: never).

    Raises:
        InputError: neither a duration nor a date, or a time in the past.
    """
    if text is None or not text.strip():
        return None
    now = now_ms() if now is None else now
    found = _DURATION.match(text.strip())
    if found:
        amount, unit = int(found.group(1)), found.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
            unit, timedelta(minutes=amount)
        )
        at = now + int(delta.total_seconds() * 1000)
    else:
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InputError(
                f"--expires is a duration (30d, 12h, 45m) or an ISO date; got {text!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        at = int(when.timestamp() * 1000)
    if at <= now:
        raise InputError(f"--expires is in the past: {text!r}")
    return at


def create_key(
    workspace: Workspace,
    *,
    role: str,
    name: str | None = None,
    expires_at: int | None = None,
    actor: Principal | None = None,
) -> CreatedKey:
    """Create an API key with ``role``; its secret is returned here and never again.

    The first key of a workspace must be an admin key (it turns access control on and is the
    one that can make the others); it may be created without presenting a key.

    Raises:
        InputError: an unknown role or an invalid name, or a first key that is not admin.
        ConflictError: a key has this name.
    """
    if role not in ROLES:
        raise InputError(f"--role is one of {', '.join(ROLES)}; got {role!r}")
    key_id = secrets.token_hex(6)
    name = name or f"{role}-{key_id[:6]}"
    if not _NAME.match(name):
        raise InputError(
            f"--name is 1-100 letters, digits or _.@- (starting with a letter or digit); "
            f"got {name!r}"
        )
    first = actor is None or actor.key_id is None
    if first and role != "admin":
        raise InputError(
            "The first key of a workspace is an admin key (--role admin): it turns access "
            "control on and creates the others"
        )
    secret = secrets.token_urlsafe(32)
    record = workspace.keys.add(
        key_id,
        name=name,
        role=role,
        secret_sha256=hash_secret(secret),
        expires_at=expires_at,
        created_by=actor.name if actor is not None else None,
        first_only=first,
    )
    return CreatedKey(record, f"{KEY_PREFIX}{key_id}_{secret}")


def revoke_key(
    workspace: Workspace, name_or_id: str, *, actor: Principal | None = None
) -> KeyRecord:
    """Revoke a key by name or id; it stops working at once.

    Raises:
        NotFoundError: no such key.
    """
    return workspace.keys.revoke(name_or_id, by=actor.name if actor is not None else None)


def principal_for(record: KeyRecord) -> Principal:
    """The principal a key acts as: its name, kind ``token``, its role and id."""
    return Principal(record.name, "token", role=record.role, key_id=record.key_id)


def check_token(token: str, lookup: Callable[[str], KeyRecord | None]) -> KeyRecord:
    """The active key record ``token`` presents, looked up with ``lookup(key_id)``.

    Raises:
        AuthenticationError: malformed, unknown, wrong secret, revoked or expired (one
            message for all).
    """
    found = _KEY.match(token.strip()) if isinstance(token, str) else None
    if found is None:
        raise AuthenticationError(INVALID_KEY)
    key_id, secret = found.groups()
    record = lookup(key_id)
    expected = record.secret_sha256 if record is not None else "0" * 64
    matches = hmac.compare_digest(hash_secret(secret), expected)
    if record is None or not matches or record.state(now_ms()) != "active":
        raise AuthenticationError(INVALID_KEY)
    return record


def authenticate(workspace: Workspace, token: str) -> Principal:
    """The principal an API key acts as.

    Raises:
        AuthenticationError: the key is malformed, unknown, revoked or expired.
    """
    return principal_for(check_token(token, workspace.keys.get))
