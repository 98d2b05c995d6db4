"""``forgeml monitor report | alerts check | alerts list | watch``: served models watched over
their prediction log, and alert rules."""

from __future__ import annotations

import math
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from forgeml.cli._common import console, fmt_ms, open_context, print_json, styled, table
from forgeml.errors import InputError

if TYPE_CHECKING:
    from forgeml.monitor import CheckResult, ServedReport

alerts_app = typer.Typer(no_args_is_help=True, help="Alert rules: check them, list alerts.")


def register(app: typer.Typer) -> None:
    """Add the served-model commands to the ``monitor`` command group."""
    app.command("report")(report)
    app.command("watch")(watch)
    app.add_typer(alerts_app, name="alerts")


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    number = float(value)
    return "-" if not math.isfinite(number) else f"{number:.{digits}g}"


def _time(name: str, value: str | None) -> int | None:
    """``--since``/``--until``: an ISO date or date-time (UTC when no zone is given)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"--{name}: expected a date or date-time such as 2026-01-31 or 2026-01-31T12:00; "
            f"got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _span(start_ms: int, end_ms: int, count: bool) -> str:
    fmt = "%Y-%m-%d %H:%M:%S" if count else "%Y-%m-%d %H:%M"
    start = datetime.fromtimestamp(start_ms / 1000, UTC).strftime(fmt)
    end = datetime.fromtimestamp(end_ms / 1000, UTC).strftime(fmt)
    return f"{start} → {end}"


def _print_report(report: ServedReport) -> None:
    console.print(Text(report.header))
    if report.calibration:
        console.print(
            Text(f"estimated performance: CBPE, probabilities calibrated {report.calibration}")
        )
    if not report.windows:
        for note in report.notes:
            console.print(Text(note))
        return
    true_names = [
        m
        for m in ("accuracy", "roc_auc", "rmse", "mae")
        if any(m in w.true for w in report.windows)
    ]
    est_names = [
        m for m in ("accuracy", "roc_auc") if any(m in w.estimated for w in report.windows)
    ]
    count = "predictions" in report.window
    t = table(
        "window (UTC)",
        "requests",
        "rows",
        "errors",
        "p50/p99 ms",
        "input drift",
        "prediction drift",
        "labelled",
        *(f"true {m}" for m in true_names),
        *(f"est. {m}" for m in est_names),
        title=f"{report.ref}: {report.window}",
    )
    for w in report.windows:
        if w.empty:
            drift_cell: Text | str = "empty window"
            pred_cell: Text | str = "-"
        else:
            assert w.input_drift is not None and w.prediction_drift is not None
            cols = ", ".join(w.input_drift["drifted_columns"][:4])
            share = f"{w.input_drift['share_drifted']:.0%}" + (f" ({cols})" if cols else "")
            drift_cell = styled(share, "bold red") if w.input_drift["drifted"] else share
            effect = _num(w.prediction_drift["effect_size"])
            pred_cell = styled(effect, "bold red") if w.prediction_drift["drifted"] else effect
        trues = []
        for m in true_names:
            v = w.true.get(m)
            trues.append(
                "-" if v is None else f"{_num(v['value'])} [{_num(v['lower'])}, {_num(v['upper'])}]"
            )
        t.add_row(
            _span(w.start_ms, w.end_ms, count) + ("" if w.complete else " (open)"),
            f"{w.requests:,}",
            f"{w.rows:,}",
            "-" if not w.requests else f"{w.error_rate:.1%}",
            f"{_num(w.latency_ms.get('p50'))}/{_num(w.latency_ms.get('p99'))}",
            drift_cell,
            pred_cell,
            f"{w.labelled_rows:,}",
            *trues,
            *(_num(w.estimated.get(m)) for m in est_names),
        )
    console.print(t)
    costs = [w.resources.get("cost_per_1000") for w in report.windows]
    if report.price_per_core_hour is not None and any(c is not None for c in costs):
        rows = sum(w.rows for w in report.windows)
        busy = sum(w.resources.get("busy_seconds") or 0.0 for w in report.windows)
        per = busy / 3600 * report.price_per_core_hour / rows * 1000 if rows else math.nan
        console.print(
            Text(
                f"cost: {_num(per, 4)} per 1,000 predictions over {rows:,} predictions "
                f"({busy:.1f} busy seconds at {report.price_per_core_hour:g} per core-hour)"
            )
        )
    for note in report.notes:
        console.print(Text(f"note: {note}"))


def report(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The served model: NAME@ALIAS or NAME@VERSION.")],
    window: Annotated[
        str,
        typer.Option("--window", "-w", help="1d, 6h, 30m... (UTC) or a number of predictions."),
    ] = "1d",
    since: Annotated[
        str | None, typer.Option("--since", help="Only requests from this date-time (UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only requests before this date-time (UTC).")
    ] = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="Input column to audit for fairness (repeatable)."),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap replicates of the intervals.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
    price: Annotated[
        float | None,
        typer.Option("--price-per-core-hour", help="Price of a core-hour, for the cost."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    trust_pickle: Annotated[
        bool, typer.Option("--trust-pickle", help="Load a model stored as a pickle.")
    ] = False,
) -> None:
    """Drift, service health and performance of a served model, window by window."""
    from forgeml.monitor import parse_window
    from forgeml.workflows import served_model_report

    parse_window(window)
    since_ms, until_ms = _time("since", since), _time("until", until)
    if bootstrap < 0:
        raise InputError(f"--bootstrap must be at least 0; got {bootstrap}")
    result = served_model_report(
        open_context(ctx),
        ref,
        window=window,
        since_ms=since_ms,
        until_ms=until_ms,
        sensitive=sensitive or (),
        n_bootstrap=bootstrap,
        seed=seed,
        price_per_core_hour=price,
        trust_pickle=trust_pickle,
        html=html,
    )
    if json:
        print_json(result.to_dict() | ({"html": str(html)} if html else {}))
        return
    _print_report(result)
    if html is not None:
        console.print(Text(f"HTML report: {html}"))


def _print_check(result: CheckResult, *, quiet_notes: bool = False) -> None:
    for alert in result.alerts:
        line = Text(f"ALERT [{alert.severity}] {alert.rule}: ")
        line.append_text(styled(alert.message, "bold red"))
        line.append(f" (webhook: {alert.delivery})")
        console.print(line)
    for ref, error in result.errors.items():
        console.print(Text(f"not checked: {ref}: {error}"))
    if not quiet_notes:
        for note in result.notes:
            console.print(Text(f"note: {note}"))
    already = result.firing - len(result.alerts)
    console.print(
        Text(
            f"{len(result.alerts)} new alert(s)"
            + (f", {already} already recorded" if already else "")
            + f" on {sum(len(r.windows) for r in result.reports.values())} window(s) of "
            f"{len(result.reports)} model(s)"
        )
    )


@alerts_app.command("check")
def check(
    ctx: typer.Context,
    rules: Annotated[Path, typer.Argument(help="The rules file (YAML).")],
    window: Annotated[
        str, typer.Option("--window", "-w", help="1h, 1d... or a number of predictions.")
    ] = "1h",
    include_open: Annotated[
        bool, typer.Option("--include-open", help="Also evaluate windows not closed yet.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Evaluate the rules once: record and send the alerts that are new."""
    from forgeml.monitor import load_rules, parse_window
    from forgeml.workflows import check_alerts

    parse_window(window)
    load_rules(rules)
    result = check_alerts(open_context(ctx), rules, window=window, include_open=include_open)
    if json:
        print_json(result.to_dict())
        return
    _print_check(result)


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recorded alerts, newest first."""
    if limit < 1:
        raise InputError(f"--limit must be at least 1; got {limit}")
    ctx_ = open_context(ctx)
    alerts = ctx_.workspace.monitor.alerts(model=model, limit=limit)
    if json:
        print_json([a.to_dict() for a in alerts])
        return
    t = table("raised", "rule", "severity", "model", "metric", "value", "windows (UTC)", "webhook")
    for a in alerts:
        t.add_row(
            fmt_ms(a.created_at),
            a.rule,
            a.severity,
            a.ref,
            f"{a.metric} {a.op} {a.threshold:g}",
            _num(a.value, 4),
            _span(a.window_start_ms, a.window_end_ms, False),
            a.delivery,
        )
    console.print(t)
    if not alerts:
        console.print(Text("no alert recorded"))


def watch(
    ctx: typer.Context,
    rules: Annotated[Path, typer.Argument(help="The rules file (YAML).")],
    window: Annotated[
        str, typer.Option("--window", "-w", help="1h, 1d... or a number of predictions.")
    ] = "1h",
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between two checks.")
    ] = 60.0,
    iterations: Annotated[
        int | None, typer.Option("--iterations", help="Stop after this many checks.")
    ] = None,
) -> None:
    """Check the rules every --interval seconds until stopped (Ctrl-C or SIGTERM); a
    restarted watcher resumes where the last one stopped and repeats no alert."""
    from forgeml.monitor import load_rules, parse_window
    from forgeml.workflows import watch_alerts

    parse_window(window)
    load_rules(rules)
    if not interval > 0:
        raise InputError(f"--interval must be a number of seconds > 0; got {interval}")
    if iterations is not None and iterations < 1:
        raise InputError(f"--iterations must be at least 1; got {iterations}")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(Text(f"watching {rules} every {interval:g} s ({window} windows); Ctrl-C stops"))

    def on_check(result: CheckResult) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        console.print(Text(f"[{stamp}] check:"))
        _print_check(result, quiet_notes=True)

    try:
        watch_alerts(
            open_context(ctx),
            rules,
            window=window,
            interval_s=interval,
            iterations=iterations,
            stop=stop,
            on_check=on_check,
        )
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print(Text("stopped"))
