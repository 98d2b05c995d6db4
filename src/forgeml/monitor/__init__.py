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

Heavy modules (pandas, SciPy, LightGBM, matplotlib) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from forgeml.monitor._api import drift, read_source
    from forgeml.monitor._columns import Histogram
    from forgeml.monitor._detector import DriftDetector
    from forgeml.monitor._html import render_html, write_html
    from forgeml.monitor._report import ColumnDrift, DriftReport, MultivariateDrift

__all__ = [
    "ColumnDrift",
    "DriftDetector",
    "DriftReport",
    "Histogram",
    "MultivariateDrift",
    "drift",
    "read_source",
    "render_html",
    "write_html",
]

_HOMES = {
    "_api": ("drift", "read_source"),
    "_columns": ("Histogram",),
    "_detector": ("DriftDetector",),
    "_html": ("render_html", "write_html"),
    "_report": ("ColumnDrift", "DriftReport", "MultivariateDrift"),
}
__getattr__, _, _ = lazy_loader.attach(
    __name__, submod_attrs={module: list(names) for module, names in _HOMES.items()}
)


def __dir__() -> list[str]:
    return sorted(__all__)
