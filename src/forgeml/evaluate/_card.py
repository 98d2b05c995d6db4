"""Model-card content: a structured summary of an evaluation that a registry renders.

``ModelCard`` holds plain values only (text, numbers, tuples), so it serialises to JSON with
``to_dict`` and renders to Markdown with ``to_markdown`` without the objects it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgeml.evaluate._metrics import MetricValue

__all__ = ["ModelCard"]


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
