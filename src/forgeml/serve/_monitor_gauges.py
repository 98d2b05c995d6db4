"""The latest monitored values of the served models (stored by ``forgeml monitor watch`` and
``monitor alerts check``) as Prometheus gauges, read from the store at most every ``ttl``
seconds so that scrapes stay cheap."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from forgeml.errors import ForgeMLError

if TYPE_CHECKING:
    from forgeml.store import MonitorStore

__all__ = ["MonitorGauges"]

log = logging.getLogger("forgeml.serve")

Samples = dict[str, list[tuple[dict[str, str], float]]]


class MonitorGauges:
    """Gauge samples of the stored monitored values, cached for ``ttl`` seconds.

    Families: ``forgeml_monitor_input_drift_share{model}``,
    ``forgeml_monitor_input_drifted{model}``, ``forgeml_monitor_drift_effect_size{model,column}``,
    ``forgeml_monitor_prediction_drift{model}``, ``forgeml_monitor_performance{model,metric,kind}``
    (kind ``true`` or ``estimated``), ``forgeml_monitor_window_end_seconds{model}`` (the end of
    the window the values describe). NaN values are left out.
    """

    def __init__(
        self,
        store: MonitorStore,
        models: Callable[[], Iterable[str]],
        *,
        ttl: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._models = models
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Samples = {}
        self._read_at: float | None = None

    def __call__(self) -> Samples:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._ttl:
                self._read_at = now
                try:
                    self._cached = self._read()
                except ForgeMLError as e:  # the store is unreachable: no gauges until it is back
                    log.warning("monitored values not read: %s", e)
                    self._cached = {}
            return self._cached

    def _read(self) -> Samples:
        out: Samples = {}
        ends: dict[str, int] = {}
        for v in self._store.latest_values(sorted(set(self._models()))):
            ends[v.model] = max(ends.get(v.model, 0), v.window_end_ms)
            if math.isnan(v.value):
                continue
            model = {"model": v.model}
            if v.metric == "input_drift.share_drifted":
                out.setdefault("forgeml_monitor_input_drift_share", []).append((model, v.value))
            elif v.metric == "input_drift.drifted":
                out.setdefault("forgeml_monitor_input_drifted", []).append((model, v.value))
            elif v.metric.startswith("input_drift.column."):
                column = v.metric.removeprefix("input_drift.column.")
                out.setdefault("forgeml_monitor_drift_effect_size", []).append(
                    ({**model, "column": column}, v.value)
                )
            elif v.metric == "prediction_drift.effect_size":
                out.setdefault("forgeml_monitor_prediction_drift", []).append((model, v.value))
            elif v.metric.startswith(("true.", "estimated.")):
                kind, name = v.metric.split(".", 1)
                out.setdefault("forgeml_monitor_performance", []).append(
                    ({**model, "metric": name, "kind": kind}, v.value)
                )
        if ends:
            out["forgeml_monitor_window_end_seconds"] = [
                ({"model": m}, end / 1000.0) for m, end in sorted(ends.items())
            ]
        return out
