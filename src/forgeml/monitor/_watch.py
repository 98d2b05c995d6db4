"""Checking alert rules: once (on demand) or in a loop (``forgeml monitor watch``).

One check, per model the rules watch: compute the served report over the windows that can
still change an alert, evaluate the rules on its closed windows, record each firing once per
rule and window span (so checking again, or a watcher restarted after a crash, adds nothing
and calls no webhook twice), send the new alerts to their webhook, and store the latest values
(drift, true and estimated performance...) that the server exposes as Prometheus gauges.

Where a watcher resumes is kept in the store (``monitor_state``): time windows are read from
the first window a rule may still need; count windows are always cut from the watch's first
anchor, so they stay aligned across restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forgeml.errors import ForgeMLError
from forgeml.monitor._alerts import RuleSet, evaluate_rules, record_and_send
from forgeml.monitor._served import ServedReport, served_report
from forgeml.monitor._windows import WindowSpec, parse_window

if TYPE_CHECKING:
    from forgeml.store import AlertRecord, Workspace

__all__ = ["CheckResult", "check_rules", "latest_values", "watch"]

log = logging.getLogger("forgeml.monitor")

_KEPT_PREFIXES = ("true.", "estimated.", "input_drift.", "prediction_drift.")
_KEPT = ("error_rate", "latency_p50_ms", "latency_p99_ms")


@dataclass(frozen=True)
class CheckResult:
    """What one check found.

    Attributes:
        alerts: alerts recorded by this check (not those recorded before).
        firing: how many (rule, window span) held, new or already recorded.
        notes: windows skipped (empty, open) and metrics not available, in words.
        reports: model reference -> its report.
        errors: model reference -> why it could not be checked (a watcher keeps going).
    """

    alerts: tuple[AlertRecord, ...] = ()
    firing: int = 0
    notes: tuple[str, ...] = ()
    reports: Mapping[str, ServedReport] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "alerts": [a.to_dict() for a in self.alerts],
            "firing": self.firing,
            "notes": list(self.notes),
            "errors": dict(self.errors),
            "windows": {ref: len(r.windows) for ref, r in self.reports.items()},
        }


def latest_values(report: ServedReport) -> tuple[dict[str, float], int, int] | None:
    """Each metric's latest available value over the report's non-empty windows, with the
    span of the newest such window (``None`` when every window is empty)."""
    values: dict[str, float] = {}
    span = None
    for w in report.windows:
        if w.empty:
            continue
        for name, value in w.values().items():
            if name.startswith(_KEPT_PREFIXES) or name in _KEPT:
                values[name] = value
        span = (w.start_ms, w.end_ms)
    if span is None:
        return None
    return values, span[0], span[1]


def _state_key(ref: str, spec: WindowSpec) -> str:
    return f"watch:{ref}:{spec.kind}:{spec.size}"


def check_rules(
    rules: RuleSet,
    *,
    workspace: Workspace,
    window: str | int | WindowSpec = "1h",
    n_bootstrap: int = 200,
    seed: int = 0,
    include_open: bool = False,
    resume: bool = True,
    now_ms: int | None = None,
    report_options: Mapping[str, Any] | None = None,
) -> CheckResult:
    """Evaluate ``rules`` once on the logs of the models they watch.

    Args:
        rules: the validated rules.
        workspace: where the log, the registry and the alerts are.
        window: how each log is cut.
        n_bootstrap: replicates of the intervals (not used by the rules themselves).
        seed: seed of the bootstraps and drift detectors.
        include_open: also evaluate windows not closed yet.
        resume: read only the windows a rule may still need (from the stored state) and
            store where the next check starts.
        now_ms: the current time (which time windows are closed).
        report_options: more keywords for ``served_report``.

    Returns:
        What was found; models that could not be checked are in ``errors``.
    """
    spec = parse_window(window)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    store = workspace.monitor
    alerts: list[AlertRecord] = []
    notes: list[str] = []
    reports: dict[str, ServedReport] = {}
    errors: dict[str, str] = {}
    firing = 0
    for ref in rules.models():
        mine = [r for r in rules.rules if r.model == ref]
        key = _state_key(ref, spec)
        state = (store.get_state(key) if resume else None) or {}
        since = state.get("since_ms")
        try:
            report = served_report(
                ref,
                window=spec,
                since_ms=since,
                n_bootstrap=n_bootstrap,
                seed=seed,
                workspace=workspace,
                now_ms=now,
                **dict(report_options or {}),
            )
        except ForgeMLError as e:
            errors[ref] = str(e)
            continue
        reports[ref] = report
        found, more = evaluate_rules(mine, report, include_open=include_open)
        firing += len(found)
        notes.extend(more)
        alerts.extend(record_and_send(store, rules, found, report.model, ref))
        latest = latest_values(report)
        if latest is not None:
            values, start, end = latest
            store.put_values(report.model, values, window_start_ms=start, window_end_ms=end)
        if resume:
            store.set_state(key, _next_state(report, spec, mine, state))
    return CheckResult(
        alerts=tuple(alerts), firing=firing, notes=tuple(notes), reports=reports, errors=errors
    )


def _next_state(
    report: ServedReport, spec: WindowSpec, rules: list[Any], state: Mapping[str, Any]
) -> dict[str, Any]:
    """Where the next check of this model starts reading."""
    windows = report.windows
    if spec.kind == "count":
        # count windows are cut from one anchor, always
        anchor = state.get("since_ms")
        if anchor is None and windows:
            anchor = windows[0].start_ms
        return {"since_ms": anchor}
    keep = max((r.windows for r in rules), default=1) - 1
    closed = [w for w in windows if w.complete]
    if not closed:
        return {"since_ms": state.get("since_ms")}
    # the newest closed windows a rule spanning several windows still needs, then what is open
    start_index = max(len(closed) - keep, 0)
    since = closed[start_index].start_ms if start_index < len(closed) else closed[-1].end_ms
    return {"since_ms": since}


def watch(
    rules: RuleSet,
    *,
    workspace: Workspace,
    window: str | int | WindowSpec = "1h",
    interval_s: float = 60.0,
    iterations: int | None = None,
    stop: threading.Event | None = None,
    on_check: Callable[[CheckResult], None] | None = None,
    **options: Any,
) -> int:
    """Check ``rules`` every ``interval_s`` seconds until ``stop`` is set (or ``iterations``
    checks ran). A check that fails (the store unreachable, an unexpected error) is logged,
    reported to ``on_check`` in ``errors``, and the loop goes on.

    Returns:
        The number of checks run.
    """
    if interval_s <= 0:
        from forgeml.errors import InputError

        raise InputError(f"interval: expected a number of seconds > 0; got {interval_s}")
    spec = parse_window(window)
    stop = stop or threading.Event()
    done = 0
    while not stop.is_set() and (iterations is None or done < iterations):
        started = time.monotonic()
        try:
            result = check_rules(rules, workspace=workspace, window=spec, **options)
        except ForgeMLError as e:  # the store was unreachable...: try again next time
            log.warning("monitor check failed: %s", e)
            result = CheckResult(errors={"*": str(e)})
        except Exception as e:  # a long-running watcher outlives one failed check
            log.exception("monitor check failed")
            result = CheckResult(errors={"*": f"internal error: {type(e).__name__}: {e}"})
        done += 1
        if on_check is not None:
            on_check(result)
        if iterations is not None and done >= iterations:
            break
        stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
    return done
