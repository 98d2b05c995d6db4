"""Metric values the loop decides on: on logged rows, on a model's fresh predictions, and the
paired bootstrap interval of a challenger's lead over its champion on the same rows."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError
from forgeml.metrics import MetricSpec, get_metric

__all__ = [
    "Lead",
    "Outputs",
    "challenger_passes",
    "estimated_accuracy",
    "independent_lead",
    "logged_outputs",
    "metric_value",
    "model_outputs",
    "paired_lead",
]


@dataclass(frozen=True, slots=True)
class Outputs:
    """What a model answered for some rows: labels (or values) and class probabilities."""

    predictions: np.ndarray
    proba: np.ndarray | None
    classes: tuple[Any, ...] | None


def logged_outputs(rows: pd.DataFrame, classes: Sequence[Any] | None) -> Outputs:
    """The outputs logged beside ``rows`` (``prediction`` and ``proba_<class>`` columns)."""
    proba = None
    if classes is not None:
        columns = [f"proba_{c}" for c in classes]
        if all(c in rows.columns for c in columns):
            proba = rows[columns].to_numpy(dtype=float)
    return Outputs(rows["prediction"].to_numpy(), proba, tuple(classes) if classes else None)


def model_outputs(model: Any, rows: pd.DataFrame) -> Outputs:
    """A loaded model's outputs for ``rows``."""
    classes = model.classes
    predictions, proba = model.predict_both(rows, probabilities=classes is not None)
    return Outputs(np.asarray(predictions), proba, tuple(classes) if classes else None)


def _truth_and_scores(
    spec: MetricSpec, y_true: np.ndarray, out: Outputs
) -> tuple[np.ndarray, np.ndarray]:
    if spec.reads == "value":
        return y_true.astype(float), out.predictions.astype(float)
    if spec.reads == "label":
        return np.asarray(y_true, dtype=object), np.asarray(out.predictions, dtype=object)
    if out.proba is None or out.classes is None:
        raise InputError(f"The metric {spec.name!r} needs class probabilities; none were given")
    index = {c: i for i, c in enumerate(out.classes)}
    codes = np.array([index.get(v, -1) for v in y_true])
    if (codes < 0).any():
        unknown = next(v for v, c in zip(y_true, codes, strict=True) if c < 0)
        raise InputError(f"The label {unknown!r} is none of the model's classes {out.classes}")
    if len(out.classes) == 2:
        return codes, out.proba[:, 1]
    return codes, out.proba


def metric_value(
    spec: MetricSpec, y_true: Any, out: Outputs, sample_weight: np.ndarray | None = None
) -> float:
    """``spec`` on ``y_true`` against ``out`` (labels, values or probabilities as it reads);
    NaN where the metric is undefined on these rows (AUC with one class present)."""
    truth, scores = _truth_and_scores(spec, np.asarray(y_true), out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(spec(truth, scores, sample_weight=sample_weight))
        except ValueError:
            return float("nan")


def estimated_accuracy(out: Outputs) -> float:
    """Confidence-based estimate of accuracy: the mean probability of the predicted class.

    For a calibrated classifier this is the expected share of correct answers, so it tracks
    accuracy before any label arrives (and drifts from it when calibration no longer holds).
    """
    if out.proba is None:
        raise InputError("An estimated accuracy needs class probabilities")
    return float(np.mean(out.proba.max(axis=1)))


@dataclass(frozen=True, slots=True)
class Lead:
    """A challenger's lead over its champion on the same rows, with a bootstrap interval.

    ``lead`` is positive when the challenger is better (whatever the metric's direction).
    """

    metric: str
    rows: int
    champion: float
    challenger: float
    lead: float
    lower: float
    upper: float
    confidence: float
    n_bootstrap: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "metric": self.metric,
            "rows": self.rows,
            "champion": self.champion,
            "challenger": self.challenger,
            "lead": self.lead,
            "lower": self.lower,
            "upper": self.upper,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
        }


def paired_lead(
    spec: MetricSpec,
    y_true: Any,
    champion: Outputs,
    challenger: Outputs,
    *,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Lead:
    """The challenger's lead on ``y_true`` with a paired percentile bootstrap interval.

    Both models are scored on the same resampled rows in every replicate (resampling counts
    used as sample weights), so the interval reflects the difference, not two independent
    noises.
    """
    y = np.asarray(y_true)
    n = len(y)
    if n == 0:
        raise InputError("No labelled rows to compare the champion and the challenger on")
    sign = 1.0 if spec.greater_is_better else -1.0
    a_true, a_scores = _truth_and_scores(spec, y, champion)
    b_true, b_scores = _truth_and_scores(spec, y, challenger)
    base_a = float(spec(a_true, a_scores))
    base_b = float(spec(b_true, b_scores))
    rng = np.random.default_rng(seed)
    fast = _vectorised(spec.name)
    if fast is not None:
        weights = np.stack(
            [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_bootstrap)]
        ).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            leads = sign * (fast(weights, b_true, b_scores) - fast(weights, a_true, a_scores))
        return _lead(spec, n, base_a, base_b, sign, leads, confidence, n_bootstrap)
    leads = np.empty(n_bootstrap)
    with warnings.catch_warnings():
        # a replicate may lack a class (AUC undefined): it is left out of the interval
        warnings.simplefilter("ignore")
        for i in range(n_bootstrap):
            weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
            try:
                a = float(spec(a_true, a_scores, sample_weight=weights))
                b = float(spec(b_true, b_scores, sample_weight=weights))
            except ValueError:
                a = b = float("nan")
            leads[i] = sign * (b - a)
    return _lead(spec, n, base_a, base_b, sign, leads, confidence, n_bootstrap)


def _lead(
    spec: MetricSpec,
    n: int,
    base_a: float,
    base_b: float,
    sign: float,
    leads: np.ndarray,
    confidence: float,
    n_bootstrap: int,
) -> Lead:
    leads = leads[np.isfinite(leads)]
    tail = (1 - confidence) / 2
    lower, upper = (
        (float(np.quantile(leads, tail)), float(np.quantile(leads, 1 - tail)))
        if len(leads)
        else (float("nan"), float("nan"))
    )
    return Lead(
        metric=spec.name,
        rows=n,
        champion=base_a,
        challenger=base_b,
        lead=sign * (base_b - base_a),
        lower=lower,
        upper=upper,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
    )


def independent_lead(
    spec: MetricSpec,
    champion_truth: Any,
    champion: Outputs,
    challenger_truth: Any,
    challenger: Outputs,
    *,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Lead:
    """The challenger's lead when the two answered different rows (a canary's two halves):
    each side resampled on its own, the interval from the replicates' differences."""
    ya, yb = np.asarray(champion_truth), np.asarray(challenger_truth)
    if len(ya) == 0 or len(yb) == 0:
        raise InputError("Both versions need labelled rows to be compared live")
    sign = 1.0 if spec.greater_is_better else -1.0
    a_true, a_scores = _truth_and_scores(spec, ya, champion)
    b_true, b_scores = _truth_and_scores(spec, yb, challenger)
    rng = np.random.default_rng(seed)

    def replicate_values(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
        n = len(truth)
        w = np.stack(
            [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_bootstrap)]
        ).astype(float)
        fast = _vectorised(spec.name)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore")
            if fast is not None:
                return np.asarray(fast(w, truth, scores), dtype=float)
            values = np.empty(n_bootstrap)
            for i, row in enumerate(w):
                try:
                    values[i] = float(spec(truth, scores, sample_weight=row))
                except ValueError:
                    values[i] = float("nan")
            return values

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            base_a = float(spec(a_true, a_scores))
            base_b = float(spec(b_true, b_scores))
        except ValueError:
            base_a = base_b = float("nan")
    leads = sign * (replicate_values(b_true, b_scores) - replicate_values(a_true, a_scores))
    lead = _lead(spec, len(yb), base_a, base_b, sign, leads, confidence, n_bootstrap)
    return lead


def challenger_passes(
    lead: Lead, *, margin: float, tolerance: float, decayed: bool
) -> tuple[bool, str]:
    """Whether the challenger passes the comparison, and the rule that decided.

    Superiority: the interval's lower end reaches ``margin``. When the champion measurably
    decayed (``decayed``) and ``tolerance`` is above 0, non-inferiority is enough: the lead
    reaches ``margin`` and the lower end reaches ``margin - tolerance`` (at the interval's
    confidence the challenger is worse by less than ``tolerance``).

    Returns:
        ``(passed, rule)``, rule ``superiority`` or ``non-inferiority``.
    """
    finite = bool(np.isfinite(lead.lower)) and bool(np.isfinite(lead.lead))
    if finite and lead.lower >= margin:
        return True, "superiority"
    if not decayed or tolerance <= 0:
        return False, "superiority"
    return finite and lead.lead >= margin and lead.lower >= margin - tolerance, "non-inferiority"


def _weighted_accuracy(w: np.ndarray, truth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    hit = (np.asarray(truth, dtype=object) == np.asarray(labels, dtype=object)).astype(float)
    return (w @ hit) / w.sum(axis=1)


def _weighted_auc(w: np.ndarray, truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC per row of weights ``w`` (replicates x rows): the weighted share of (positive,
    negative) pairs the score orders correctly, ties counting half."""
    order = np.argsort(score, kind="mergesort")
    s, positive = np.asarray(score)[order], np.asarray(truth)[order] == 1
    w = w[:, order]
    neg = np.where(positive, 0.0, w)
    pos = np.where(positive, w, 0.0)
    # negatives strictly below each score, and those tied with it
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    cum_neg = np.cumsum(neg, axis=1)
    below_group = np.concatenate([np.zeros((len(w), 1)), cum_neg[:, first[1:] - 1]], axis=1)
    tied_group = np.add.reduceat(neg, first, axis=1)
    group = np.repeat(np.arange(len(first)), counts)
    wins = (pos * (below_group[:, group] + 0.5 * tied_group[:, group])).sum(axis=1)
    return wins / (pos.sum(axis=1) * neg.sum(axis=1))


def _vectorised(name: str) -> Any:
    """A replicate-at-once version of the metric, where one is written (same values)."""
    return {"accuracy": _weighted_accuracy, "roc_auc": _weighted_auc}.get(name)


def resolve_metric(name: str, task: str | None) -> MetricSpec:
    """The registered metric ``name`` for ``task``."""
    return get_metric(name, task if task in ("binary", "multiclass", "regression") else None)
