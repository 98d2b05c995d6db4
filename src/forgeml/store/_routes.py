"""Serving routes: the traffic configuration of a served model.

A route says which versions of a model answer and which shadow; it is versioned by a revision
number the server polls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from forgeml._json import dumps_text as dumps_json
from forgeml.errors import InputError, NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._registry import check_model_name
from forgeml.store._schema import serving_routes

__all__ = ["RouteStore"]


class RouteStore:
    """The serving routes of models in the metadata store.

    Contract:
        * Thread safe and process safe: every method is one transaction, which joins the
          caller's open transaction (a unit of work, ``Database.transaction``) if there is one.
        * A route's revision increases by one on every change, clearing included, and never
          goes back (a cleared route that is set again continues from its last revision).
        * Returned values are fresh copies; the store never changes them afterwards.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def set_route(self, model: str, config: Mapping[str, Any], *, user: str | None = None) -> int:
        """Set the traffic route of ``model`` (replacing the current one).

        Args:
            model: the served model's name.
            config: the route, a JSON-serializable mapping; its meaning belongs to the server.
            user: who changes it.

        Returns:
            The route's new revision: 1 for a model's first route, one more on every change.

        Raises:
            InputError: the model name is invalid or the config is not a JSON-serializable
                mapping.
        """
        check_model_name(model)
        if not isinstance(config, Mapping):
            raise InputError(f"A route config must be a mapping; got {type(config).__name__}")
        try:
            text = dumps_json(dict(config))
        except TypeError as e:
            raise InputError(f"The route config of {model!r} is not JSON-serializable: {e}") from e
        stmt = self._db.insert(serving_routes).values(
            model=model, config=text, updated_at=now_ms(), updated_by=user, revision=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["model"],
            set_={
                "config": stmt.excluded.config,
                "updated_at": stmt.excluded.updated_at,
                "updated_by": stmt.excluded.updated_by,
                "revision": serving_routes.c.revision + 1,
            },
        ).returning(serving_routes.c.revision)
        with self._db.transaction() as conn:
            before = conn.execute(
                sa.select(serving_routes.c.config).where(serving_routes.c.model == model)
            ).scalar()
            revision = int(conn.execute(stmt).scalar_one())
            record_change(
                self._db,
                "route.set",
                f"route:{model}",
                user,
                before=None if before is None else {"config": orjson.loads(before)},
                after={"config": orjson.loads(text), "revision": revision},
            )
            return revision

    def clear_route(self, model: str, *, user: str | None = None) -> int:
        """Remove the route of ``model`` (the server falls back to its default).

        Args:
            model: the served model's name.
            user: who changes it.

        Returns:
            The route's new revision.

        Raises:
            NotFoundError: ``model`` has no route.
        """
        r = serving_routes.c
        with self._db.transaction() as conn:
            before = conn.execute(sa.select(r.config).where(r.model == model)).scalar()
            revision = conn.execute(
                serving_routes.update()
                .where(r.model == model, r.config.is_not(None))
                .values(config=None, updated_at=now_ms(), updated_by=user, revision=r.revision + 1)
                .returning(r.revision)
            ).scalar()
            if revision is not None:
                record_change(
                    self._db,
                    "route.clear",
                    f"route:{model}",
                    user,
                    before=None if before is None else {"config": orjson.loads(before)},
                    after={"config": None, "revision": int(revision)},
                )
        if revision is None:
            raise NotFoundError(f"Model {model!r} has no route")
        return int(revision)

    def route(self, model: str) -> tuple[dict[str, Any], int] | None:
        """The route of ``model`` and its revision, ``None`` when it has none."""
        r = serving_routes.c
        with self._db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(r.config, r.revision).where(r.model == model, r.config.is_not(None))
            ).first()
        return None if row is None else (orjson.loads(row.config), int(row.revision))

    def routes(self) -> dict[str, tuple[dict[str, Any], int]]:
        """Every model's route: model -> (config, revision)."""
        r = serving_routes.c
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(r.model, r.config, r.revision)
                .where(r.config.is_not(None))
                .order_by(r.model)
            ).all()
        return {row.model: (orjson.loads(row.config), int(row.revision)) for row in rows}
