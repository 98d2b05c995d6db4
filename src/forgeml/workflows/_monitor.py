"""Use cases: monitor a served model (report), check alert rules once, watch them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.workflows._context import Context, use_case

if TYPE_CHECKING:
    from forgeml.monitor import CheckResult, ServedReport

__all__ = ["check_alerts", "served_model_report", "watch_alerts"]


@use_case("read")
def served_model_report(
    ctx: Context,
    ref: str,
    *,
    window: str = "1d",
    since_ms: int | None = None,
    until_ms: int | None = None,
    sensitive: Sequence[str] = (),
    n_bootstrap: int = 1000,
    seed: int = 0,
    price_per_core_hour: float | None = None,
    trust_pickle: bool = False,
    html: str | Path | None = None,
) -> ServedReport:
    """The monitoring report of ``ref`` (``NAME@ALIAS``) over its prediction log, and its HTML
    page (with the model's recorded alerts) when ``html`` is given.

    Raises:
        InputError: a bad window, sensitive column or price; an unwritable ``html`` path.
        NotFoundError: no such model, version or alias.
    """
    from forgeml.monitor import served_report, write_served_html

    report = served_report(
        ref,
        window=window,
        since_ms=since_ms,
        until_ms=until_ms,
        sensitive=sensitive,
        n_bootstrap=n_bootstrap,
        seed=seed,
        price_per_core_hour=price_per_core_hour,
        trust_pickle=trust_pickle,
        workspace=ctx.workspace,
    )
    if html is not None:
        alerts = ctx.workspace.monitor.alerts(model=report.model, limit=200)
        write_served_html(report, html, alerts)
    return report


@use_case("monitor.write")
def check_alerts(
    ctx: Context,
    rules: str | Path,
    *,
    window: str = "1h",
    include_open: bool = False,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> CheckResult:
    """Evaluate the rules file once; record and send the alerts that are new.

    Raises:
        InputError: the rules file is missing or invalid (the message names the field).
    """
    from forgeml.monitor import check_rules, load_rules

    return check_rules(
        load_rules(rules),
        workspace=ctx.workspace,
        window=window,
        include_open=include_open,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


@use_case("monitor.write")
def watch_alerts(
    ctx: Context,
    rules: str | Path,
    *,
    window: str = "1h",
    interval_s: float = 60.0,
    iterations: int | None = None,
    stop: threading.Event | None = None,
    on_check: Callable[[CheckResult], None] | None = None,
    **options: Any,
) -> int:
    """Check the rules file every ``interval_s`` seconds until stopped; resumes where the last
    watcher stopped. Returns the number of checks.

    Raises:
        InputError: the rules file is missing or invalid, or a bad window or interval.
    """
    from forgeml.monitor import load_rules, parse_window, watch

    parse_window(window)
    return watch(
        load_rules(rules),
        workspace=ctx.workspace,
        window=window,
        interval_s=interval_s,
        iterations=iterations,
        stop=stop,
        on_check=on_check,
        **options,
    )
