"""API keys in the metadata store: a public id, a name, a role and the digest of the secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from forgeml.errors import ConflictError, NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._schema import api_keys

__all__ = ["KeyRecord", "KeyStore"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored API key (never its secret: only ``secret_sha256``, its digest)."""

    key_id: str
    name: str
    role: str
    secret_sha256: str
    created_at: int
    created_by: str | None
    expires_at: int | None
    revoked_at: int | None
    revoked_by: str | None

    def state(self, now: int) -> str:
        """``active``, ``revoked`` or ``expired`` at time ``now`` (ms)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """The key as plain values, without the digest of its secret."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "state": self.state(now_ms()),
        }


def _key(row: Any) -> KeyRecord:
    return KeyRecord(
        key_id=row.key_id,
        name=row.name,
        role=row.role,
        secret_sha256=row.secret_sha256,
        created_at=int(row.created_at),
        created_by=row.created_by,
        expires_at=None if row.expires_at is None else int(row.expires_at),
        revoked_at=None if row.revoked_at is None else int(row.revoked_at),
        revoked_by=row.revoked_by,
    )


class KeyStore:
    """API keys. Every change is audited in its own transaction (``record_change``).

    The store keeps what it is given; generating keys and hashing secrets belong to
    ``forgeml.security``.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        key_id: str,
        *,
        name: str,
        role: str,
        secret_sha256: str,
        expires_at: int | None = None,
        created_by: str | None = None,
        first_only: bool = False,
    ) -> KeyRecord:
        """Store a new key.

        Args:
            first_only: refuse unless the store has no key yet (bootstrapping the first
                admin key without one), checked in the same transaction.

        Raises:
            ConflictError: a key with this name exists, or ``first_only`` and a key exists.
        """
        now = now_ms()
        with self._db.transaction() as conn:
            if first_only and conn.execute(sa.select(api_keys.c.key_id).limit(1)).first():
                raise ConflictError(
                    "Access control is on: creating a key needs an admin key "
                    "(FORGEML_API_KEY or --api-key)"
                )
            if conn.execute(sa.select(api_keys.c.key_id).where(api_keys.c.name == name)).first():
                raise ConflictError(f"A key named {name!r} exists; choose another name")
            conn.execute(
                api_keys.insert(),
                {
                    "key_id": key_id,
                    "name": name,
                    "role": role,
                    "secret_sha256": secret_sha256,
                    "created_at": now,
                    "created_by": created_by,
                    "expires_at": expires_at,
                },
            )
            record = self._get(conn, key_id)
            record_change(
                self._db,
                "key.create",
                f"key:{name}",
                created_by,
                after={"key_id": key_id, "role": role, "expires_at": expires_at},
            )
        return record

    def get(self, key_id: str) -> KeyRecord | None:
        """The key with this id, ``None`` when there is none."""
        with self._db.transaction(write=False) as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        return None if row is None else _key(row)

    def _get(self, conn: Any, key_id: str) -> KeyRecord:
        return _key(conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).one())

    def find(self, name_or_id: str) -> KeyRecord:
        """The key with this name or id.

        Raises:
            NotFoundError: no such key.
        """
        k = api_keys.c
        with self._db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(api_keys).where(sa.or_(k.name == name_or_id, k.key_id == name_or_id))
            ).first()
        if row is None:
            raise NotFoundError(f"No key named {name_or_id!r}")
        return _key(row)

    def list(self) -> list[KeyRecord]:
        """Every key, oldest first (revoked and expired ones too)."""
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_key(r) for r in rows]

    def any(self) -> bool:
        """Whether any key was ever created (access control is then on for good)."""
        with self._db.transaction(write=False) as conn:
            return conn.execute(sa.select(api_keys.c.key_id).limit(1)).first() is not None

    def revoke(self, name_or_id: str, *, by: str | None = None) -> KeyRecord:
        """Revoke a key (it keeps its row; revoking twice changes nothing).

        Raises:
            NotFoundError: no such key.
        """
        key = self.find(name_or_id)
        if key.revoked_at is not None:
            return key
        now = now_ms()
        k = api_keys.c
        with self._db.transaction() as conn:
            done = conn.execute(
                api_keys.update()
                .where(k.key_id == key.key_id, k.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=by)
            ).rowcount
            if done:
                record_change(
                    self._db,
                    "key.revoke",
                    f"key:{key.name}",
                    by,
                    before={"state": "active", "role": key.role},
                    after={"state": "revoked"},
                )
            return self._get(conn, key.key_id)
