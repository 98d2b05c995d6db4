"""Classification and regression metrics, each with a seeded bootstrap confidence interval.

Every metric is written once as a function of a matrix of sample weights ``W`` (replicates x
rows): the point estimate is that function at ``W = 1`` and the bootstrap replicates are the same
function at the resampling counts (how often each row was drawn). Resampling indices are drawn
once per chunk of replicates and every metric of a replicate is computed from the same draw,
with matrix products and cumulative sums instead of a Python loop over replicates. Because a
resample is the original rows weighted by their counts, replicate ``b`` equals scikit-learn's
metric with ``sample_weight=counts[b]`` (tested), and the point estimate equals scikit-learn's
metric on the inputs.

Intervals are percentile intervals; replicates where a metric is undefined (a resample without
positives has no ROC AUC) are left out of the quantiles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import InputError
from forgeml.evaluate._inputs import (
    as_labels,
    as_scores,
    check_known_labels,
    check_same_length,
    label_text,
)
from forgeml.metrics import canonical_name, registered_metrics

__all__ = [
    "HIGHER_IS_BETTER",
    "ClassMetrics",
    "MetricValue",
    "Metrics",
    "bootstrap_counts",
    "classification_metrics",
    "regression_metrics",
    "threshold_curve",
]

# Direction of every metric, aliases included, from the shared registry: slices are ranked
# worst first with it. Every metric this module reports is registered there under the same
# name, with a plain function that gives the same value (tested).
HIGHER_IS_BETTER: Mapping[str, bool] = MappingProxyType(
    {
        key: spec.greater_is_better
        for spec in registered_metrics().values()
        for key in (spec.name, *spec.aliases)
    }
)

# Bootstrap replicates are processed in chunks holding at most this many weights, so memory
# stays bounded (16 MB of float64) whatever the number of rows.
_CHUNK_CELLS = 2_000_000
_ERROR_QUANTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class MetricValue:
    """A metric with its bootstrap confidence interval.

    Attributes:
        name: the metric's registered name (see ``forgeml.metrics``).
        value: the value on all rows (NaN when undefined, e.g. ROC AUC with one class).
        lower: lower end of the interval (NaN without bootstrap).
        upper: upper end of the interval.
    """

    name: str
    value: float
    lower: float = float("nan")
    upper: float = float("nan")

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger value is better."""
        return HIGHER_IS_BETTER.get(self.name, True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "value": self.value, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """Precision, recall and F1 of one class (one-vs-rest), with its support."""

    label: Any
    support: int
    values: tuple[MetricValue, ...]

    def __getitem__(self, name: str) -> MetricValue:
        return _lookup(self.values, name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "label": _plain(self.label),
            "support": self.support,
            "metrics": {v.name: v.to_dict() for v in self.values},
        }


@dataclass(frozen=True)
class Metrics:
    """Metrics of one model on one set of rows. Immutable.

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        n_rows: rows evaluated.
        values: the overall metrics with intervals.
        per_class: per-class precision/recall/F1 (classification only).
        classes: class labels in the model's order (classification only).
        positive_label: the positive class (binary only).
        threshold: the decision threshold on the positive score (binary only).
        confusion_matrix: rows = true class, columns = predicted class, in ``classes`` order.
        threshold_curve: precision, recall, F1, selection rate... by threshold (binary only).
        confidence: the interval's coverage (e.g. 0.95).
        n_bootstrap: replicates drawn (0: no intervals).
        seed: the bootstrap seed.
    """

    task: str
    n_rows: int
    values: tuple[MetricValue, ...]
    per_class: tuple[ClassMetrics, ...] = ()
    classes: tuple[Any, ...] = ()
    positive_label: Any = None
    threshold: float | None = None
    confusion_matrix: tuple[tuple[int, ...], ...] = ()
    threshold_curve: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    confidence: float = 0.95
    n_bootstrap: int = 0
    seed: int = 0

    def __getitem__(self, name: str) -> MetricValue:
        return _lookup(self.values, name)

    def as_dict(self) -> dict[str, float]:
        """Metric name -> value (no intervals), e.g. to log to a run."""
        return {v.name: v.value for v in self.values}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "task": self.task,
            "n_rows": self.n_rows,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "metrics": {v.name: v.to_dict() for v in self.values},
            "per_class": [c.to_dict() for c in self.per_class],
            "classes": [_plain(c) for c in self.classes],
            "positive_label": _plain(self.positive_label),
            "threshold": self.threshold,
            "confusion_matrix": [list(r) for r in self.confusion_matrix],
            "threshold_curve": {k: list(v) for k, v in self.threshold_curve.items()},
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _lookup(values: tuple[MetricValue, ...], name: str) -> MetricValue:
    wanted = canonical_name(name) if name in HIGHER_IS_BETTER else name
    for v in values:
        if v.name == wanted:
            return v
    raise KeyError(f"no metric {name!r}; have {[v.name for v in values]}")


# ---------------------------------------------------------------- bootstrap machinery


def bootstrap_counts(n_rows: int, n_bootstrap: int, seed: int) -> Iterator[np.ndarray]:
    """Resampling counts, chunk by chunk: arrays of shape (replicates, n_rows), float64.

    Row ``j`` of a chunk says how many times each row was drawn in that replicate (they sum to
    ``n_rows``). The draws depend only on ``seed``, ``n_rows`` and ``n_bootstrap``.

    Args:
        n_rows: rows to resample.
        n_bootstrap: replicates in all.
        seed: seed of the random generator.

    Yields:
        count matrices whose row counts add up to ``n_bootstrap``.
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // max(n_rows, 1))
    done = 0
    while done < n_bootstrap:
        b = min(per_chunk, n_bootstrap - done)
        idx = rng.integers(0, n_rows, size=(b, n_rows))
        idx += (np.arange(b) * n_rows)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n_rows).reshape(b, n_rows)
        yield counts.astype(np.float64)
        done += b


def _with_intervals(
    compute: Callable[[np.ndarray], dict[str, np.ndarray]],
    n_rows: int,
    *,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, MetricValue]:
    """Evaluate ``compute`` (weights -> name -> per-replicate values) at W = 1 and resampled."""
    point = compute(np.ones((1, n_rows)))
    replicates: dict[str, list[np.ndarray]] = {name: [] for name in point}
    if n_bootstrap > 0:
        for counts in bootstrap_counts(n_rows, n_bootstrap, seed):
            for name, values in compute(counts).items():
                replicates[name].append(values)
    alpha = (1.0 - confidence) / 2.0
    out: dict[str, MetricValue] = {}
    for name, value in point.items():
        lower = upper = float("nan")
        if replicates[name]:
            reps = np.concatenate(replicates[name])
            reps = reps[np.isfinite(reps)]
            if len(reps):
                lower, upper = (float(q) for q in np.quantile(reps, [alpha, 1.0 - alpha]))
        out[name] = MetricValue(name, float(value[0]), lower, upper)
    return out


def _check_bootstrap(n_bootstrap: int, confidence: float) -> None:
    if n_bootstrap < 0:
        raise InputError(f"The `n_bootstrap` parameter must be >= 0; got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"The `confidence` parameter must be in (0, 1); got {confidence}")


def _safe_divide(num: np.ndarray, den: np.ndarray, fill: float = 0.0) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), fill)


def _grouped(
    w: np.ndarray, score: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per distinct score, scores ascending: (B, U) each."""
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    ws = w[:, order]
    pos = positive[order]
    pos_w = np.add.reduceat(ws * pos, starts, axis=1)
    neg_w = np.add.reduceat(ws * ~pos, starts, axis=1)
    return pos_w, neg_w


def _roc_auc(w: np.ndarray, score: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC (ties count one half), per replicate."""
    pos_w, neg_w = _grouped(w, score, positive)
    neg_below = np.cumsum(neg_w, axis=1) - neg_w
    n_pos, n_neg = pos_w.sum(axis=1), neg_w.sum(axis=1)
    area = (pos_w * (neg_below + 0.5 * neg_w)).sum(axis=1)
    return _safe_divide(area, n_pos * n_neg, fill=np.nan)


def _average_precision(w: np.ndarray, score: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Average precision (step-wise area under the PR curve, as scikit-learn defines it)."""
    pos_w, neg_w = _grouped(w, score, positive)
    tp = np.cumsum(pos_w[:, ::-1], axis=1)  # thresholds from the highest score down
    fp = np.cumsum(neg_w[:, ::-1], axis=1)
    n_pos = tp[:, -1:]
    precision = _safe_divide(tp, tp + fp)
    recall = _safe_divide(tp, np.broadcast_to(n_pos, tp.shape), fill=np.nan)
    steps = np.diff(np.concatenate([np.zeros((len(w), 1)), recall], axis=1), axis=1)
    return (steps * precision).sum(axis=1)


# ---------------------------------------------------------------- classification


def _normalise_proba(y_score: np.ndarray, n_classes: int, positive_index: int) -> np.ndarray:
    if y_score.ndim == 1:
        if n_classes != 2:
            raise InputError(
                f"`y_score` is one-dimensional but there are {n_classes} classes; "
                "pass one column of probabilities per class"
            )
        proba = np.zeros((len(y_score), 2))
        proba[:, positive_index] = y_score
        proba[:, 1 - positive_index] = 1.0 - y_score
        return proba
    if y_score.shape[1] != n_classes:
        raise InputError(
            f"`y_score` has {y_score.shape[1]} columns but there are {n_classes} classes"
        )
    return y_score


def classification_metrics(
    y_true: Any,
    y_pred: Any = None,
    *,
    y_score: Any = None,
    classes: Any = None,
    positive_label: Any = None,
    threshold: float | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Metrics:
    """Classification metrics with bootstrap intervals.

    Accuracy, balanced accuracy, precision/recall/F1 per class and macro/weighted averaged
    (plus those of the positive class for binary tasks) from the predicted labels; ROC AUC,
    average precision (the area under the PR curve, alias ``pr_auc``), log loss and Brier
    score from the scores. Multiclass AUCs are one-vs-rest, macro averaged. Values equal
    scikit-learn's on the same inputs (zero where a ratio is undefined, as scikit-learn's
    ``zero_division`` default gives).

    Args:
        y_true: true labels.
        y_pred: predicted labels (default: derived from ``y_score`` and ``threshold``).
        y_score: probabilities: one column per class in ``classes`` order, or for binary
            tasks one-dimensional probabilities of ``positive_label``.
        classes: the model's classes (default: the sorted labels seen in ``y_true`` and
            ``y_pred``). Labels of ``y_true`` outside them are refused.
        positive_label: the positive class of a binary task (default: the second class).
        threshold: for binary tasks, predict positive when the score is at least this (default
            0.5); used only when ``y_pred`` is not given.
        n_bootstrap: bootstrap replicates (0: no intervals).
        confidence: coverage of the intervals.
        seed: seed of the bootstrap.

    Returns:
        the metrics.

    Raises:
        InputError: inputs of different lengths, unknown labels, non-numeric or missing
            scores, no predictions and no scores.
    """
    _check_bootstrap(n_bootstrap, confidence)
    truth = as_labels(y_true, "y_true")
    pred = None if y_pred is None else as_labels(y_pred, "y_pred")
    score = None if y_score is None else as_scores(y_score, "y_score")
    if pred is None and score is None:
        raise InputError("Pass `y_pred`, `y_score` or both")
    n = check_same_length(y_true=truth, y_pred=pred, y_score=score)
    if classes is None:
        seen = truth if pred is None else np.concatenate([truth, pred])
        class_array = np.asarray(sorted(pd.unique(seen).tolist()))
    else:
        class_array = as_labels(classes, "classes")
    if len(class_array) < 2:
        raise InputError(
            f"Classification needs at least two classes; got {label_text(class_array)}"
        )
    check_known_labels(truth, class_array, "y_true")
    k = len(class_array)
    binary = k == 2
    position = {c: i for i, c in enumerate(class_array.tolist())}
    positive_index = 1
    if binary and positive_label is not None:
        if positive_label not in position:
            raise InputError(
                f"`positive_label` {positive_label!r} is not a class; classes are "
                f"{label_text(class_array)}"
            )
        positive_index = position[positive_label]
    proba = None if score is None else _normalise_proba(score, k, positive_index)
    if binary and threshold is None:
        threshold = 0.5
    if pred is None:
        assert proba is not None
        if binary:
            assert threshold is not None
            chosen = np.where(
                proba[:, positive_index] >= threshold, positive_index, 1 - positive_index
            )
        else:
            chosen = proba.argmax(axis=1)
        pred = class_array[chosen]
    check_known_labels(pred, class_array, "y_pred")
    t_idx = np.fromiter((position[v] for v in truth.tolist()), dtype=np.int64, count=n)
    p_idx = np.fromiter((position[v] for v in pred.tolist()), dtype=np.int64, count=n)
    cell = np.zeros((n, k * k))
    cell[np.arange(n), t_idx * k + p_idx] = 1.0
    onehot_true = np.eye(k)[t_idx]
    per_row_loss = per_row_brier = None
    if proba is not None:
        eps = np.finfo(np.float64).eps
        per_row_loss = -np.log(np.clip(proba[np.arange(n), t_idx], eps, 1 - eps))
        if binary:
            per_row_brier = (proba[:, positive_index] - onehot_true[:, positive_index]) ** 2
        else:
            per_row_brier = ((proba - onehot_true) ** 2).sum(axis=1)

    def compute(w: np.ndarray) -> dict[str, np.ndarray]:
        total = w.sum(axis=1)
        cm = (w @ cell).reshape(len(w), k, k)
        diag = np.diagonal(cm, axis1=1, axis2=2)
        support = cm.sum(axis=2)
        predicted = cm.sum(axis=1)
        precision = _safe_divide(diag, predicted)
        recall = _safe_divide(diag, support)
        f1 = _safe_divide(2 * diag, support + predicted)
        present = support > 0
        out = {
            "accuracy": diag.sum(axis=1) / total,
            "balanced_accuracy": _safe_divide(
                (recall * present).sum(axis=1), present.sum(axis=1), fill=np.nan
            ),
        }
        if binary:
            out["precision"] = precision[:, positive_index]
            out["recall"] = recall[:, positive_index]
            out["f1"] = f1[:, positive_index]
        for name, per in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[f"{name}_macro"] = per.mean(axis=1)
            out[f"{name}_weighted"] = _safe_divide((per * support).sum(axis=1), total)
            for j in range(k):
                out[f"{name}[{j}]"] = per[:, j]
        if proba is not None:
            assert per_row_loss is not None and per_row_brier is not None
            if binary:
                positive = t_idx == positive_index
                out["roc_auc"] = _roc_auc(w, proba[:, positive_index], positive)
                out["average_precision"] = _average_precision(w, proba[:, positive_index], positive)
            else:
                aucs = [_roc_auc(w, proba[:, j], t_idx == j) for j in range(k)]
                aps = [_average_precision(w, proba[:, j], t_idx == j) for j in range(k)]
                out["roc_auc"] = np.mean(aucs, axis=0)
                out["average_precision"] = np.mean(aps, axis=0)
            out["log_loss"] = (w @ per_row_loss) / total
            out["brier_score"] = (w @ per_row_brier) / total
        return out

    values = _with_intervals(compute, n, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (t_idx, p_idx), 1)
    support = confusion.sum(axis=1)
    per_class = tuple(
        ClassMetrics(
            label=_plain(label),
            support=int(support[j]),
            values=tuple(
                MetricValue(name, *_interval(values[f"{name}[{j}]"]))
                for name in ("precision", "recall", "f1")
            ),
        )
        for j, label in enumerate(class_array)
    )
    overall = tuple(v for name, v in values.items() if "[" not in name)
    curve: dict[str, tuple[float, ...]] = {}
    if binary and proba is not None:
        curve = threshold_curve(t_idx == positive_index, proba[:, positive_index])
    return Metrics(
        task="binary" if binary else "multiclass",
        n_rows=n,
        values=overall,
        per_class=per_class,
        classes=tuple(_plain(c) for c in class_array),
        positive_label=_plain(class_array[positive_index]) if binary else None,
        threshold=threshold if binary else None,
        confusion_matrix=tuple(tuple(int(x) for x in row) for row in confusion),
        threshold_curve=curve,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def _interval(value: MetricValue) -> tuple[float, float, float]:
    return value.value, value.lower, value.upper


def threshold_curve(
    positive: Any, score: Any, thresholds: Any = None
) -> dict[str, tuple[float, ...]]:
    """Binary metrics at each decision threshold (predict positive when score >= threshold).

    Args:
        positive: booleans, True where the true label is the positive class.
        score: the positive class's score.
        thresholds: thresholds to evaluate (default: 0.01 .. 0.99 for probabilities, else
            up to 99 quantiles of the scores).

    Returns:
        columns ``threshold``, ``precision``, ``recall``, ``f1``, ``fpr``, ``accuracy``,
        ``selection_rate``, each a tuple of the same length.
    """
    is_pos = np.asarray(positive, dtype=bool)
    s = as_scores(score, "score")
    check_same_length(positive=is_pos, score=s)
    if thresholds is None:
        if s.min() >= 0.0 and s.max() <= 1.0:
            grid = np.round(np.linspace(0.01, 0.99, 99), 2)
        else:
            grid = np.unique(np.quantile(s, np.linspace(0.01, 0.99, 99)))
    else:
        grid = np.sort(as_scores(thresholds, "thresholds").ravel())
    pos_sorted = np.sort(s[is_pos])
    neg_sorted = np.sort(s[~is_pos])
    n_pos, n_neg = len(pos_sorted), len(neg_sorted)
    tp = n_pos - np.searchsorted(pos_sorted, grid, side="left")
    fp = n_neg - np.searchsorted(neg_sorted, grid, side="left")
    fn, tn = n_pos - tp, n_neg - fp
    precision = _safe_divide(tp, tp + fp)
    recall = _safe_divide(tp, np.full_like(tp, n_pos))
    f1 = _safe_divide(2 * tp, 2 * tp + fp + fn)
    total = n_pos + n_neg
    columns = {
        "threshold": grid,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": _safe_divide(fp, np.full_like(fp, n_neg)),
        "accuracy": (tp + tn) / total,
        "selection_rate": (tp + fp) / total,
    }
    return {k: tuple(float(x) for x in v) for k, v in columns.items()}


# ---------------------------------------------------------------- regression


def regression_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Metrics:
    """Regression metrics with bootstrap intervals.

    RMSE, MAE, R², MAPE (scikit-learn's definition: relative to ``max(|y|, eps)``) and
    quantiles 50/90/95/99 % of the absolute error. Values equal scikit-learn's and numpy's.

    Args:
        y_true: true values.
        y_pred: predicted values.
        n_bootstrap: bootstrap replicates (0: no intervals).
        confidence: coverage of the intervals.
        seed: seed of the bootstrap.

    Returns:
        the metrics.

    Raises:
        InputError: inputs of different lengths, non-numeric or missing values.
    """
    _check_bootstrap(n_bootstrap, confidence)
    truth = as_scores(y_true, "y_true")
    pred = as_scores(y_pred, "y_pred")
    if truth.ndim != 1 or pred.ndim != 1:
        raise InputError("`y_true` and `y_pred` must be one-dimensional for regression")
    n = check_same_length(y_true=truth, y_pred=pred)
    error = pred - truth
    abs_error = np.abs(error)
    sq_error = error**2
    ape = abs_error / np.maximum(np.abs(truth), np.finfo(np.float64).eps)
    order = np.argsort(abs_error, kind="stable")
    sorted_abs = abs_error[order]
    y_sq = truth**2

    def compute(w: np.ndarray) -> dict[str, np.ndarray]:
        total = w.sum(axis=1)
        sse = w @ sq_error
        sst = w @ y_sq - (w @ truth) ** 2 / total
        # scikit-learn's force_finite: a constant target scores 1 when predicted exactly, else 0
        r2 = np.where(
            sst > 1e-12 * np.maximum(w @ y_sq, 1.0),
            1.0 - _safe_divide(sse, sst),
            np.where(sse == 0, 1.0, 0.0),
        )
        out = {
            "rmse": np.sqrt(sse / total),
            "mae": (w @ abs_error) / total,
            "r2": r2,
            "mape": (w @ ape) / total,
        }
        cum = np.cumsum(w[:, order], axis=1)
        for q in _ERROR_QUANTILES:
            out[f"abs_error_p{round(q * 100)}"] = _weighted_quantile(cum, sorted_abs, q)
        return out

    values = _with_intervals(compute, n, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    return Metrics(
        task="regression",
        n_rows=n,
        values=tuple(values.values()),
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def _weighted_quantile(cum: np.ndarray, sorted_values: np.ndarray, q: float) -> np.ndarray:
    """numpy's linear quantile of each resample, from cumulative counts over sorted values.

    The resample of replicate b, sorted, holds ``sorted_values[j]`` ``w[b, j]`` times; its
    k-th element (0-based) is the first j whose cumulative count exceeds k.
    """
    b, m = cum.shape
    total = cum[:, -1]
    h = (total - 1) * q
    lo, hi = np.floor(h), np.ceil(h)
    offsets = np.arange(b) * (total.max() + 1)
    flat = (cum + offsets[:, None]).ravel()

    def kth(k: np.ndarray) -> np.ndarray:
        j = np.searchsorted(flat, k + offsets, side="right") - np.arange(b) * m
        return sorted_values[np.clip(j, 0, m - 1)]

    v_lo, v_hi = kth(lo), kth(hi)
    return v_lo + (h - lo) * (v_hi - v_lo)
