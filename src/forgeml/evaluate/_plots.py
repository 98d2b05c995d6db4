"""Evaluation plots as matplotlib figures, saved as PNG.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never through
``pyplot``: no global figure state, so plotting is safe from several threads and leaks nothing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "calibration_plot",
    "confusion_matrix_plot",
    "figure_png",
    "importance_plot",
    "pr_plot",
    "predicted_vs_actual_plot",
    "residuals_plot",
    "roc_plot",
    "save_png",
    "shap_summary_plot",
    "threshold_plot",
]

_DPI = 100


def _figure(width: float = 5.5, height: float = 4.5) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG file and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(figure_png(fig))
    return target


def confusion_matrix_plot(matrix: Sequence[Sequence[int]], labels: Sequence[Any]) -> Figure:
    """Counts and row shares (recall per class) of a confusion matrix."""
    counts = np.asarray(matrix, dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(labels)
    fig = _figure(max(4.0, 1.1 * k + 2.5), max(3.5, 1.0 * k + 2.0))
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class")
    names = [str(x) for x in labels]
    ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            color = "white" if shares[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n{shares[i, j]:.1%}",
                ha="center",
                va="center",
                color=color,
                fontsize=8,
            )
    ax.set_title("Confusion matrix")
    return fig


def _one_vs_rest(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any], positive_label: Any
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, is_class, score) per curve: the positive class for binary, each class else."""
    if proba.ndim == 1:
        return [(str(positive_label), y_true == positive_label, proba)]
    if len(classes) == 2:
        j = list(classes).index(positive_label)
        return [(str(positive_label), y_true == positive_label, proba[:, j])]
    return [(str(c), y_true == c, proba[:, j]) for j, c in enumerate(classes)]


def roc_plot(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any], positive_label: Any = None
) -> Figure:
    """ROC curve (one per class, one-vs-rest, for multiclass)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = _figure()
    ax = fig.add_subplot()
    for name, is_class, score in _one_vs_rest(y_true, proba, classes, positive_label):
        if is_class.all() or not is_class.any():
            continue
        fpr, tpr, _ = roc_curve(is_class, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(is_class, score):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def pr_plot(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any], positive_label: Any = None
) -> Figure:
    """Precision-recall curve (one per class for multiclass) with the base rate."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = _figure()
    ax = fig.add_subplot()
    for name, is_class, score in _one_vs_rest(y_true, proba, classes, positive_label):
        if not is_class.any():
            continue
        precision, recall, _ = precision_recall_curve(is_class, score)
        ap = average_precision_score(is_class, score)
        line = ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
        ax.axhline(is_class.mean(), linestyle=":", linewidth=1, color=line[0].get_color())
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def calibration_plot(
    y_true: np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Any],
    positive_label: Any = None,
    n_bins: int = 10,
) -> Figure:
    """Reliability diagram: observed frequency against mean predicted probability."""
    from sklearn.calibration import calibration_curve

    fig = _figure()
    ax = fig.add_subplot()
    for name, is_class, score in _one_vs_rest(y_true, proba, classes, positive_label):
        if is_class.all() or not is_class.any():
            continue
        observed, predicted = calibration_curve(is_class, score, n_bins=n_bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", markersize=3, label=name)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Calibration (quantile bins)")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def threshold_plot(curve: Mapping[str, Sequence[float]], threshold: float | None = None) -> Figure:
    """Precision, recall, F1 and selection rate by decision threshold."""
    fig = _figure(6.0, 4.5)
    ax = fig.add_subplot()
    x = np.asarray(curve["threshold"])
    for name in ("precision", "recall", "f1", "selection_rate"):
        ax.plot(x, curve[name], label=name.replace("_", " "))
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    best = int(np.argmax(curve["f1"]))
    ax.scatter([x[best]], [curve["f1"][best]], color="black", zorder=3, s=15)
    ax.annotate(
        f"best F1 {curve['f1'][best]:.3f} at {x[best]:.2f}",
        (x[best], curve["f1"][best]),
        textcoords="offset points",
        xytext=(5, 5),
        fontsize=8,
    )
    ax.set_xlabel("threshold")
    ax.set_ylim(0, 1.02)
    ax.set_title("Metrics by threshold")
    ax.legend(loc="best", fontsize=8)
    return fig


def residuals_plot(y_true: np.ndarray, y_pred: np.ndarray) -> Figure:
    """Residuals against predictions, and their distribution."""
    residuals = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    fig = _figure(8.0, 4.0)
    left, right = fig.subplots(1, 2, width_ratios=[2, 1])
    left.scatter(y_pred, residuals, s=4, alpha=0.4)
    left.axhline(0, color="black", linewidth=1)
    left.set_xlabel("predicted")
    left.set_ylabel("actual - predicted")
    left.set_title("Residuals")
    right.hist(residuals, bins=50, orientation="horizontal", color="tab:blue", alpha=0.7)
    right.axhline(0, color="black", linewidth=1)
    right.set_xlabel("rows")
    return fig


def predicted_vs_actual_plot(y_true: np.ndarray, y_pred: np.ndarray) -> Figure:
    """Predicted against actual values with the identity line."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(y_true, y_pred, s=4, alpha=0.4)
    low = float(min(np.min(y_true), np.min(y_pred)))
    high = float(max(np.max(y_true), np.max(y_pred)))
    ax.plot([low, high], [low, high], color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs actual")
    return fig


def importance_plot(importance: pd.Series, top: int = 20) -> Figure:
    """Horizontal bars of global importance (mean |SHAP|), largest on top."""
    shown = importance.sort_values(ascending=False).head(top)[::-1]
    fig = _figure(6.0, max(2.5, 0.3 * len(shown) + 1.2))
    ax = fig.add_subplot()
    ax.barh([str(i) for i in shown.index], shown.to_numpy(), color="tab:blue")
    ax.set_xlabel("mean |SHAP value|")
    ax.set_title("Feature importance")
    return fig


def shap_summary_plot(
    contributions: np.ndarray,
    data: pd.DataFrame | None,
    columns: Sequence[str],
    *,
    top: int = 15,
    seed: int = 0,
) -> Figure:
    """Beeswarm-style summary: each row's contribution per column, coloured by the column's
    value (low blue to high red; grey for non-numeric columns).

    Args:
        contributions: (rows, columns) contributions; for several outputs pass one of them.
        data: the explained rows (for the colours), or None.
        columns: column names.
        top: show the columns with the largest mean |contribution|.
        seed: seed of the vertical jitter.
    """
    values = np.asarray(contributions, dtype=np.float64)
    order = np.argsort(-np.abs(values).mean(axis=0))[:top][::-1]
    rng = np.random.default_rng(seed)
    fig = _figure(7.0, max(2.5, 0.35 * len(order) + 1.3))
    ax = fig.add_subplot()
    scatter = None
    for row, j in enumerate(order):
        x = values[:, j]
        jitter = rng.uniform(-0.3, 0.3, size=len(x))
        column = data[columns[j]] if data is not None and columns[j] in data else None
        if column is not None and pd.api.types.is_numeric_dtype(column):
            raw = column.to_numpy(dtype=np.float64, na_value=np.nan)
            low, high = np.nanpercentile(raw, [5, 95]) if np.isfinite(raw).any() else (0, 1)
            scaled = np.clip((raw - low) / (high - low if high > low else 1.0), 0, 1)
            scatter = ax.scatter(x, row + jitter, c=scaled, cmap="coolwarm", s=6, vmin=0, vmax=1)
        else:
            ax.scatter(x, row + jitter, color="grey", s=6)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(order)), [str(columns[j]) for j in order])
    ax.set_xlabel("SHAP value (contribution to the raw output)")
    ax.set_title("SHAP summary")
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value")
    return fig
