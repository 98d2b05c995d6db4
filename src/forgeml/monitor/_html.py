"""The drift report as one self-contained HTML page: per column the reference and current
distributions drawn side by side (matplotlib PNG inlined as base64), the effect size against its
threshold, missing values, out-of-range values and unseen categories; the domain classifier and
the table-level rule. No script and no link to anything outside the file, so it opens offline.
Figures are drawn on matplotlib's Agg canvas directly, never through pyplot."""

from __future__ import annotations

import base64
import io
import itertools
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from forgeml.monitor._report import ColumnDrift, DriftReport

__all__ = ["render_html", "write_html"]

_REFERENCE = "#3b6ea5"
_CURRENT = "#d9822b"

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Drift: {{ verdict }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 76rem; color: #222;
       padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem;
margin-top: 2rem; }
.meta { color: #666; } .rule { background: #f6f6f6; padding: .6rem .8rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #eee; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f6f6; }
.drift { color: #a33; font-weight: bold; } .ok { color: #2a7a2a; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; }
.card { border: 1px solid #e4e4e4; padding: .5rem .7rem; width: 23rem; }
.card h3 { margin: 0 0 .3rem; font-size: 1rem; }
.card img { max-width: 100%; }
.card p { margin: .2rem 0; font-size: .85rem; color: #444; }
.key span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 .8rem; }
</style>
</head>
<body>
<h1>Data drift: <span class="{{ 'drift' if r.drifted else 'ok' }}">{{ verdict }}</span></h1>
<p class="meta">reference {{ r.reference }} ({{ "{:,}".format(r.n_reference) }} rows) ·
current {{ r.current }} ({{ "{:,}".format(r.n_current) }} rows) ·
{{ r.columns|length }} columns compared, {{ drifted|length }} drifted
({{ pct(r.share_drifted) }}) · computed in {{ "%.2f"|format(r.seconds) }} s · {{ created }}</p>
<p class="rule">{{ r.rule }}</p>
<p class="key">bars:<span style="background: {{ ref_color }}"></span>reference
<span style="background: {{ cur_color }}"></span>current (share of each table's rows)</p>

<h2 id="columns">Columns</h2>
<table>
<tr><th>column</th><th>kind</th><th>test</th><th>effect size</th><th>threshold</th>
<th>p-value</th><th>drift</th><th>missing (ref → cur)</th><th>out of range / unseen</th></tr>
{% for c in ordered %}
<tr><td><a href="#col-{{ loop.index }}">{{ c.column }}</a></td><td>{{ c.kind }}</td>
<td>{{ c.test }}</td><td>{{ num(c.effect_size) }}</td><td>{{ num(c.threshold) }}</td>
<td>{{ pval(c.p_value) }}</td>
<td class="{{ 'drift' if c.drifted else 'ok' }}">{{ 'yes' if c.drifted else 'no' }}</td>
<td>{{ pct(c.missing_rate_ref) }} → {{ pct(c.missing_rate_cur) }}</td>
<td>{{ odd(c) }}</td></tr>
{% endfor %}
</table>
{% if r.skipped %}<p class="meta">Not compared:
{% for name, why in r.skipped %}{{ name }} ({{ why }}){{ ", " if not loop.last }}{% endfor %}</p>
{% endif %}
{% if r.ignored_columns %}<p class="meta">Only in the current table (ignored):
{{ r.ignored_columns|join(", ") }}</p>{% endif %}

<h2 id="multivariate">Multivariate (domain classifier)</h2>
{% set mv = r.multivariate %}
{% if mv is none %}<p class="meta">Not run (multivariate=False).</p>
{% elif mv.skipped %}<p class="meta">Not run: {{ mv.skipped }}.</p>
{% else %}
<p>A LightGBM classifier told current rows from reference rows with a cross-validated ROC AUC of
<b>{{ num(mv.auc) }}</b> ({{ mv.folds }} folds, {{ "{:,}".format(mv.n_reference) }} reference and
{{ "{:,}".format(mv.n_current) }} current rows); threshold {{ num(mv.threshold) }} (null quantile
{{ num(mv.null_threshold) }}, minimum {{ num(mv.min_auc) }}): <span class="{{ 'drift' if
mv.drifted else 'ok' }}">{{ 'drift' if mv.drifted else 'no drift' }}</span>.</p>
{% if mv.top_columns %}<table>
<tr><th>column the classifier relies on</th><th>share of gain</th></tr>
{% for name, share in mv.top_columns %}<tr><td>{{ name }}</td><td>{{ pct(share) }}</td></tr>
{% endfor %}</table>{% endif %}
{% endif %}

<h2 id="distributions">Distributions</h2>
<div class="cards">
{% for c, image in cards %}
<div class="card" id="col-{{ loop.index }}">
<h3>{{ c.column }} <span class="{{ 'drift' if c.drifted else 'ok' }}">{{ 'drift' if c.drifted
else 'no drift' }}</span></h3>
{% if image %}
<img alt="{{ c.column }}: reference and current" src="data:image/png;base64,{{ image }}">
{% endif %}
<p>{{ c.test }} {{ num(c.effect_size) }} vs threshold {{ num(c.threshold) }}
(null {{ num(c.null_threshold) }}, minimum {{ num(c.min_effect) }}); p {{ pval(c.p_value) }}</p>
{% if c.mean_shift is not none %}<p>mean moved by {{ num(c.mean_shift) }} reference standard
deviations</p>{% endif %}
<p>missing {{ pct(c.missing_rate_ref) }} → {{ pct(c.missing_rate_cur) }} · {{ odd(c) }}</p>
{% if c.unseen_categories %}<p>unseen: {% for v, n in c.unseen_categories %}{{ v }}
({{ "{:,}".format(n) }}){{ ", " if not loop.last }}{% endfor %}</p>{% endif %}
</div>
{% endfor %}
</div>
</body>
</html>
"""


def _png(figure: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(c: ColumnDrift) -> str | None:
    from matplotlib.figure import Figure

    h = c.histogram
    if h is None or not h.reference:
        return None
    if h.edges is not None:
        edges = list(h.edges)
        if h.datetime:  # nanoseconds -> matplotlib's days
            edges = [e / 86_400e9 for e in edges]
        widths = [b - a for a, b in itertools.pairwise(edges)]
        figure = Figure(figsize=(4.4, 2.1))
        axes = figure.add_subplot()
        if h.datetime:
            axes.xaxis_date()
            figure.autofmt_xdate()
        axes.bar(edges[:-1], h.reference, width=widths, align="edge", color=_REFERENCE, alpha=0.55)
        if h.current:
            axes.bar(edges[:-1], h.current, width=widths, align="edge", color=_CURRENT, alpha=0.55)
        axes.set_ylabel("share of rows", fontsize=7)
        axes.tick_params(labelsize=7)
        return _png(figure)
    labels = [str(v)[:22] for v in (h.labels or ())]
    n = len(labels)
    figure = Figure(figsize=(4.4, 0.5 + 0.24 * n))
    axes = figure.add_subplot()
    positions = list(range(n))[::-1]
    reference = list(h.reference) + [0.0] * (n - len(h.reference))
    axes.barh([p + 0.2 for p in positions], reference, height=0.4, color=_REFERENCE)
    if h.current:
        axes.barh([p - 0.2 for p in positions], h.current, height=0.4, color=_CURRENT)
    axes.set_yticks(positions, labels)
    axes.tick_params(labelsize=7)
    axes.set_xlabel("share of rows", fontsize=7)
    return _png(figure)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _pval(value: float | None) -> str:
    if value is None:
        return "-"
    return "< 1e-300" if value < 1e-300 else f"{value:.3g}"


def _odd(c: ColumnDrift) -> str:
    if c.out_of_range_share is not None:
        return f"{c.out_of_range_share:.1%} out of range"
    if c.unseen_share is not None:
        return f"{c.unseen_share:.1%} unseen"
    return ""


def render_html(report: DriftReport) -> str:
    """The HTML text of ``report`` (a complete document with no external reference)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    ordered = sorted(
        report.columns,
        key=lambda c: (not c.drifted, -(c.effect_size / c.threshold if c.threshold else 0.0)),
    )
    return env.from_string(_TEMPLATE).render(
        r=report,
        verdict="drift" if report.drifted else "no drift",
        drifted=report.drifted_columns,
        ordered=ordered,
        cards=[(c, _figure(c)) for c in ordered],
        created=datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        ref_color=_REFERENCE,
        cur_color=_CURRENT,
        num=_num,
        pct=_pct,
        pval=_pval,
        odd=_odd,
    )


def write_html(report: DriftReport, path: str | Path) -> Path:
    """Write the report's page to ``path`` (folders created) and return the path.

    Raises:
        InputError: the path cannot be written.
    """
    target = Path(path)
    text = render_html(report)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"Cannot write the drift report to {target}: {e.strerror}") from None
    return target
