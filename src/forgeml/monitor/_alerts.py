"""Alert rules over a served model's windows: YAML rules, evaluated on demand or by a watcher,
recorded in the store once per rule and window, sent to a webhook.

A rules file::

    webhook: http://127.0.0.1:9000/hooks/forgeml     # optional, for every rule
    rules:
      - name: inputs drift
        model: churn@production
        metric: input_drift.share_drifted               # a WindowResult.values() name
        op: ">"
        threshold: 0.3
        windows: 2                                      # breached in 2 consecutive windows
        severity: warning                               # info | warning | critical
      - name: accuracy fell
        model: churn@production
        metric: true.accuracy
        op: "<"
        threshold: 0.8
        severity: critical

A rule looks at the model's closed, non-empty windows. It fires on a run of ``windows``
consecutive ones where the metric is a number that breaks the threshold; an empty window (no
prediction), a time window without any request, or a window where the metric is not available
(no labels yet) breaks a run and never fires.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forgeml.errors import InputError

if TYPE_CHECKING:
    from forgeml.monitor._served import ServedReport, WindowResult
    from forgeml.store import AlertRecord, MonitorStore

__all__ = [
    "AlertRule",
    "Firing",
    "RuleSet",
    "deliver",
    "evaluate_rules",
    "load_rules",
    "record_and_send",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_FIXED_METRICS = {
    "requests",
    "rows",
    "errors",
    "error_rate",
    "labelled_rows",
    "latency_p50_ms",
    "latency_p99_ms",
    "input_drift.share_drifted",
    "input_drift.drifted",
    "prediction_drift.effect_size",
    "prediction_drift.drifted",
    "resources.busy_seconds",
    "resources.cost_per_1000",
}
_PREFIXES = ("true.", "estimated.", "input_drift.column.", "fairness.")


class AlertRule(BaseModel):
    """One rule: fire when ``metric`` ``op`` ``threshold`` holds in ``windows`` consecutive
    windows of ``model``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=256)
    model: str = Field(min_length=3, max_length=256)
    metric: str
    op: Literal[">", ">=", "<", "<="]
    threshold: float
    windows: int = Field(default=1, ge=1, le=1000)
    severity: Literal["info", "warning", "critical"] = "warning"
    webhook: str | None = None

    @field_validator("model")
    @classmethod
    def _model_ref(cls, value: str) -> str:
        from forgeml.errors import ForgeMLError
        from forgeml.registry import parse_model_ref

        if "@" not in value:
            raise ValueError(f"expected NAME@ALIAS or NAME@VERSION; got {value!r}")
        try:
            parse_model_ref(value)
        except ForgeMLError as e:
            raise ValueError(str(e)) from None
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value in _FIXED_METRICS or any(
            value.startswith(p) and len(value) > len(p) for p in _PREFIXES
        ):
            return value
        raise ValueError(
            f"unknown metric {value!r}; expected one of {', '.join(sorted(_FIXED_METRICS))}, "
            "or true.NAME, estimated.NAME, input_drift.column.COLUMN, "
            "fairness.COLUMN.DISPARITY"
        )

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL; got {value!r}")
        return value

    def breaks(self, value: float) -> bool:
        """Whether ``value`` breaks the threshold (never for NaN)."""
        return not math.isnan(value) and _OPS[self.op](value, self.threshold)


class RuleSet(BaseModel):
    """A rules file: rules and the default webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str | None = None
    rules: tuple[AlertRule, ...] = Field(min_length=1)

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return AlertRule._url(value)

    def models(self) -> list[str]:
        """The model references the rules watch, in order of appearance."""
        return list(dict.fromkeys(r.model for r in self.rules))

    def webhook_of(self, rule: AlertRule) -> str | None:
        """The rule's webhook, else the file's."""
        return rule.webhook or self.webhook


def load_rules(source: str | Path | Mapping[str, Any]) -> RuleSet:
    """Rules from a YAML file (or an already parsed mapping), validated.

    Raises:
        InputError: a missing or unreadable file, YAML that does not parse, or a rule that is
            not valid; the message names the rule and the field (``rules[1].op: ...``).
    """
    import yaml

    where = "the rules"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"Rules file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"Cannot read the rules file {path}: {e}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InputError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise InputError(
            f"{where}: expected a mapping with a `rules` list; got {type(data).__name__}"
        )
    try:
        rules = RuleSet.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"]).replace(
            ".[", "["
        )
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {e.error_count() - 1} more problem(s))" if e.error_count() > 1 else ""
        raise InputError(f"{where}: {field or 'rules'}: {message}{more}") from None
    names = [r.name for r in rules.rules]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"{where}: rule names must be unique; repeated: {', '.join(repeated)}")
    return rules


@dataclass(frozen=True)
class Firing:
    """A rule that held on a run of windows."""

    rule: AlertRule
    value: float
    window_start_ms: int
    window_end_ms: int
    message: str


def evaluate_rules(
    rules: Sequence[AlertRule], report: ServedReport, *, include_open: bool = False
) -> tuple[list[Firing], list[str]]:
    """The rules of ``report``'s model that fire on its windows.

    Every run of ``rule.windows`` consecutive eligible windows that all break the threshold
    fires once (the run's first window start to its last window end); overlapping runs fire at
    each window where the run is long enough, and the store keeps each (rule, window span)
    once.

    Args:
        rules: the rules (those of other models are skipped).
        report: the model's report.
        include_open: also look at windows that are not closed yet.

    Returns:
        (firings, notes): the notes say which windows were skipped and why.
    """
    notes: list[str] = []
    firings: list[Firing] = []
    mine = [r for r in rules if r.model == report.ref]
    if not mine:
        return firings, notes
    eligible: list[WindowResult | None] = []
    for w in report.windows:
        if w.empty:
            notes.append(
                f"window {_span(w.start_ms, w.end_ms)} of {report.ref} is empty (no prediction): "
                "no rule is evaluated on it"
            )
            eligible.append(None)
        elif not w.complete and not include_open:
            notes.append(f"window {_span(w.start_ms, w.end_ms)} of {report.ref} is still open")
        else:
            eligible.append(w)
    if not report.windows:
        notes.append(f"{report.ref} has no logged predictions: no rule is evaluated")
    for rule in mine:
        run: list[WindowResult] = []
        missing = 0
        for candidate in eligible:
            if candidate is None:
                run = []
                continue
            values = candidate.values()
            if rule.metric not in values:
                missing += 1
            value = values.get(rule.metric, float("nan"))
            if not rule.breaks(value):
                run = []
                continue
            if run and report.window_kind == "time" and candidate.start_ms != run[-1].end_ms:
                run = []  # windows without any request between: not consecutive
            run.append(candidate)
            if len(run) >= rule.windows:
                first = run[-rule.windows]
                firings.append(
                    Firing(
                        rule=rule,
                        value=value,
                        window_start_ms=first.start_ms,
                        window_end_ms=candidate.end_ms,
                        message=(
                            f"{report.ref} (version {report.version}): {rule.metric} = "
                            f"{value:.4g} {rule.op} {rule.threshold:g} in {rule.windows} "
                            f"window(s) ending {_span(candidate.start_ms, candidate.end_ms)}"
                        ),
                    )
                )
        if missing:
            notes.append(
                f"rule {rule.name!r}: {rule.metric} not available in {missing} window(s) "
                "(no labels yet, or not computed)"
            )
    return firings, notes


def _span(start_ms: int, end_ms: int) -> str:
    import datetime as dt

    def text(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    return f"[{text(start_ms)}, {text(end_ms)}) UTC"


def deliver(url: str, alert: AlertRecord, *, timeout: float = 10.0) -> str:
    """POST the alert as JSON to ``url``; return ``sent`` or ``failed: <why>``."""
    import httpx

    try:
        answer = httpx.post(url, json={"alert": alert.to_dict()}, timeout=timeout)
    except httpx.HTTPError as e:
        return f"failed: {type(e).__name__}: {e}"[:256]
    if answer.status_code >= 300:
        return f"failed: HTTP {answer.status_code}"
    return "sent"


def record_and_send(
    store: MonitorStore, rules: RuleSet, firings: Sequence[Firing], model: str, ref: str
) -> list[AlertRecord]:
    """Record each firing once (per rule and window span) and POST the new ones to their
    webhook. Returns the alerts recorded now (not those recorded before)."""
    from forgeml.store import NewAlert

    recorded = []
    for firing in firings:
        rule = firing.rule
        url = rules.webhook_of(rule)
        alert = store.record_alert(
            NewAlert(
                rule=rule.name,
                model=model,
                ref=ref,
                metric=rule.metric,
                op=rule.op,
                threshold=rule.threshold,
                value=firing.value,
                severity=rule.severity,
                window_start_ms=firing.window_start_ms,
                window_end_ms=firing.window_end_ms,
                message=firing.message,
            ),
            delivery="pending" if url else "none",
        )
        if alert is None:
            continue
        if url:
            status = deliver(url, alert)
            store.set_delivery(alert.alert_id, status)
            from dataclasses import replace

            alert = replace(alert, delivery=status)
        recorded.append(alert)
    return recorded
