"""One self-contained HTML report: every figure inlined as a base64 PNG, styles inline, no
script, no link to anything outside the file, so it opens offline and can be archived as is.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeml.evaluate._result import EvaluationReport

__all__ = ["render_report", "write_report"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Evaluation: {{ r.model_name }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222;
       padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem;
margin-top: 2rem; }
.meta { color: #666; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #eee; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f6f6; }
.ci { color: #777; font-size: .8rem; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #666; font-size: .85rem; }
.finding { color: #a33; } .note { color: #555; }
</style>
</head>
<body>
<h1>Evaluation: {{ r.model_name }}</h1>
<p class="meta">task {{ r.task }} · {{ r.metrics.n_rows }} rows · {{ r.columns|length }} columns
{% if r.dataset_name %}· dataset {{ r.dataset_name }}{% endif %}
{% if r.evaluated_at %}· evaluated {{ when(r.evaluated_at) }}{% endif %}
· {{ pct(r.metrics.confidence) }} bootstrap intervals ({{ r.metrics.n_bootstrap }} replicates,
seed {{ r.metrics.seed }}) · computed in {{ "%.1f"|format(r.timings.get("total", 0)) }} s</p>
{% if r.rows %}<p class="meta"><strong>rows scored:</strong> {{ r.rows }}</p>{% endif %}

<h2 id="metrics">Metrics</h2>
<table>
<tr><th>metric</th><th>value</th><th>interval</th></tr>
{% for m in r.metrics.values %}
<tr><td>{{ m.name }}</td><td>{{ num(m.value) }}</td>
<td class="ci">{{ num(m.lower) }} .. {{ num(m.upper) }}</td></tr>
{% endfor %}
</table>
{% if r.metrics.per_class %}
<table>
<tr><th>class</th><th>support</th><th>precision</th><th>recall</th><th>F1</th></tr>
{% for c in r.metrics.per_class %}
<tr><td>{{ c.label }}</td><td>{{ c.support }}</td>
{% for v in c.values %}<td>{{ num(v.value) }} <span class="ci">{{ num(v.lower) }} ..
{{ num(v.upper) }}</span></td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}

<h2 id="plots">Plots</h2>
<div class="plots">
{% for name, data in images %}
<figure><img alt="{{ name }}" src="data:image/png;base64,{{ data }}">
<figcaption>{{ name.replace("_", " ") }}</figcaption></figure>
{% endfor %}
</div>

<h2 id="slices">Slices (worst first)</h2>
{% if r.slices %}
<table>
<tr><th>column</th><th>value</th><th>rows</th>{% for k, _ in r.slices[0].metrics %}
<th>{{ k }}</th>{% endfor %}<th>gap ({{ r.slices[0].metric }})</th></tr>
{% for s in r.slices[:max_slices] %}
<tr><td>{{ s.column }}</td><td>{{ s.value }}</td><td>{{ s.size }}</td>
{% for _, v in s.metrics %}<td>{{ num(v) }}</td>{% endfor %}<td>{{ signed(s.gap) }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="note">No slice has enough rows.</p>{% endif %}

<h2 id="fairness">Fairness</h2>
{% if r.fairness %}
{% for a in r.fairness.audits %}
<h3>{{ a.column }}</h3>
<table>
<tr><th>group</th><th>rows</th>{% for v in a.overall %}<th>{{ v.name }}</th>{% endfor %}</tr>
{% for g in a.groups %}
<tr><td>{{ g.group }}</td><td>{{ g.size }}</td>
{% for v in g.values %}<td>{{ num(v.value) }} <span class="ci">{{ num(v.lower) }} ..
{{ num(v.upper) }}</span></td>{% endfor %}</tr>
{% endfor %}
<tr><td><b>all rows</b></td><td>{{ r.fairness.n_rows }}</td>
{% for v in a.overall %}<td>{{ num(v.value) }}</td>{% endfor %}</tr>
</table>
<table>
<tr><th>disparity</th><th>value</th><th>interval</th></tr>
{% for d in a.disparities %}
<tr><td>{{ d.name }}</td><td>{{ num(d.value) }}</td>
<td class="ci">{{ num(d.lower) }} .. {{ num(d.upper) }}</td></tr>
{% endfor %}
</table>
{% for f in a.findings %}<p class="finding">{{ f.message }}</p>{% endfor %}
{% endfor %}
{% else %}<p class="note">Not audited: {{ fairness_reason }}</p>{% endif %}

<h2 id="explanations">Explanations</h2>
{% if r.importance %}
<p class="meta">mean |SHAP| per input column ({{ r.explanation_method }})</p>
<table>
<tr><th>column</th><th>mean |SHAP|</th></tr>
{% for name, value in r.importance[:30] %}<tr><td>{{ name }}</td><td>{{ num(value) }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="note">No explanation was computed.</p>{% endif %}

<h2 id="limitations">Limitations</h2>
<ul>{% for text in card.limitations %}<li>{{ text }}</li>{% endfor %}</ul>
</body>
</html>
"""


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4g}"


def _signed(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:+.4g}"


def render_report(
    report: EvaluationReport, images: Mapping[str, bytes], *, max_slices: int = 25
) -> str:
    """The HTML text of the report.

    Args:
        report: the evaluation.
        images: plot name -> PNG bytes, in display order.
        max_slices: slices listed.

    Returns:
        a complete HTML document with no external reference.
    """
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_TEMPLATE)
    encoded = [(name, base64.b64encode(data).decode("ascii")) for name, data in images.items()]
    if report.fairness is None:
        reason = next(
            (n for n in report.notes if "fairness" in n.lower()), "no sensitive column was named"
        )
    else:
        reason = ""
    return template.render(
        r=report,
        card=report.card(),
        images=encoded,
        max_slices=max_slices,
        fairness_reason=reason,
        num=_num,
        signed=_signed,
        pct=lambda x: f"{x:.0%}",
        when=_when,
    )


def _when(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def write_report(report: EvaluationReport, images: Mapping[str, bytes], path: str | Path) -> Path:
    """Write the report to ``path`` (UTF-8) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(report, images), encoding="utf-8")
    return target
