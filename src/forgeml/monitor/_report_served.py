"""A served model's monitoring report as one self-contained HTML page: drift over windows,
performance over time (true with its interval once labels arrive, estimated before), latency
and errors, fairness, cost, alerts, and the reference vs current distributions of every input
column in the newest window. Figures are matplotlib PNGs inlined as base64; no script and no
link outside the file, so it opens offline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from forgeml.monitor._served import ServedReport
    from forgeml.store import AlertRecord

__all__ = ["render_served_html", "write_served_html"]

_TRUE = "#2a7a2a"
_ESTIMATED = "#d9822b"
_DRIFT = "#3b6ea5"

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Monitoring {{ r.ref }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem; color: #222;
       padding: 0 1rem; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
.meta { color: #666; } .note { background: #f6f6f6; padding: .4rem .8rem; margin: .3rem 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .85rem; }
th, td { border-bottom: 1px solid #eee; padding: .25rem .5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f6f6; }
.drift { color: #a33; font-weight: bold; } .ok { color: #2a7a2a; } .est { color: #a60; }
.figs img { max-width: 100%; margin: .5rem 0; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; }
.card { border: 1px solid #e4e4e4; padding: .5rem .7rem; width: 23rem; }
.card h3 { margin: 0 0 .3rem; font-size: 1rem; } .card img { max-width: 100%; }
</style>
</head>
<body>
<h1>Monitoring {{ r.ref }}</h1>
<p class="meta">{{ r.header }} · computed in {{ "%.1f"|format(r.seconds) }} s · {{ created }}</p>
{% if r.calibration %}<p class="meta">Estimated performance (CBPE): probabilities calibrated
{{ r.calibration }}. Estimates assume the relation between inputs and labels is unchanged.</p>
{% endif %}
{% for note in r.notes %}<p class="note">{{ note }}</p>{% endfor %}

<h2>Windows</h2>
{% if not r.windows %}<p>No window: nothing was logged for this version.</p>{% else %}
<table>
<tr><th>window (UTC)</th><th>requests</th><th>rows</th><th>errors</th><th>p50 / p99 ms</th>
<th>input drift</th><th>drifted columns</th><th>prediction drift</th><th>labelled</th>
{% for m in true_names %}<th>true {{ m }}</th>{% endfor %}
{% for m in est_names %}<th>estimated {{ m }}</th>{% endfor %}
<th>cost / 1,000</th></tr>
{% for w in r.windows %}
<tr><td>{{ span(w) }}{{ "" if w.complete else " (open)" }}</td>
<td>{{ "{:,}".format(w.requests) }}</td><td>{{ "{:,}".format(w.rows) }}</td>
<td>{{ pct(w.error_rate) }}</td>
<td>{{ num(w.latency_ms.get("p50")) }} / {{ num(w.latency_ms.get("p99")) }}</td>
{% if w.empty %}<td colspan="3">empty window: not compared</td>
{% else %}
<td class="{{ 'drift' if w.input_drift.drifted else 'ok' }}">{{ pct(w.input_drift.share_drifted) }}
</td><td>{{ w.input_drift.drifted_columns|join(", ") }}</td>
<td class="{{ 'drift' if w.prediction_drift.drifted else 'ok' }}">
{{ num(w.prediction_drift.effect_size) }}</td>{% endif %}
<td>{{ "{:,}".format(w.labelled_rows) }}</td>
{% for m in true_names %}<td>{% if m in w.true %}{{ num(w.true[m].value) }}
[{{ num(w.true[m].lower) }}, {{ num(w.true[m].upper) }}]{% else %}-{% endif %}</td>{% endfor %}
{% for m in est_names %}<td class="est">{{ num(w.estimated.get(m)) }}</td>{% endfor %}
<td>{{ num(w.resources.get("cost_per_1000")) }}</td></tr>
{% endfor %}
</table>
{% endif %}

<div class="figs">
{% for title, image in figures %}<h2>{{ title }}</h2>
<img alt="{{ title }}" src="data:image/png;base64,{{ image }}">{% endfor %}
</div>

{% if fairness %}<h2>Fairness per window (labelled rows)</h2>
<table><tr><th>window</th><th>column</th>{% for d in disparity_names %}<th>{{ d }}</th>
{% endfor %}</tr>
{% for w, column, audit in fairness %}<tr><td>{{ span(w) }}</td><td>{{ column }}</td>
{% for d in disparity_names %}<td>{% if d in audit.disparities %}
{{ num(audit.disparities[d].value) }} [{{ num(audit.disparities[d].lower) }},
{{ num(audit.disparities[d].upper) }}]{% else %}-{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}

<h2>Alerts</h2>
{% if alerts %}<table><tr><th>raised</th><th>rule</th><th>severity</th><th>metric</th>
<th>value</th><th>windows (UTC)</th><th>webhook</th></tr>
{% for a in alerts %}<tr><td>{{ when(a.created_at) }}</td><td>{{ a.rule }}</td>
<td>{{ a.severity }}</td><td>{{ a.metric }} {{ a.op }} {{ num(a.threshold) }}</td>
<td>{{ num(a.value) }}</td><td>{{ when(a.window_start_ms) }} → {{ when(a.window_end_ms) }}</td>
<td>{{ a.delivery }}</td></tr>{% endfor %}</table>
{% else %}<p class="meta">No alert recorded for {{ r.model }}.</p>{% endif %}

{% if cards %}<h2>Inputs in the newest window against the reference</h2>
<div class="cards">{% for c, image in cards %}<div class="card">
<h3>{{ c.column }} <span class="{{ 'drift' if c.drifted else 'ok' }}">{{ 'drift' if c.drifted
else 'no drift' }}</span></h3>
{% if image %}<img alt="{{ c.column }}" src="data:image/png;base64,{{ image }}">{% endif %}
<p>{{ c.test }} {{ num(c.effect_size) }} vs threshold {{ num(c.threshold) }}</p></div>
{% endfor %}</div>{% endif %}
</body>
</html>
"""


def _num(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return "-" if not math.isfinite(number) else f"{number:.4g}"


def _pct(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    return f"{float(value):.1%}"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _png(figure: Figure) -> str:
    from forgeml.monitor._html import _png as png

    return png(figure)


def _times(report: ServedReport) -> list[datetime]:
    return [datetime.fromtimestamp(w.start_ms / 1000, UTC) for w in report.windows]


def _new_figure() -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(9, 3.2))


def _drift_figure(report: ServedReport) -> str:
    figure = _new_figure()
    ax = figure.add_subplot()
    x = range(len(report.windows))
    share = [
        math.nan if w.input_drift is None else w.input_drift["share_drifted"]
        for w in report.windows
    ]
    pred = [
        math.nan
        if w.prediction_drift is None or w.prediction_drift["effect_size"] is None
        else w.prediction_drift["effect_size"]
        for w in report.windows
    ]
    ax.plot(x, share, marker="o", color=_DRIFT, label="share of input columns drifted")
    ax.plot(x, pred, marker="s", color=_ESTIMATED, label="prediction drift (effect size)")
    for i, w in enumerate(report.windows):
        if w.input_drift is not None and w.input_drift["drifted"]:
            ax.axvspan(i - 0.4, i + 0.4, color="#f3d6d6", zorder=0)
    _window_axis(ax, report)
    ax.set_ylabel("drift")
    ax.legend(loc="upper left", fontsize=8)
    return _png(figure)


def _window_axis(ax: Any, report: ServedReport) -> None:
    labels = [_when(w.start_ms)[:16] for w in report.windows]
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step))
    ax.set_xticklabels(labels[::step], rotation=30, ha="right", fontsize=7)
    ax.set_xlabel("window start (UTC)")


def _performance_figure(report: ServedReport, metric: str) -> str:
    figure = _new_figure()
    ax = figure.add_subplot()
    x = list(range(len(report.windows)))
    true = [w.true.get(metric, {}).get("value", math.nan) for w in report.windows]
    lower = [w.true.get(metric, {}).get("lower", math.nan) for w in report.windows]
    upper = [w.true.get(metric, {}).get("upper", math.nan) for w in report.windows]
    estimated = [w.estimated.get(metric, math.nan) for w in report.windows]
    ax.fill_between(x, lower, upper, color=_TRUE, alpha=0.2, label="true: bootstrap interval")
    ax.plot(x, true, marker="o", color=_TRUE, label=f"true {metric} (labelled rows)")
    ax.plot(x, estimated, marker="s", linestyle="--", color=_ESTIMATED, label="estimated (CBPE)")
    _window_axis(ax, report)
    ax.set_ylabel(metric)
    ax.legend(loc="lower left", fontsize=8)
    return _png(figure)


def _service_figure(report: ServedReport) -> str:
    figure = _new_figure()
    ax = figure.add_subplot()
    x = range(len(report.windows))
    ax.plot(x, [w.latency_ms.get("p50", math.nan) for w in report.windows], marker="o", label="p50")
    ax.plot(x, [w.latency_ms.get("p99", math.nan) for w in report.windows], marker="o", label="p99")
    ax.set_ylabel("latency, ms")
    errors = ax.twinx()
    errors.bar(x, [w.error_rate for w in report.windows], color="#a33", alpha=0.3, label="errors")
    errors.set_ylabel("error rate")
    _window_axis(ax, report)
    ax.legend(loc="upper left", fontsize=8)
    return _png(figure)


def render_served_html(report: ServedReport, alerts: Sequence[AlertRecord] = ()) -> str:
    """The HTML text of ``report`` with the model's ``alerts`` (a complete offline document)."""
    import jinja2

    from forgeml.monitor._html import _figure as column_figure

    true_names = sorted({m for w in report.windows for m in w.true})
    est_names = sorted({m for w in report.windows for m in w.estimated})
    figures: list[tuple[str, str]] = []
    if report.windows:
        figures.append(("Drift over windows", _drift_figure(report)))
        for metric in [
            m for m in ("accuracy", "roc_auc", "rmse") if m in true_names or m in est_names
        ]:
            figures.append(
                (f"Performance over time: {metric}", _performance_figure(report, metric))
            )
        figures.append(("Latency and errors", _service_figure(report)))
    fairness = [(w, column, audit) for w in report.windows for column, audit in w.fairness.items()]
    disparity_names = sorted({d for _, _, a in fairness for d in a.get("disparities", {})})
    latest = report.latest_drift
    cards = [] if latest is None else [(c, column_figure(c)) for c in latest.columns]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        r=report,
        true_names=true_names,
        est_names=est_names,
        figures=figures,
        fairness=fairness,
        disparity_names=disparity_names,
        alerts=list(alerts),
        cards=cards,
        created=datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        span=lambda w: f"{_when(w.start_ms)} → {_when(w.end_ms)}",
        when=_when,
        num=_num,
        pct=_pct,
    )


def write_served_html(
    report: ServedReport, path: str | Path, alerts: Sequence[AlertRecord] = ()
) -> Path:
    """Write the report's page to ``path`` (folders created) and return the path.

    Raises:
        InputError: the path cannot be written.
    """
    target = Path(path)
    text = render_served_html(report, alerts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"Cannot write the report to {target}: {e.strerror}") from None
    return target
