"""The HTML report of a version: a self-contained page (figures embedded as base64 PNG, styles
inline, no external resource) with each column's distribution, the quality findings and the
schema. Figures are drawn with matplotlib's Agg canvas directly, never through pyplot, so
report generation does not touch global plotting state."""

from __future__ import annotations

import base64
import io
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.data._profile import ColumnProfile, Profile
from forgeml.data._schema import ColumnKind
from forgeml.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from forgeml.data._version import DatasetVersion

__all__ = ["render_report"]

_COLOR = "#3b6ea5"


def _png(figure: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _column_figure(p: ColumnProfile) -> str | None:
    from matplotlib.figure import Figure

    if (
        p.histogram is not None
        and p.kind
        in (
            ColumnKind.NUMERIC,
            ColumnKind.INTEGER,
            ColumnKind.DATETIME,
            ColumnKind.IDENTIFIER,
        )
        and len(p.histogram.counts) > 1
    ):
        edges, counts = p.histogram.edges, p.histogram.counts
        figure = Figure(figsize=(4.2, 2.0))
        axes = figure.add_subplot()
        if p.kind is ColumnKind.DATETIME:
            import matplotlib.dates as mdates

            left = [mdates.date2num(datetime.fromtimestamp(e, tz=UTC)) for e in edges]
            axes.xaxis_date()
        else:
            left = list(edges)
        widths = [b - a for a, b in itertools.pairwise(left)]
        axes.bar(left[:-1], counts, width=widths, align="edge", color=_COLOR, edgecolor="white")
        axes.set_ylabel("rows")
        axes.tick_params(labelsize=7)
        if p.kind is ColumnKind.DATETIME:
            figure.autofmt_xdate()
        return _png(figure)
    if p.top:
        labels = [str(v)[:24] for v, _ in p.top][::-1]
        frequencies = [c for _, c in p.top][::-1]
        figure = Figure(figsize=(4.2, 0.35 + 0.22 * len(labels)))
        axes = figure.add_subplot()
        axes.barh(range(len(labels)), frequencies, color=_COLOR)
        axes.set_yticks(range(len(labels)), labels)
        axes.tick_params(labelsize=7)
        axes.set_xlabel("rows", fontsize=7)
        return _png(figure)
    return None


def _overview_figure(profile: Profile) -> str:
    from matplotlib.figure import Figure

    names = [c.name[:20] for c in profile.columns]
    missing = [100 * c.missing_share for c in profile.columns]
    with_target = profile.task is not None
    figure = Figure(figsize=(10, 2.6 * (2 if with_target else 1)))
    axes = figure.add_subplot(2 if with_target else 1, 1, 1)
    axes.bar(range(len(names)), missing, color="#b26a00")
    axes.set_ylabel("% missing", fontsize=8)
    axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    if with_target:
        assoc = [c.association or 0.0 for c in profile.columns]
        lower = figure.add_subplot(2, 1, 2)
        lower.bar(range(len(names)), assoc, color=_COLOR)
        lower.set_ylabel(f"association with {profile.target}"[:30], fontsize=8)
        lower.set_ylim(0, 1)
        lower.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    figure.tight_layout()
    return _png(figure)


def _thousands(value: Any) -> str:
    return f"{int(value):,}"


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_report(version: DatasetVersion, path: str | Path) -> Path:
    """Write the report of ``version`` to ``path`` (folders created); return the path.

    Raises:
        InputError: the version has no profile (a listing entry) or the path is not writable.
    """
    import jinja2

    from forgeml._version import __version__

    if version.profile is None or version.quality is None:
        raise InputError(f"{version.ref} was read without its profile; get it with data.get()")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("forgeml.data", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["thousands"] = _thousands
    environment.filters["num"] = _num
    profile = version.profile
    cards = [{"p": p, "image": _column_figure(p)} for p in profile.columns]
    created = datetime.fromtimestamp(version.created_at / 1000, tz=UTC).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    html = environment.get_template("report.html.j2").render(
        v=version,
        profile=profile,
        schema=version.schema,
        findings=version.quality.findings,
        cards=cards,
        overview=_overview_figure(profile),
        created=created,
        version=__version__,
    )
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
    except OSError as e:
        raise InputError(f"Cannot write the report to {target}: {e.strerror}") from e
    return target
