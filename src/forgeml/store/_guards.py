"""Alias guards: which roles and named principals may move an alias of a model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from forgeml._json import dumps_text
from forgeml.errors import NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._schema import alias_guards

__all__ = ["ANY_MODEL", "AliasGuard", "GuardStore"]

#: The model name of a guard that applies to every model's alias.
ANY_MODEL = "*"


@dataclass(frozen=True, slots=True)
class AliasGuard:
    """Only ``roles`` and ``principals`` may move ``model``'s ``alias`` (``*``: any model)."""

    model: str
    alias: str
    roles: tuple[str, ...]
    principals: tuple[str, ...]
    updated_at: int
    updated_by: str | None

    def to_dict(self) -> dict[str, Any]:
        """The guard as plain values."""
        return {
            "model": self.model,
            "alias": self.alias,
            "roles": list(self.roles),
            "principals": list(self.principals),
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


def _guard(row: Any) -> AliasGuard:
    return AliasGuard(
        row.model,
        row.alias,
        tuple(orjson.loads(row.roles)),
        tuple(orjson.loads(row.principals)),
        int(row.updated_at),
        row.updated_by,
    )


class GuardStore:
    """Alias guards; every change is audited in its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def set(
        self,
        model: str,
        alias: str,
        *,
        roles: Sequence[str],
        principals: Sequence[str] = (),
        by: str | None = None,
    ) -> AliasGuard:
        """Protect ``model@alias`` (replacing its guard)."""
        g = alias_guards.c
        now = now_ms()
        values = {
            "model": model,
            "alias": alias,
            "roles": dumps_text(list(roles)),
            "principals": dumps_text(list(principals)),
            "updated_at": now,
            "updated_by": by,
        }
        with self._db.transaction() as conn:
            old = conn.execute(
                sa.select(alias_guards).where(g.model == model, g.alias == alias)
            ).first()
            stmt = self._db.insert(alias_guards)
            stmt = stmt.on_conflict_do_update(
                index_elements=["model", "alias"],
                set_={
                    c: stmt.excluded[c] for c in ("roles", "principals", "updated_at", "updated_by")
                },
            )
            conn.execute(stmt, values)
            guard = _guard(
                conn.execute(
                    sa.select(alias_guards).where(g.model == model, g.alias == alias)
                ).one()
            )
            record_change(
                self._db,
                "guard.set",
                f"model:{model}@{alias}",
                by,
                before=None if old is None else _policy(_guard(old)),
                after=_policy(guard),
            )
        return guard

    def remove(self, model: str, alias: str, *, by: str | None = None) -> None:
        """Drop the guard of ``model@alias``.

        Raises:
            NotFoundError: it has none.
        """
        g = alias_guards.c
        with self._db.transaction() as conn:
            old = conn.execute(
                sa.select(alias_guards).where(g.model == model, g.alias == alias)
            ).first()
            if old is None:
                raise NotFoundError(f"{model}@{alias} has no guard")
            conn.execute(alias_guards.delete().where(g.model == model, g.alias == alias))
            record_change(
                self._db, "guard.remove", f"model:{model}@{alias}", by, before=_policy(_guard(old))
            )

    def guards_for(self, model: str, alias: str) -> list[AliasGuard]:
        """The guards that apply to ``model@alias``: its own and the any-model one."""
        g = alias_guards.c
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(alias_guards).where(g.alias == alias, g.model.in_([model, ANY_MODEL]))
            ).all()
        return [_guard(r) for r in rows]

    def list(self) -> list[AliasGuard]:
        """Every guard."""
        g = alias_guards.c
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(sa.select(alias_guards).order_by(g.model, g.alias)).all()
        return [_guard(r) for r in rows]


def _policy(guard: AliasGuard) -> dict[str, list[str]]:
    return {"roles": list(guard.roles), "principals": list(guard.principals)}
