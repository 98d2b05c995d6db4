"""Fairness audit of binary decisions: per-group rates, disparities, intervals and findings.

Point estimates come from Fairlearn (``MetricFrame`` with ``selection_rate``, accuracy,
``true_positive_rate``, ``false_positive_rate``, ``false_negative_rate`` and ``count``;
``demographic_parity_difference`` / ``_ratio`` and ``equalized_odds_difference``). Intervals
come from a vectorised bootstrap: each replicate's per-group confusion counts are one matrix
product of the resampling counts with a one-hot (group, label, decision) matrix, so a thousand
replicates over every group cost about as much as one pass of Fairlearn's own bootstrap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError
from forgeml.evaluate._inputs import as_labels, as_scores, check_same_length, label_text
from forgeml.evaluate._metrics import MetricValue, bootstrap_counts

__all__ = [
    "FairnessReport",
    "FairnessThresholds",
    "Finding",
    "GroupMetrics",
    "SensitiveAudit",
    "audit_predictions",
    "fairness_audit",
]

GROUP_METRICS = ("selection_rate", "accuracy", "tpr", "fpr", "fnr")
DISPARITIES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)
MISSING_GROUP = "(missing)"


@dataclass(frozen=True, slots=True)
class FairnessThresholds:
    """Where a disparity becomes a finding.

    Attributes:
        demographic_parity_difference: flag a larger gap in selection rates between groups.
        demographic_parity_ratio: flag a smaller ratio of the lowest to the highest selection
            rate (0.8 is the "four-fifths rule").
        equalized_odds_difference: flag a larger worst gap in TPR or FPR between groups.
        group_gap: flag a group whose selection rate, accuracy, TPR, FPR or FNR differs from
            all rows' by more than this.
        min_group_size: groups with fewer rows are reported but never flagged on their own.
    """

    demographic_parity_difference: float = 0.1
    demographic_parity_ratio: float = 0.8
    equalized_odds_difference: float = 0.1
    group_gap: float = 0.1
    min_group_size: int = 30

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready dict."""
        return {
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
            "group_gap": self.group_gap,
            "min_group_size": self.min_group_size,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """A disparity over its threshold."""

    column: str
    metric: str
    value: float
    threshold: float
    group: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "column": self.column,
            "metric": self.metric,
            "group": self.group,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    """Rates of one group of one sensitive column, with intervals."""

    group: str
    size: int
    values: tuple[MetricValue, ...]

    def __getitem__(self, name: str) -> MetricValue:
        for v in self.values:
            if v.name == name:
                return v
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "group": self.group,
            "size": self.size,
            "metrics": {v.name: v.to_dict() for v in self.values},
        }


@dataclass(frozen=True)
class SensitiveAudit:
    """The audit of one sensitive column."""

    column: str
    groups: tuple[GroupMetrics, ...]
    overall: tuple[MetricValue, ...]
    disparities: tuple[MetricValue, ...]
    findings: tuple[Finding, ...]

    def group(self, name: str) -> GroupMetrics:
        """The metrics of one group (by its label as text)."""
        for g in self.groups:
            if g.group == str(name):
                return g
        raise KeyError(f"no group {name!r} in {self.column!r}")

    def disparity(self, name: str) -> MetricValue:
        """One of ``DISPARITIES``."""
        for v in self.disparities:
            if v.name == name:
                return v
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "column": self.column,
            "groups": [g.to_dict() for g in self.groups],
            "overall": {v.name: v.to_dict() for v in self.overall},
            "disparities": {v.name: v.to_dict() for v in self.disparities},
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class FairnessReport:
    """The audit of every sensitive column. Immutable."""

    audits: tuple[SensitiveAudit, ...]
    positive_label: Any
    n_rows: int
    thresholds: FairnessThresholds = field(default_factory=FairnessThresholds)
    confidence: float = 0.95
    n_bootstrap: int = 0
    seed: int = 0

    def __getitem__(self, column: str) -> SensitiveAudit:
        for a in self.audits:
            if a.column == column:
                return a
        raise KeyError(f"no audit of {column!r}")

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every column."""
        return tuple(f for a in self.audits for f in a.findings)

    def frame(self) -> pd.DataFrame:
        """One row per (column, group): size and each rate with its interval."""
        rows = []
        for audit in self.audits:
            for g in audit.groups:
                row: dict[str, Any] = {"column": audit.column, "group": g.group, "size": g.size}
                for v in g.values:
                    row[v.name] = v.value
                    row[f"{v.name}_lower"] = v.lower
                    row[f"{v.name}_upper"] = v.upper
                rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        label = self.positive_label
        return {
            "positive_label": label.item() if isinstance(label, np.generic) else label,
            "n_rows": self.n_rows,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "thresholds": self.thresholds.to_dict(),
            "audits": [a.to_dict() for a in self.audits],
            "findings": [f.to_dict() for f in self.findings],
        }


def _positive_label(labels: np.ndarray, positive_label: Any) -> Any:
    distinct = pd.unique(labels).tolist()
    if len(distinct) > 2:
        raise InputError(
            "A fairness audit needs binary labels; the labels have "
            f"{len(distinct)} distinct values: {label_text(distinct)}"
        )
    if positive_label is None:
        # scikit-learn's convention: the larger of two labels is the positive class
        if set(distinct) <= {0, 1}:
            return 1
        return sorted(distinct)[-1]
    if positive_label in distinct:
        return positive_label
    # text from a command line against numbers or booleans read from a file
    by_text = {str(v): v for v in distinct}
    if str(positive_label) in by_text:
        return by_text[str(positive_label)]
    raise InputError(
        f"The positive label {positive_label!r} is not among the labels {label_text(distinct)}"
    )


def _sensitive_columns(sensitive: Any, n: int, max_groups: int) -> dict[str, np.ndarray]:
    if isinstance(sensitive, pd.Series):
        frame = sensitive.to_frame(name=str(sensitive.name or "sensitive"))
    elif isinstance(sensitive, pd.DataFrame):
        frame = sensitive
    elif isinstance(sensitive, Mapping):
        frame = pd.DataFrame({str(k): np.asarray(v) for k, v in sensitive.items()})
    else:
        frame = pd.DataFrame({"sensitive": np.asarray(sensitive)})
    if frame.shape[1] == 0:
        raise InputError("Name at least one sensitive column")
    columns: dict[str, np.ndarray] = {}
    for name in frame.columns:
        values = frame[name]
        check_same_length(y_true=np.empty(n), **{f"sensitive {name}": values})
        text = values.astype(object).where(values.notna(), MISSING_GROUP).astype(str)
        groups = pd.unique(text)
        if len(groups) < 2:
            raise InputError(
                f"The sensitive column {name!r} has a single group ({label_text(groups)}); "
                "a fairness audit compares at least two groups"
            )
        if len(groups) > max_groups:
            raise InputError(
                f"The sensitive column {name!r} has {len(groups)} distinct values (at most "
                f"{max_groups}); bin a numeric column into ranges first"
            )
        columns[str(name)] = text.to_numpy()
    return columns


def fairness_audit(
    y_true: Any,
    y_pred: Any,
    sensitive: Any,
    *,
    positive_label: Any = None,
    thresholds: FairnessThresholds | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    max_groups: int = 50,
) -> FairnessReport:
    """Audit binary decisions for each sensitive column.

    For every group: its size, selection rate, accuracy, TPR, FPR and FNR; for every column:
    demographic parity difference and ratio and equalized odds difference; all with bootstrap
    intervals. Findings are the disparities beyond ``thresholds`` and the groups (of at least
    ``thresholds.min_group_size`` rows) whose rates differ from all rows' by more than
    ``thresholds.group_gap``. Missing sensitive values form a group of their own.

    Args:
        y_true: true labels (two distinct values at most).
        y_pred: decisions, in the same labels.
        sensitive: a DataFrame (one audit per column), a Series, a mapping of name to values,
            or one array.
        positive_label: the favourable/positive label (default: 1 for 0/1 labels, else the
            larger of the two labels).
        thresholds: where findings start (default ``FairnessThresholds()``).
        n_bootstrap: bootstrap replicates for the intervals (0: none).
        confidence: coverage of the intervals.
        seed: seed of the bootstrap.
        max_groups: refuse a sensitive column with more distinct values than this.

    Returns:
        the report.

    Raises:
        InputError: inputs of different lengths, labels that are not binary, decisions outside
            the labels, a sensitive column with a single group or too many groups.
    """
    if n_bootstrap < 0:
        raise InputError(f"The `n_bootstrap` parameter must be >= 0; got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"The `confidence` parameter must be in (0, 1); got {confidence}")
    thresholds = thresholds or FairnessThresholds()
    truth = as_labels(y_true, "y_true")
    pred = as_labels(y_pred, "y_pred")
    check_same_length(y_true=truth, y_pred=pred)
    positive = _positive_label(truth, positive_label)
    labels = set(pd.unique(truth).tolist()) | {positive}
    outside = [v for v in pd.unique(pred).tolist() if v not in labels]
    if outside:
        raise InputError(
            f"`y_pred` has values that are not labels: {label_text(outside)}; "
            f"the labels are {label_text(sorted(labels, key=str))}"
        )
    y = (truth == positive).astype(np.int64)
    p = (pred == positive).astype(np.int64)
    return _audit(y, p, sensitive, positive, thresholds, n_bootstrap, confidence, seed, max_groups)


def _audit(
    y: np.ndarray,
    p: np.ndarray,
    sensitive: Any,
    positive: Any,
    thresholds: FairnessThresholds,
    n_bootstrap: int,
    confidence: float,
    seed: int,
    max_groups: int,
) -> FairnessReport:
    columns = _sensitive_columns(sensitive, len(y), max_groups)
    audits = tuple(
        _audit_column(name, values, y, p, thresholds, n_bootstrap, confidence, seed)
        for name, values in columns.items()
    )
    return FairnessReport(
        audits=audits,
        positive_label=positive,
        n_rows=len(y),
        thresholds=thresholds,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def _rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Rates from confusion counts [..., (tn, fp, fn, tp)]; NaN where undefined."""
    tn, fp, fn, tp = (counts[..., i] for i in range(4))
    total = tn + fp + fn + tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "selection_rate": (tp + fp) / total,
            "accuracy": (tp + tn) / total,
            "tpr": tp / (tp + fn),
            "fpr": fp / (fp + tn),
            "fnr": fn / (tp + fn),
        }


def _disparities(rates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Disparities across groups (last axis), ignoring groups where a rate is undefined."""

    def spread(x: np.ndarray) -> np.ndarray:
        return np.fmax.reduce(x, axis=-1) - np.fmin.reduce(x, axis=-1)

    selection = rates["selection_rate"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.fmin.reduce(selection, axis=-1) / np.fmax.reduce(selection, axis=-1)
    return {
        "demographic_parity_difference": spread(selection),
        "demographic_parity_ratio": ratio,
        "equalized_odds_difference": np.fmax(spread(rates["tpr"]), spread(rates["fpr"])),
    }


def _audit_column(
    column: str,
    groups: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    thresholds: FairnessThresholds,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> SensitiveAudit:
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    frame = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "accuracy": accuracy_score,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=pd.Series(groups, name=column),
    )
    by_group = frame.by_group
    overall = frame.overall
    disparity_points = {
        "demographic_parity_difference": demographic_parity_difference(
            y, p, sensitive_features=groups
        ),
        "demographic_parity_ratio": demographic_parity_ratio(y, p, sensitive_features=groups),
        "equalized_odds_difference": equalized_odds_difference(y, p, sensitive_features=groups),
    }
    names = [str(g) for g in by_group.index]
    code_of = {g: i for i, g in enumerate(names)}
    codes = np.fromiter((code_of[g] for g in groups.tolist()), dtype=np.int64, count=len(groups))
    k = len(names)
    cell = np.zeros((len(y), k * 4))
    cell[np.arange(len(y)), codes * 4 + y * 2 + p] = 1.0  # (tn, fp, fn, tp) per group
    group_reps: dict[str, list[np.ndarray]] = {m: [] for m in GROUP_METRICS}
    overall_reps: dict[str, list[np.ndarray]] = {m: [] for m in GROUP_METRICS}
    disparity_reps: dict[str, list[np.ndarray]] = {m: [] for m in DISPARITIES}
    if n_bootstrap:
        for w in bootstrap_counts(len(y), n_bootstrap, seed):
            counts = (w @ cell).reshape(len(w), k, 4)
            rates = _rates(counts)
            for m in GROUP_METRICS:
                group_reps[m].append(rates[m])
            for m, v in _rates(counts.sum(axis=1)).items():
                overall_reps[m].append(v)
            for m, v in _disparities(rates).items():
                disparity_reps[m].append(v)
    alpha = (1.0 - confidence) / 2.0

    def interval(reps: list[np.ndarray], column_index: int | None = None) -> tuple[float, float]:
        if not reps:
            return float("nan"), float("nan")
        values = np.concatenate(reps)
        if column_index is not None:
            values = values[:, column_index]
        values = values[np.isfinite(values)]
        if not len(values):
            return float("nan"), float("nan")
        lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
        return float(lo), float(hi)

    group_results = []
    for j, name in enumerate(names):
        values = tuple(
            MetricValue(m, float(by_group.loc[by_group.index[j], m]), *interval(group_reps[m], j))
            for m in GROUP_METRICS
        )
        group_results.append(
            GroupMetrics(
                group=name, size=int(by_group.loc[by_group.index[j], "count"]), values=values
            )
        )
    overall_values = tuple(
        MetricValue(m, float(overall[m]), *interval(overall_reps[m])) for m in GROUP_METRICS
    )
    disparities = tuple(
        MetricValue(m, float(disparity_points[m]), *interval(disparity_reps[m]))
        for m in DISPARITIES
    )
    findings = _findings(column, group_results, overall_values, disparities, thresholds)
    return SensitiveAudit(
        column=column,
        groups=tuple(group_results),
        overall=overall_values,
        disparities=disparities,
        findings=findings,
    )


def _findings(
    column: str,
    groups: Sequence[GroupMetrics],
    overall: tuple[MetricValue, ...],
    disparities: tuple[MetricValue, ...],
    thresholds: FairnessThresholds,
) -> tuple[Finding, ...]:
    found: list[Finding] = []
    for d in disparities:
        limit = getattr(thresholds, d.name)
        over = d.value < limit if d.name.endswith("_ratio") else d.value > limit
        if over:
            relation = "below" if d.name.endswith("_ratio") else "above"
            found.append(
                Finding(
                    column=column,
                    metric=d.name,
                    value=d.value,
                    threshold=limit,
                    group=None,
                    message=(
                        f"{column}: {d.name.replace('_', ' ')} {d.value:.3f} is {relation} "
                        f"{limit:g} (interval {d.lower:.3f} .. {d.upper:.3f})"
                    ),
                )
            )
    all_rows = {v.name: v.value for v in overall}
    for g in groups:
        if g.size < thresholds.min_group_size:
            continue
        for v in g.values:
            gap = v.value - all_rows[v.name]
            if np.isfinite(gap) and abs(gap) > thresholds.group_gap:
                found.append(
                    Finding(
                        column=column,
                        metric=v.name,
                        value=v.value,
                        threshold=thresholds.group_gap,
                        group=g.group,
                        message=(
                            f"{column}={g.group} (n={g.size}): {v.name} {v.value:.3f} vs "
                            f"{all_rows[v.name]:.3f} for all rows ({gap:+.3f})"
                        ),
                    )
                )
    return tuple(found)


def audit_predictions(
    table: pd.DataFrame,
    *,
    label: str,
    sensitive: Sequence[str],
    score: str | None = None,
    prediction: str | None = None,
    threshold: float = 0.5,
    positive_label: Any = None,
    thresholds: FairnessThresholds | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> FairnessReport:
    """Audit a table of predictions (e.g. a scored CSV) without the model.

    Args:
        table: one row per decision.
        label: the column of true labels.
        sensitive: the sensitive columns to audit.
        score: a numeric score column; a row is a positive decision when its score is at least
            ``threshold``. Give ``score`` or ``prediction``, not both.
        prediction: a column of predicted labels.
        threshold: the decision threshold on ``score``.
        positive_label: the positive label (see ``fairness_audit``).
        thresholds: where findings start.
        n_bootstrap: bootstrap replicates.
        confidence: coverage of the intervals.
        seed: seed of the bootstrap.

    Returns:
        the report.

    Raises:
        InputError: a missing column, both or neither of ``score`` and ``prediction``, a score
            column that is not numeric, and the errors of ``fairness_audit``.
    """
    if (score is None) == (prediction is None):
        raise InputError("Give either a score column or a prediction column (exactly one)")
    if not sensitive:
        raise InputError("Name at least one sensitive column")
    wanted = [label, *(c for c in (score, prediction) if c is not None), *sensitive]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise InputError(
            f"Column(s) not in the table: {label_text(missing)}; it has "
            f"{label_text(list(table.columns), limit=12)}"
        )
    truth = as_labels(table[label], f"label column {label!r}")
    positive = _positive_label(truth, positive_label)
    if score is not None:
        column = table[score]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise InputError(
                f"The score column {score!r} must be numeric; got {column.dtype} values such as "
                f"{label_text(column.dropna().unique()[:3].tolist())}"
            )
        values = as_scores(column, f"score column {score!r}")
        if values.ndim != 1:
            raise InputError(f"The score column {score!r} must hold one number per row")
        if n_bootstrap < 0:
            raise InputError(f"The `n_bootstrap` parameter must be >= 0; got {n_bootstrap}")
        if not 0.0 < confidence < 1.0:
            raise InputError(f"The `confidence` parameter must be in (0, 1); got {confidence}")
        y = (truth == positive).astype(np.int64)
        p = (values >= threshold).astype(np.int64)
        return _audit(
            y,
            p,
            table[list(sensitive)],
            positive,
            thresholds or FairnessThresholds(),
            n_bootstrap,
            confidence,
            seed,
            50,
        )
    assert prediction is not None
    decisions = as_labels(table[prediction], f"prediction column {prediction!r}")
    return fairness_audit(
        truth,
        decisions,
        table[list(sensitive)],
        positive_label=positive,
        thresholds=thresholds,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )
