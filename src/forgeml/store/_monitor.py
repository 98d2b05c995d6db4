"""Monitoring records: alerts raised on served models, their latest monitored values, and the
state a long-running monitor resumes from."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from forgeml._json import dumps_text as dumps_json
from forgeml.errors import InputError, NotFoundError
from forgeml.store._audit import record_change
from forgeml.store._db import Database, now_ms
from forgeml.store._schema import monitor_alerts, monitor_results, monitor_state

__all__ = ["AlertRecord", "MonitorStore", "MonitoredValue", "NewAlert"]

_SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to record: a rule that held on one window of a served model's log.

    Attributes:
        rule: the rule's name.
        model: the model's name.
        ref: the monitored reference (``NAME@ALIAS``).
        metric: what was compared (``input_drift.share_drifted``, ``true.accuracy``...).
        op: the comparison (``>``, ``>=``, ``<``, ``<=``).
        threshold: the rule's threshold.
        value: the value that broke it (of the last window when a rule spans several).
        severity: ``info``, ``warning`` or ``critical``.
        window_start_ms: the window's start (first window when a rule spans several).
        window_end_ms: the window's end (excluded).
        message: one readable line.
    """

    rule: str
    model: str
    ref: str
    metric: str
    op: str
    threshold: float
    value: float
    severity: str
    window_start_ms: int
    window_end_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A recorded alert (``NewAlert``'s fields plus its id, time and webhook delivery)."""

    alert_id: int
    rule: str
    model: str
    ref: str
    metric: str
    op: str
    threshold: float
    value: float
    severity: str
    window_start_ms: int
    window_end_ms: int
    message: str
    created_at: int
    delivery: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "model": self.model,
            "ref": self.ref,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "severity": self.severity,
            "window_start_ms": self.window_start_ms,
            "window_end_ms": self.window_end_ms,
            "message": self.message,
            "created_at": self.created_at,
            "delivery": self.delivery,
        }


@dataclass(frozen=True, slots=True)
class MonitoredValue:
    """The latest value of one monitored metric of one model, and the window it describes."""

    model: str
    metric: str
    value: float
    window_start_ms: int
    window_end_ms: int
    computed_at: int


class MonitorStore:
    """Alerts, latest monitored values and monitor state in the metadata store.

    Contract:
        * Thread safe and process safe: every method is one transaction, which joins the
          caller's open transaction if there is one.
        * An alert is recorded once per rule, model and window: recording it again returns
          ``None`` and changes nothing, so re-evaluating windows (a restarted watcher) never
          duplicates alerts or their webhook calls.
        * Returned values are fresh copies.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- alerts -------------------------------------------------------------------------------

    def record_alert(self, alert: NewAlert, *, delivery: str = "pending") -> AlertRecord | None:
        """Record an alert unless the same rule already fired on the same window.

        Returns:
            The recorded alert, or ``None`` when it was recorded before.

        Raises:
            InputError: an unknown severity or a non-finite threshold.
        """
        if alert.severity not in _SEVERITIES:
            raise InputError(
                f"An alert's severity is one of {', '.join(_SEVERITIES)}; got {alert.severity!r}"
            )
        if not math.isfinite(alert.threshold):
            raise InputError(f"An alert's threshold must be finite; got {alert.threshold}")
        values: dict[str, Any] = {
            "rule": alert.rule,
            "model": alert.model,
            "ref": alert.ref,
            "metric": alert.metric,
            "op": alert.op,
            "threshold": float(alert.threshold),
            "value": float(alert.value),
            "severity": alert.severity,
            "window_start_ms": int(alert.window_start_ms),
            "window_end_ms": int(alert.window_end_ms),
            "message": alert.message,
            "created_at": now_ms(),
            "delivery": delivery[:256],
        }
        stmt = (
            self._db.insert(monitor_alerts)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=["rule", "model", "window_start_ms", "window_end_ms"]
            )
            .returning(monitor_alerts.c.alert_id)
        )
        with self._db.transaction() as conn:
            alert_id = conn.execute(stmt).scalar()
            if alert_id is not None:
                record_change(
                    self._db,
                    "alert.record",
                    f"model:{alert.ref}",
                    "monitor",
                    after={
                        "alert_id": int(alert_id),
                        "rule": alert.rule,
                        "metric": alert.metric,
                        "value": float(alert.value) if math.isfinite(alert.value) else None,
                        "severity": alert.severity,
                        "window_start_ms": int(alert.window_start_ms),
                        "window_end_ms": int(alert.window_end_ms),
                    },
                )
        if alert_id is None:
            return None
        return AlertRecord(alert_id=int(alert_id), **values)

    def set_delivery(self, alert_id: int, delivery: str) -> None:
        """Record how the alert's webhook call went (``sent``, ``failed: ...``, ``none``).

        Raises:
            NotFoundError: no such alert.
        """
        a = monitor_alerts.c
        with self._db.transaction() as conn:
            done = conn.execute(
                monitor_alerts.update()
                .where(a.alert_id == alert_id)
                .values(delivery=delivery[:256])
            ).rowcount
        if not done:
            raise NotFoundError(f"No alert {alert_id}")

    def alerts(
        self,
        *,
        model: str | None = None,
        since_ms: int | None = None,
        limit: int | None = 100,
    ) -> list[AlertRecord]:
        """Recorded alerts, newest first.

        Args:
            model: only this model's.
            since_ms: only alerts recorded at or after this time.
            limit: at most this many (``None``: all).
        """
        a = monitor_alerts.c
        query = sa.select(monitor_alerts).order_by(a.created_at.desc(), a.alert_id.desc())
        if model is not None:
            query = query.where(a.model == model)
        if since_ms is not None:
            query = query.where(a.created_at >= since_ms)
        if limit is not None:
            if limit < 0:
                raise InputError(f"The `limit` parameter must be >= 0; got {limit}")
            query = query.limit(limit)
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return [AlertRecord(**row._asdict()) for row in rows]

    # -- latest values ------------------------------------------------------------------------

    def put_values(
        self,
        model: str,
        values: Mapping[str, float],
        *,
        window_start_ms: int,
        window_end_ms: int,
    ) -> None:
        """Replace the latest values of ``model``'s metrics named in ``values``."""
        if not values:
            return
        now = now_ms()
        rows = []
        for metric, value in values.items():
            number = float(value)
            nan = math.isnan(number)
            rows.append(
                {
                    "model": model,
                    "metric": metric,
                    "value": 0.0 if nan else number,
                    "is_nan": nan,
                    "window_start_ms": int(window_start_ms),
                    "window_end_ms": int(window_end_ms),
                    "computed_at": now,
                }
            )
        stmt = self._db.insert(monitor_results)
        stmt = stmt.on_conflict_do_update(
            index_elements=["model", "metric"],
            set_={
                c: stmt.excluded[c]
                for c in ("value", "is_nan", "window_start_ms", "window_end_ms", "computed_at")
            },
        )
        with self._db.transaction() as conn:
            conn.execute(stmt, rows)

    def latest_values(self, models: Sequence[str] | None = None) -> list[MonitoredValue]:
        """The latest monitored values, of ``models`` only when given, by model and metric."""
        r = monitor_results.c
        query = sa.select(monitor_results).order_by(r.model, r.metric)
        if models is not None:
            query = query.where(r.model.in_(list(models)))
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return [
            MonitoredValue(
                model=row.model,
                metric=row.metric,
                value=float("nan") if row.is_nan else float(row.value),
                window_start_ms=int(row.window_start_ms),
                window_end_ms=int(row.window_end_ms),
                computed_at=int(row.computed_at),
            )
            for row in rows
        ]

    # -- state --------------------------------------------------------------------------------

    def set_state(self, key: str, value: Mapping[str, Any]) -> None:
        """Store a JSON document under ``key`` (replacing it)."""
        if not isinstance(key, str) or not 0 < len(key) <= 256:
            raise InputError("A monitor state key is 1 to 256 characters")
        try:
            text = dumps_json(dict(value))
        except TypeError as e:
            raise InputError(f"The monitor state {key!r} is not JSON-serializable: {e}") from e
        stmt = self._db.insert(monitor_state).values(key=key, value=text, updated_at=now_ms())
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        with self._db.transaction() as conn:
            conn.execute(stmt)

    def get_state(self, key: str) -> dict[str, Any] | None:
        """The document stored under ``key``, ``None`` when there is none."""
        s = monitor_state.c
        with self._db.transaction(write=False) as conn:
            text = conn.execute(sa.select(s.value).where(s.key == key)).scalar()
        return None if text is None else dict(orjson.loads(text))
