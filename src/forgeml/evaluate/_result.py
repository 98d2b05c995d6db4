"""``EvaluationReport``, what ``evaluate`` returns, and the model card read off it.

The report is plain data; the HTML report (``_report``) and ``evaluate`` itself (``_evaluate``)
import it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forgeml._json import finite
from forgeml.evaluate._card import ModelCard
from forgeml.evaluate._fairness import FairnessReport
from forgeml.evaluate._metrics import HIGHER_IS_BETTER, Metrics
from forgeml.evaluate._slices import Slice

__all__ = ["EvaluationReport", "model_card"]

_SLICES_SHOWN = 5
_FEATURES_SHOWN = 10
# A slice this much worse than all rows is listed as a limitation (absolute for scores in
# [0, 1], relative for errors).
_SLICE_GAP = 0.05


@dataclass(frozen=True)
class EvaluationReport:
    """The outcome of ``evaluate``. Immutable.

    Attributes:
        model_name: the model's name.
        task: ``binary``, ``multiclass`` or ``regression``.
        columns: the input columns.
        metrics: overall metrics with intervals.
        slices: metrics per slice, worst first.
        fairness: the audit of the sensitive columns (None without any, or for regression).
        importance: (column, mean |SHAP|), largest first.
        explanation_method: the algorithm behind ``importance``.
        plots: plot name -> PNG path (empty, like ``report_path`` and ``output_dir``, when
            the files were written for a run only: its ``evaluation`` artifact holds them).
        report_path: the HTML report.
        output_dir: the folder holding every file.
        dataset_name: the evaluation data's name, if given.
        intended_use: what the model is for, if given.
        notes: what could not be computed and why.
        timings: seconds per step and ``total``.
        run_id: the run the evaluation was logged to.
        threshold: the model's own decision threshold (binary), when it has one; ``metrics``
            are at that threshold.
        metrics_at_default: a binary model's label metrics at the 0.5 threshold, when its own
            threshold differs (no intervals).
        rows: which rows were scored and how many of them the model was trained on.
        evaluated_at: when the evaluation ran (milliseconds since the epoch, UTC).
    """

    model_name: str
    task: str
    columns: tuple[str, ...]
    metrics: Metrics
    slices: tuple[Slice, ...]
    fairness: FairnessReport | None
    importance: tuple[tuple[str, float], ...]
    explanation_method: str
    plots: tuple[tuple[str, Path], ...] = ()
    report_path: Path | None = None
    output_dir: Path | None = None
    dataset_name: str | None = None
    intended_use: str = ""
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    threshold: float | None = None
    metrics_at_default: Metrics | None = None
    rows: str | None = None
    evaluated_at: int | None = None

    def card(
        self,
        *,
        intended_use: str | None = None,
        out_of_scope: str = "",
        limitations: Sequence[str] = (),
    ) -> ModelCard:
        """Model-card content from this evaluation (see ``model_card``)."""
        return model_card(
            self, intended_use=intended_use, out_of_scope=out_of_scope, limitations=limitations
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None)."""
        return finite(
            {
                "model_name": self.model_name,
                "task": self.task,
                "dataset_name": self.dataset_name,
                "columns": list(self.columns),
                "metrics": self.metrics.to_dict(),
                "slices": [s.to_dict() for s in self.slices],
                "fairness": None if self.fairness is None else self.fairness.to_dict(),
                "importance": [[k, v] for k, v in self.importance],
                "explanation_method": self.explanation_method,
                "plots": {k: str(v) for k, v in self.plots},
                "report_path": None if self.report_path is None else str(self.report_path),
                "notes": list(self.notes),
                "timings": dict(self.timings),
                "run_id": self.run_id,
                "threshold": self.threshold,
                "metrics_at_default_threshold": None
                if self.metrics_at_default is None
                else self.metrics_at_default.to_dict(),
                "rows": self.rows,
                "evaluated_at": self.evaluated_at,
            }
        )


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
