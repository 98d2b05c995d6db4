"""Triggers: does a model's loop retrain now? Each check says whether it fired and why, with
the numbers and the rows they were computed on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from forgeml.loop._policy import DriftTrigger, PerformanceTrigger
from forgeml.loop._scoring import estimated_accuracy, logged_outputs, metric_value, resolve_metric

__all__ = [
    "TriggerResult",
    "check_drift",
    "check_new_labels",
    "check_performance",
    "check_schedule",
]


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """One trigger's verdict: ``fired`` and one line saying why, with its numbers."""

    name: str
    fired: bool
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "fired": self.fired, "summary": self.summary, **self.detail}


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_performance(
    rule: PerformanceTrigger,
    rows: pd.DataFrame,
    *,
    metric: str,
    task: str | None,
    classes: tuple[Any, ...] | None,
    baseline: dict[str, Any] | None,
    rearm_ms: int | None = None,
) -> tuple[TriggerResult, dict[str, Any] | None]:
    """The champion's live metric on its latest rows against its first live window.

    ``rows`` are the champion version's answered rows, oldest first (with ``label`` where
    feedback arrived). The baseline is given (the champion's score on the comparison window
    that chose it, ``on`` naming it) or the metric on the first ``window_rows`` labelled rows
    it answered (measured once per champion version, returned to be kept); the trigger fires
    when the latest ``window_rows`` rows score ``drop`` below it. With ``estimated``, both
    windows use the confidence-based estimate of accuracy and need no labels. After a
    retraining that did not replace the champion (``rearm_ms``), it fires again only on a
    window of rows answered since.

    Returns:
        The verdict and the baseline (new or the one given).
    """
    spec = resolve_metric(metric, task)
    if rule.estimated:
        usable = rows
        what = "estimated accuracy (confidence-based)"
    else:
        usable = rows[rows["label"].notna()] if "label" in rows.columns else rows.iloc[:0]
        what = f"{spec.name} on labelled rows"
    n = rule.window_rows

    def value(window: pd.DataFrame) -> float:
        out = logged_outputs(window, classes)
        if rule.estimated:
            return estimated_accuracy(out)
        return metric_value(spec, window["label"].to_numpy(), out)

    if baseline is None:
        if len(usable) < 2 * n:
            return (
                TriggerResult(
                    "performance",
                    False,
                    f"waiting: {len(usable):,} rows for the {what}, needs {2 * n:,} "
                    f"(a first window of {n:,} as the baseline, then a latest one)",
                    {"rows": len(usable), "needed": 2 * n},
                ),
                None,
            )
        first = usable.iloc[:n]
        baseline = {
            "value": value(first),
            "rows": n,
            "metric": spec.name if not rule.estimated else "estimated_accuracy",
            "until_ms": int(first["time_ms"].iloc[-1]),
        }
    after = max(int(baseline["until_ms"]), int(rearm_ms or 0))
    later = usable[usable["time_ms"] > after]
    if len(later) < n:
        since = (
            "the last retraining attempt" if after > baseline["until_ms"] else "the baseline window"
        )
        return (
            TriggerResult(
                "performance",
                False,
                f"waiting: {len(later):,} rows after {since}, needs {n:,}",
                {"rows": len(later), "needed": n, "baseline": baseline["value"]},
            ),
            baseline,
        )
    latest = later.iloc[-n:]
    current = value(latest)
    sign = 1.0 if (rule.estimated or spec.greater_is_better) else -1.0
    fell = sign * (baseline["value"] - current)
    fired = fell >= rule.drop
    on = baseline.get("on") or f"the first {baseline['rows']:,}"
    summary = (
        f"{what}: {current:.4f} on the latest {n:,} rows ({_iso(latest['time_ms'].iloc[0])} .. "
        f"{_iso(latest['time_ms'].iloc[-1])}) vs baseline {baseline['value']:.4f} on "
        f"{on}: "
        f"{'fell' if fell >= 0 else 'rose'} {abs(fell):.4f} "
        f"({'>=' if fired else '<'} drop {rule.drop})"
    )
    return (
        TriggerResult(
            "performance",
            fired,
            summary,
            {"value": current, "baseline": baseline["value"], "fell": fell, "rows": n},
        ),
        baseline,
    )


def check_drift(
    rule: DriftTrigger, reference: pd.DataFrame | None, recent: pd.DataFrame, *, seed: int = 0
) -> TriggerResult:
    """The latest logged inputs against the champion's reference sample
    (``forgeml.monitor.DriftDetector``: calibrated per-column decisions, and the domain
    classifier when ``multivariate_auc`` is set).

    Fires when the share of drifted columns reaches ``share`` or the domain classifier's AUC
    reaches ``multivariate_auc``.
    """
    from forgeml.monitor import DriftDetector

    if reference is None or reference.empty:
        return TriggerResult("drift", False, "not checked: the champion's bundle has no reference")
    if len(recent) < rule.window_rows:
        return TriggerResult(
            "drift",
            False,
            f"waiting: {len(recent):,} logged rows, needs {rule.window_rows:,}",
            {"rows": len(recent), "needed": rule.window_rows},
        )
    columns = [c for c in reference.columns if c in recent.columns]
    current = recent[columns].iloc[-rule.window_rows :]
    detector = DriftDetector(multivariate=rule.multivariate_auc is not None, random_state=seed)
    report = detector.fit(reference[columns]).score(current)
    share = float(report.share_drifted)
    found = report.multivariate.auc if report.multivariate is not None else None
    auc = float("nan") if found is None else float(found)
    fired_share = rule.share is not None and share >= rule.share
    fired_auc = rule.multivariate_auc is not None and auc >= rule.multivariate_auc
    drifted = list(report.drifted_columns)
    summary = (
        f"{share:.0%} of {len(report.columns)} columns drifted ({', '.join(drifted) or 'none'}) "
        f"in the latest {len(current):,} logged rows vs {len(reference):,} reference rows"
        + (f" (threshold {rule.share:.0%})" if rule.share is not None else "")
        + (
            f"; domain classifier AUC {auc:.3f} (threshold {rule.multivariate_auc})"
            if rule.multivariate_auc is not None
            else ""
        )
    )
    return TriggerResult(
        "drift",
        fired_share or fired_auc,
        summary,
        {"share_drifted": share, "auc": auc, "rows": len(current), "drifted": drifted},
    )


def check_schedule(cron: str, since_ms: int, now_ms: int) -> TriggerResult:
    """Fires when a time of the cron schedule passed since ``since_ms`` (the last retraining or
    the loop's start)."""
    from croniter import croniter

    due = float(croniter(cron, since_ms / 1000).get_next(float)) * 1000
    fired = due <= now_ms
    return TriggerResult(
        "schedule",
        fired,
        f"'{cron}': {'due since' if fired else 'next at'} {_iso(due)}",
        {"due_ms": int(due)},
    )


def check_new_labels(needed: int, labelled_since: int) -> TriggerResult:
    """Fires when at least ``needed`` rows were labelled since the last retraining."""
    fired = labelled_since >= needed
    return TriggerResult(
        "new_labels",
        fired,
        f"{labelled_since:,} new labelled rows since the last retraining "
        f"({'>=' if fired else '<'} {needed:,})",
        {"rows": labelled_since, "needed": needed},
    )
