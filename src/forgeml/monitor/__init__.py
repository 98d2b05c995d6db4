"""Monitoring: how far current data has moved from a reference.

    import forgeml as fm

    report = fm.monitor.drift("train.csv", "last_week.parquet")
    report.drifted, report.rule, report.drifted_columns
    report["temp"].effect_size, report["temp"].threshold, report["temp"].p_value
    fm.monitor.write_html(report, "drift.html")   # self-contained page with the distributions

    detector = fm.monitor.DriftDetector(alpha=0.05).fit(reference_frame)
    for window in windows:                  # fitted once, scored per window
        detector.score(window).drifted

Every column is compared on an effect size (Kolmogorov-Smirnov distance for numbers,
Jensen-Shannon distance for categories, PSI on request) against a threshold calibrated for the
two tables' sizes, with a minimum effect that counts; a domain classifier catches shifts in how
columns move together; the table-level decision controls the family-wise false-alarm rate
(see ``forgeml.monitor._detector`` for the rule).

A served model is watched window by window over its prediction log::

    report = fm.monitor.served_report("churn@production", window="1d")
    report.windows[-1].values()   # input_drift.share_drifted, true.accuracy, estimated.roc_auc...
    rules = fm.monitor.load_rules("rules.yaml")
    fm.monitor.check_rules(rules, workspace=ws)   # alerts recorded once, sent to the webhook

(input and prediction drift against the bundle's reference, latency and errors, true metrics
with bootstrap intervals once feedback labels arrive, a confidence-based estimate before,
fairness per sensitive group, serving cost; see ``_served``, ``_alerts`` and ``_watch``).

Heavy modules (pandas, SciPy, LightGBM, matplotlib) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from forgeml.monitor._alerts import AlertRule, Firing, RuleSet, evaluate_rules, load_rules
    from forgeml.monitor._api import drift, read_source
    from forgeml.monitor._columns import Histogram
    from forgeml.monitor._detector import DriftDetector
    from forgeml.monitor._html import render_html, write_html
    from forgeml.monitor._performance import Calibration, estimated_metrics, expected_roc_auc
    from forgeml.monitor._report import ColumnDrift, DriftReport, MultivariateDrift
    from forgeml.monitor._report_served import render_served_html, write_served_html
    from forgeml.monitor._served import ServedReport, WindowResult, served_report
    from forgeml.monitor._watch import CheckResult, check_rules, latest_values, watch
    from forgeml.monitor._windows import WindowSpec, parse_window

__all__ = [
    "AlertRule",
    "Calibration",
    "CheckResult",
    "ColumnDrift",
    "DriftDetector",
    "DriftReport",
    "Firing",
    "Histogram",
    "MultivariateDrift",
    "RuleSet",
    "ServedReport",
    "WindowResult",
    "WindowSpec",
    "check_rules",
    "drift",
    "estimated_metrics",
    "evaluate_rules",
    "expected_roc_auc",
    "latest_values",
    "load_rules",
    "parse_window",
    "read_source",
    "render_html",
    "render_served_html",
    "served_report",
    "watch",
    "write_html",
    "write_served_html",
]

_HOMES = {
    "_api": ("drift", "read_source"),
    "_columns": ("Histogram",),
    "_detector": ("DriftDetector",),
    "_html": ("render_html", "write_html"),
    "_report": ("ColumnDrift", "DriftReport", "MultivariateDrift"),
    "_alerts": ("AlertRule", "Firing", "RuleSet", "evaluate_rules", "load_rules"),
    "_performance": ("Calibration", "estimated_metrics", "expected_roc_auc"),
    "_report_served": ("render_served_html", "write_served_html"),
    "_served": ("ServedReport", "WindowResult", "served_report"),
    "_watch": ("CheckResult", "check_rules", "latest_values", "watch"),
    "_windows": ("WindowSpec", "parse_window"),
}
__getattr__, _, _ = lazy_loader.attach(
    __name__, submod_attrs={module: list(names) for module, names in _HOMES.items()}
)


def __dir__() -> list[str]:
    return sorted(__all__)
