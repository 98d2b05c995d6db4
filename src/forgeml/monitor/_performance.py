"""A served classifier's performance: measured once labels arrive, estimated before.

The estimate is confidence-based performance estimation (CBPE, as NannyML names it): if the
model's probabilities are calibrated, a row predicted positive with probability ``p`` is
correct with probability ``p``, so the expected accuracy of a window is the mean of those
probabilities, and the expected confusion counts at every threshold give an expected ROC curve
and its area. Probabilities are first calibrated (isotonic regression, one-vs-rest for several
classes) on labelled rows the model was never trained on: the recorded hold-out of its
training dataset; without one the model's own probabilities are taken as calibrated. The
estimate is only as good as that calibration and assumes the relation between inputs and
labels has not changed (it sees covariate shift, not concept drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forgeml.errors import InputError

__all__ = ["Calibration", "estimated_metrics", "expected_roc_auc"]


@dataclass(frozen=True)
class Calibration:
    """Maps a classifier's probabilities to calibrated ones.

    Attributes:
        classes: the class labels in probability column order.
        source: what it was fitted on, in words (``"none: ..."`` when it is the identity).
        models: one isotonic regression per class (two classes: one, for the second class),
            empty for the identity.
    """

    classes: tuple[Any, ...]
    source: str
    models: tuple[Any, ...] = ()

    @classmethod
    def fit(
        cls, proba: np.ndarray, labels: Any, classes: tuple[Any, ...], source: str
    ) -> Calibration:
        """Isotonic calibration of ``proba`` (rows x classes) against true ``labels``.

        Raises:
            InputError: fewer than 2 rows, or labels that are not among ``classes``.
        """
        from sklearn.isotonic import IsotonicRegression

        proba = np.asarray(proba, dtype=np.float64)
        truth = np.asarray(labels, dtype=object)
        if len(truth) < 2:
            raise InputError("Calibration needs at least 2 labelled rows")
        known = {c: i for i, c in enumerate(classes)}
        unknown = {v for v in truth.tolist() if v not in known}
        if unknown:
            raise InputError(
                "The calibration labels hold values that are not classes: "
                f"{sorted(map(str, unknown))[:5]}; classes are {list(classes)}"
            )
        index = np.fromiter((known[v] for v in truth.tolist()), dtype=np.int64, count=len(truth))
        targets = [1] if len(classes) == 2 else list(range(len(classes)))
        models = tuple(
            IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                proba[:, j], (index == j).astype(np.float64)
            )
            for j in targets
        )
        return cls(classes=tuple(classes), source=source, models=models)

    @classmethod
    def identity(cls, classes: tuple[Any, ...], reason: str) -> Calibration:
        """No calibration: the model's probabilities are taken as calibrated."""
        return cls(classes=tuple(classes), source=f"none: {reason}")

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, rows x classes, each row summing to 1."""
        proba = np.asarray(proba, dtype=np.float64)
        if not self.models:
            return proba
        if len(self.classes) == 2:
            positive = self.models[0].predict(proba[:, 1])
            return np.column_stack([1.0 - positive, positive])
        out = np.column_stack([m.predict(proba[:, j]) for j, m in enumerate(self.models)])
        total = out.sum(axis=1, keepdims=True)
        # a row every calibrator maps to 0 keeps the model's own probabilities
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), proba)


def expected_roc_auc(score: np.ndarray, p_positive: np.ndarray) -> float:
    """The ROC AUC expected when each row is positive with probability ``p_positive``,
    ranking rows by ``score`` (NaN when no positive or no negative is expected)."""
    score = np.asarray(score, dtype=np.float64)
    p = np.asarray(p_positive, dtype=np.float64)
    positives, negatives = p.sum(), (1.0 - p).sum()
    if positives <= 0 or negatives <= 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, p = score[order], p[order]
    # one ROC point per distinct score (ties move together, as for observed labels)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.r_[0.0, np.cumsum(p)[last]] / positives
    fp = np.r_[0.0, np.cumsum(1.0 - p)[last]] / negatives
    return float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2.0))


def estimated_metrics(
    proba: np.ndarray,
    predicted: Any,
    calibration: Calibration,
) -> dict[str, float]:
    """Expected accuracy and ROC AUC of a window from the model's probabilities.

    Args:
        proba: the model's probabilities (rows x classes, in ``calibration.classes`` order).
        predicted: the labels the model answered (its decision threshold applied).
        calibration: how the probabilities are calibrated.

    Returns:
        ``{"accuracy": ..., "roc_auc": ...}`` (multiclass AUC: one-vs-rest, macro averaged).
    """
    raw = np.asarray(proba, dtype=np.float64)
    if len(raw) == 0:
        return {"accuracy": float("nan"), "roc_auc": float("nan")}
    calibrated = calibration.apply(raw)
    position = {c: i for i, c in enumerate(calibration.classes)}
    labels = np.asarray(predicted, dtype=object).tolist()
    chosen = np.fromiter((position.get(v, -1) for v in labels), dtype=np.int64, count=len(labels))
    if (chosen < 0).any():
        raise InputError(
            "Logged predictions hold labels that are not the model's classes "
            f"{list(calibration.classes)}"
        )
    accuracy = float(calibrated[np.arange(len(chosen)), chosen].mean())
    if len(calibration.classes) == 2:
        auc = expected_roc_auc(raw[:, 1], calibrated[:, 1])
    else:
        aucs = [expected_roc_auc(raw[:, j], calibrated[:, j]) for j in range(raw.shape[1])]
        finite = [a for a in aucs if np.isfinite(a)]
        auc = float(np.mean(finite)) if finite else float("nan")
    return {"accuracy": accuracy, "roc_auc": auc}
