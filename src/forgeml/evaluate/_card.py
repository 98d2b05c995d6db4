"""Model-card content: a structured summary of an evaluation that a registry renders.

``ModelCard`` holds plain values only (text, numbers, tuples), so it serialises to JSON with
``to_dict`` and renders to Markdown with ``to_markdown`` without the objects it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from forgeml.evaluate._metrics import HIGHER_IS_BETTER, MetricValue

if TYPE_CHECKING:
    from forgeml.evaluate._evaluate import EvaluationReport

__all__ = ["ModelCard", "model_card"]

_SLICES_SHOWN = 5
_FEATURES_SHOWN = 10
# A slice this much worse than all rows is listed as a limitation (absolute for scores in
# [0, 1], relative for errors).
_SLICE_GAP = 0.05


@dataclass(frozen=True)
class ModelCard:
    """What a model is for, what it was evaluated on, how well it does, for whom it fails.

    Attributes:
        model_name: the model's name.
        task: ``binary``, ``multiclass`` or ``regression``.
        intended_use: what the model is meant for (given by its owner).
        out_of_scope: uses it is not meant for.
        data: facts about the evaluation data (rows, columns, dataset, class balance).
        metrics: overall metrics with their intervals.
        confidence: coverage of the intervals.
        slices: the worst slices.
        fairness: per sensitive column: disparities and findings.
        explanations: the most important columns (mean |SHAP|) and the method used.
        limitations: known limits, written from the evaluation and by the owner.
    """

    model_name: str
    task: str
    intended_use: str
    out_of_scope: str
    data: Mapping[str, Any]
    metrics: tuple[MetricValue, ...]
    confidence: float
    slices: tuple[Mapping[str, Any], ...] = ()
    fairness: tuple[Mapping[str, Any], ...] = ()
    explanations: Mapping[str, Any] = field(default_factory=dict)
    limitations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "model_name": self.model_name,
            "task": self.task,
            "intended_use": self.intended_use,
            "out_of_scope": self.out_of_scope,
            "data": dict(self.data),
            "metrics": [m.to_dict() for m in self.metrics],
            "confidence": self.confidence,
            "slices": [dict(s) for s in self.slices],
            "fairness": [dict(f) for f in self.fairness],
            "explanations": dict(self.explanations),
            "limitations": list(self.limitations),
        }

    def to_markdown(self) -> str:
        """The card as Markdown (``card.md`` of a model bundle)."""
        level = f"{self.confidence:.0%}"
        lines = [f"# Model card: {self.model_name}", "", f"Task: {self.task}", ""]
        lines += ["## Intended use", "", self.intended_use or "Not stated.", ""]
        if self.out_of_scope:
            lines += ["Out of scope: " + self.out_of_scope, ""]
        lines += ["## Evaluation data", ""]
        lines += [f"- {k.replace('_', ' ')}: {_text(v)}" for k, v in self.data.items()]
        lines += ["", f"## Metrics ({level} bootstrap intervals)", ""]
        lines += ["| metric | value | interval |", "|---|---|---|"]
        for m in self.metrics:
            lines.append(f"| {m.name} | {_num(m.value)} | {_num(m.lower)} .. {_num(m.upper)} |")
        if self.slices:
            lines += ["", "## Worst slices", ""]
            lines += [
                "| column | value | rows | metric | value | gap |",
                "|---|---|---|---|---|---|",
            ]
            for s in self.slices:
                lines.append(
                    f"| {s['column']} | {s['value']} | {s['size']} | {s['metric']} | "
                    f"{_num(s['metrics'][s['metric']])} | {_num(s['gap'], signed=True)} |"
                )
        if self.fairness:
            lines += ["", "## Fairness", ""]
            for f in self.fairness:
                lines.append(f"### {f['column']}")
                lines.append("")
                for name, d in f["disparities"].items():
                    lines.append(
                        f"- {name.replace('_', ' ')}: {_num(d['value'])} "
                        f"({_num(d['lower'])} .. {_num(d['upper'])})"
                    )
                for message in f["findings"]:
                    lines.append(f"- finding: {message}")
                lines.append("")
        if self.explanations.get("importance"):
            lines += ["", f"## Explanations ({self.explanations.get('method', '')})", ""]
            lines += ["| column | mean abs SHAP |", "|---|---|"]
            for name, value in self.explanations["importance"]:
                lines.append(f"| {name} | {_num(value)} |")
        lines += ["", "## Limitations", ""]
        lines += [f"- {text}" for text in self.limitations] or ["- None recorded."]
        return "\n".join(lines).rstrip() + "\n"


def _num(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def model_card(
    report: EvaluationReport,
    *,
    intended_use: str | None = None,
    out_of_scope: str = "",
    limitations: Sequence[str] = (),
) -> ModelCard:
    """Model-card content from an evaluation.

    Args:
        report: the evaluation.
        intended_use: what the model is for (default: the one given to ``evaluate``).
        out_of_scope: uses the model is not meant for.
        limitations: limits known to the owner, listed before the ones the evaluation found.

    Returns:
        the card.
    """
    metrics = report.metrics
    found: list[str] = list(limitations)
    found.append(
        f"Evaluated on {metrics.n_rows} rows; intervals are {metrics.confidence:.0%} bootstrap "
        f"percentile intervals over {metrics.n_bootstrap} replicates (seed {metrics.seed})."
    )
    if metrics.n_rows < 1000:
        found.append("Fewer than 1,000 evaluation rows: the intervals are wide.")
    for s in report.slices[:_SLICES_SHOWN]:
        higher = HIGHER_IS_BETTER.get(s.metric, True)
        worse_by = -s.gap if higher else s.gap
        # scores in [0, 1] compare in absolute terms, errors relative to all rows' error
        scale = 1.0 if higher else max(abs(s[s.metric] - s.gap), 1e-12)
        if np.isfinite(worse_by) and worse_by / scale > _SLICE_GAP:
            found.append(
                f"Worse on {s.column} = {s.value} ({s.size} rows): {s.metric} "
                f"{s[s.metric]:.4g} ({s.gap:+.4g} against all rows)."
            )
    fairness: list[dict[str, Any]] = []
    if report.fairness is not None:
        for audit in report.fairness.audits:
            fairness.append(
                {
                    "column": audit.column,
                    "groups": {g.group: g.size for g in audit.groups},
                    "disparities": {d.name: d.to_dict() for d in audit.disparities},
                    "findings": [f.message for f in audit.findings],
                }
            )
        n_findings = len(report.fairness.findings)
        if n_findings:
            found.append(
                f"The fairness audit flagged {n_findings} finding(s); see the fairness section."
            )
    found.extend(report.notes)
    return ModelCard(
        model_name=report.model_name,
        task=report.task,
        intended_use=intended_use if intended_use is not None else report.intended_use,
        out_of_scope=out_of_scope,
        data={
            "dataset": report.dataset_name or "not named",
            "rows": metrics.n_rows,
            "columns": len(report.columns),
            **(
                {"class_counts": {str(c.label): c.support for c in metrics.per_class}}
                if metrics.per_class
                else {}
            ),
        },
        metrics=metrics.values,
        confidence=metrics.confidence,
        slices=tuple(s.to_dict() for s in report.slices[:_SLICES_SHOWN]),
        fairness=tuple(fairness),
        explanations={
            "method": report.explanation_method,
            "importance": [(k, v) for k, v in report.importance[:_FEATURES_SHOWN]],
        },
        limitations=tuple(found),
    )
