"""The model card (``card.md``): the registry's facts about a version, followed by the
evaluation's own card when one was given (``forgeml.evaluate.model_card``)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["card_html", "render_card"]

_TEMPLATE = """\
# {{ m.name }}@{{ m.version }}

{{ m.description or "No description given." }}

| | |
|---|---|
| task | {{ m.task or "-" }} |
| flavor | {{ m.flavor }} ({{ m.model.format }}{% if m.model.unsafe_format %}, pickle: \
loads only after its digest is verified{% endif %}) |
| estimator | {{ m.model.estimator }} |
| registered | {{ m.created_by or "-" }}, {{ m.created_at_text }} |
{%- if m.signature.output.classes is not none %}
| classes | {{ m.signature.output.classes | join(", ") }} |
{%- endif %}
{%- if m.decision %}
| decision threshold | {{ num(m.decision.threshold) }} on P({{ m.signature.output.classes[1] }}), \
{{ m.decision.source }}{% if m.decision.metric %} for {{ m.decision.metric }}{% endif %}\
{% if m.decision.reason %}: {{ m.decision.reason }}{% endif %} |
{%- endif %}

## Data and lineage

- training dataset: {{ m.lineage.dataset or "not recorded" }}
- training run: {{ m.lineage.run_id or "not recorded" }}
- code revision: {{ m.lineage.code_revision or "not recorded" }}
{%- if m.reference %}
- drift baseline: {{ m.reference.rows }} rows sampled from {{ m.reference.of_rows }}
{%- endif %}

## Inputs ({{ m.signature.inputs.columns | length }} columns, from the {{ m.signature.source }})

| column | kind | missing values | categories or range |
|---|---|---|---|
{%- for c in m.signature.inputs.columns %}
| {{ c.name }} | {{ c.kind }} | {{ "allowed" if c.nullable else "refused" }} | {{ detail(c) }} |
{%- endfor %}
{% if m.pii and m.pii.columns %}
## Personal data

The training data was stored under this PII policy: the model, its reference sample and its
prediction log hold only what it leaves (hashes with key {{ m.pii.key_id or "-" }}).

| column | stored as | why |
|---|---|---|
{%- for name, r in m.pii.columns.items() %}
| {{ name }} | {{ stored_as.get(r.action, r.action) }} | {{ r.reason }} |
{%- endfor %}
{% endif %}
## Metrics

{% if m.metrics -%}
| metric | value | interval |
|---|---|---|
{%- for name, v in m.metrics | dictsort %}
| {{ name }} | {{ num(v.value) }} | {{ interval(v) }} |
{%- endfor %}
{%- else -%}
No metrics recorded.
{%- endif %}
{% if evaluation %}
## Evaluation

{{ evaluation }}
{%- endif %}
"""


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _interval(value: dict[str, Any]) -> str:
    low, high = value.get("lower"), value.get("upper")
    if low is None or high is None or _num(low) == "-" or _num(high) == "-":
        return "-"
    return f"{_num(low)} .. {_num(high)}"


def _detail(column: dict[str, Any]) -> str:
    categories = column.get("categories")
    if categories is not None:
        shown = ", ".join(str(c) for c in categories[:8])
        return shown + (f" (+{len(categories) - 8})" if len(categories) > 8 else "")
    if column.get("min") is not None or column.get("max") is not None:
        return f"{_num(column.get('min'))} .. {_num(column.get('max'))}"
    return "-"


def render_card(manifest: dict[str, Any], evaluation: str | None = None) -> str:
    """``card.md`` for a bundle's manifest.

    Args:
        manifest: the bundle's manifest (name and version included).
        evaluation: the evaluation's card in Markdown; its headings are nested one level down.
    """
    from datetime import UTC, datetime

    import jinja2

    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True)  # Markdown output
    created = manifest.get("created_at")
    text = (
        datetime.fromtimestamp(created / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        if created
        else "-"
    )
    nested = None
    if evaluation:
        nested = "\n".join(
            "#" + line if line.startswith("#") else line for line in evaluation.splitlines()
        )
    return env.from_string(_TEMPLATE).render(
        m={**manifest, "created_at_text": text},
        evaluation=nested,
        num=_num,
        interval=_interval,
        detail=_detail,
        stored_as={"hash": "keyed hash", "mask": "present / missing only", "keep": "given"},
    )


def card_html(markdown: str, title: str) -> str:
    """A standalone HTML page of a card (Markdown rendered with HTML in it escaped)."""
    import html

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:.25rem .5rem;text-align:left}</style></head>\n<body>\n"
        f"{body}</body></html>\n"
    )
