"""``evaluate``: everything about one fitted model on one labelled table, in one call.

Metrics with intervals, slices, a fairness audit of the sensitive columns, global importance,
PNG plots, a self-contained HTML report, ``evaluation.json`` and ``card.md`` in one folder;
with a run, the metrics are logged to it and the folder is stored as its ``evaluation``
artifact.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forgeml._json import dumps_text
from forgeml.errors import InputError
from forgeml.evaluate._fairness import FairnessThresholds, fairness_audit
from forgeml.evaluate._inputs import as_labels, check_known_labels, check_same_length
from forgeml.evaluate._metrics import Metrics, classification_metrics, regression_metrics
from forgeml.evaluate._result import EvaluationReport
from forgeml.evaluate._slices import slice_metrics

if TYPE_CHECKING:
    from forgeml.tracking import ActiveRun

__all__ = ["EvaluationReport", "evaluate"]

_TASKS = ("binary", "multiclass", "regression")
# The permutation explainer costs (2 x features + 1) x background evaluations per row: 25
# rows against 25 background rows keep it to seconds for a model of ~20 columns.
_PERMUTATION_ROWS = 25
# Slices of a wider table are computed for a seeded sample of this many columns.
_MAX_SLICE_COLUMNS = 100


def _detect_task(model: Any, y: np.ndarray, task: str | None) -> str:
    if task is not None:
        if task == "classification":
            task = "binary" if len(getattr(model, "classes_", pd.unique(y))) == 2 else "multiclass"
        if task not in _TASKS:
            raise InputError(f"The `task` parameter must be one of {_TASKS}; got {task!r}")
        return task
    if hasattr(model, "classes_") or hasattr(model, "predict_proba"):
        classes = getattr(model, "classes_", pd.unique(y))
        return "binary" if len(classes) == 2 else "multiclass"
    return "regression"


def _sensitive_frame(X: pd.DataFrame, sensitive: Any) -> pd.DataFrame | None:
    if sensitive is None:
        return None
    if isinstance(sensitive, str):
        sensitive = [sensitive]
    if isinstance(sensitive, pd.DataFrame | pd.Series):
        frame = sensitive.to_frame() if isinstance(sensitive, pd.Series) else sensitive
        check_same_length(X=X, sensitive=frame)
        return frame.reset_index(drop=True)
    names = list(sensitive)
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise InputError(
            f"Sensitive column(s) {missing} are not columns of `X`; pass their values as a "
            "DataFrame when they are not model inputs"
        )
    return X[names].reset_index(drop=True) if names else None


def evaluate(
    model: Any,
    X: Any,
    y: Any,
    *,
    task: str | None = None,
    sensitive: Any = None,
    run: ActiveRun | None = None,
    output_dir: str | Path | None = None,
    model_name: str | None = None,
    dataset_name: str | None = None,
    intended_use: str = "",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    explain: bool = True,
    max_explain_rows: int = 1000,
    slice_columns: Sequence[str] | None = None,
    fairness_thresholds: FairnessThresholds | None = None,
    metric_prefix: str = "eval_",
    rows: str | None = None,
) -> EvaluationReport:
    """Evaluate a fitted model on labelled rows: metrics, plots, slices, fairness, explanations.

    Example::

        report = fm.evaluate(model, X_test, y_test, sensitive=["sex"], run=run)
        report.metrics["roc_auc"]          # MetricValue(value, lower, upper)
        report.report_path                 # self-contained HTML

    A model with a decision threshold (``threshold``: a registered or forgeml-trained binary
    classifier) is judged on the labels it gives at that threshold; its label metrics at 0.5
    are reported beside them. A registered model (``forgeml.registry.LoadedModel``) checks
    the rows against its signature first and is explained through its underlying model.

    Args:
        model: a fitted estimator, scikit-learn Pipeline or loaded registry model with
            ``predict`` (and ``predict_proba`` for classifiers).
        X: the input rows (a DataFrame; an array gets columns ``x0``, ``x1``...).
        y: the true labels or values.
        task: ``binary``, ``multiclass``, ``regression`` or ``classification`` (default:
            classification when the model has ``classes_`` or ``predict_proba``).
        sensitive: sensitive column names of ``X``, or a DataFrame of sensitive values (one
            row per row of ``X``) when they are not model inputs.
        run: log metrics and store the output folder as the run's ``evaluation`` artifact.
        output_dir: where to write the files. By default, with a ``run``, a temporary folder
            removed once the run holds them (the report's paths are then empty); without a
            run, a new temporary folder that is kept (the report's paths point into it).
        model_name: a name for the report and card.
        dataset_name: the evaluation data's name (e.g. ``adult@3``).
        intended_use: what the model is for (goes into the card).
        n_bootstrap: bootstrap replicates for every interval.
        confidence: coverage of the intervals.
        seed: seed of every random step (bootstrap, row samples, SHAP background).
        explain: compute SHAP importance and the SHAP summary plot.
        max_explain_rows: explain at most this many rows (a seeded sample).
        slice_columns: columns to slice by (default: all).
        fairness_thresholds: where fairness findings start.
        metric_prefix: prefix of the metric names logged to ``run``.
        rows: which rows these are and how many the model was trained on (shown in the
            report's header).

    Returns:
        the report.

    Raises:
        InputError: ``X`` and ``y`` of different lengths, labels the model was not trained on,
            sensitive columns that are missing or have a single group, a model without
            ``predict``.
    """
    from forgeml.evaluate import _plots
    from forgeml.evaluate._explain import global_importance
    from forgeml.evaluate._report import write_report

    started = time.perf_counter()
    evaluated_at = int(time.time() * 1000)
    timings: dict[str, float] = {}
    notes: list[str] = []

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 4)
        return now

    if not hasattr(model, "predict"):
        raise InputError(f"The model must have a `predict` method; got {type(model).__name__}")
    frame = (
        X
        if isinstance(X, pd.DataFrame)
        else pd.DataFrame(np.asarray(X), columns=[f"x{i}" for i in range(np.shape(X)[1])])
    )
    truth = as_labels(y, "y")
    check_same_length(X=frame, y=truth)
    own_task = getattr(model, "task", None)
    if task is None and isinstance(own_task, str) and own_task in _TASKS:
        task = own_task
    task = _detect_task(model, truth, task)
    sens = _sensitive_frame(frame, sensitive)
    model_input = X if isinstance(X, pd.DataFrame) else frame.to_numpy()
    prepare = getattr(model, "prepare", None)
    if callable(prepare):  # a registered model: rows checked against its signature once
        model_input = prepare(frame)
    # what the explainer takes (a registered or forgeml-trained model names it)
    explained = getattr(model, "explainable_model", model)
    out_dir = (
        Path(output_dir)
        if output_dir is not None
        else Path(tempfile.mkdtemp(prefix="forgeml-evaluation-"))
    )
    # Given a run and no folder, the files go to a temporary folder that is removed once the
    # run holds them (the report's paths are then None: the run's ``evaluation`` artifact has
    # them). Without a run, the new temporary folder is the only copy and is kept.
    scratch = output_dir is None and run is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        name = model_name or type(model).__name__
        t = time.perf_counter()

        y_pred = np.asarray(model.predict(model_input))
        threshold: float | None = None
        at_default: Metrics | None = None
        proba: np.ndarray | None = None
        classes: np.ndarray | None = None
        positive = None
        if task != "regression":
            classes = np.asarray(getattr(model, "classes_", sorted(pd.unique(truth).tolist())))
            check_known_labels(truth, classes, "y")
            if hasattr(model, "predict_proba"):
                proba = np.asarray(model.predict_proba(model_input), dtype=np.float64)
            else:
                notes.append("The model has no predict_proba: no ROC, PR, log loss or calibration.")
            positive = (
                classes[1].item()
                if len(classes) == 2 and hasattr(classes[1], "item")
                else (classes[1] if len(classes) == 2 else None)
            )
            own = getattr(model, "threshold", None)
            if task == "binary" and isinstance(own, int | float) and not isinstance(own, bool):
                threshold = float(own)
            metrics = classification_metrics(
                truth,
                y_pred,
                y_score=proba,
                classes=classes,
                threshold=threshold,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
            )
            if threshold is not None and threshold != 0.5 and proba is not None:
                at_default = classification_metrics(
                    truth, y_score=proba, classes=classes, threshold=0.5, n_bootstrap=0
                )
                shown = ", ".join(
                    f"{k} {at_default[k].value:.3f} (at {threshold:.3g}: {metrics[k].value:.3f})"
                    for k in ("precision", "recall", "f1")
                    if k in at_default.as_dict()
                )
                notes.append(
                    f"Labels are at the model's decision threshold {threshold:.3g}; "
                    f"at 0.5 on the same {len(truth):,} rows: {shown}."
                )
        else:
            metrics = regression_metrics(
                truth, y_pred, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
            )
        t = lap("metrics", t)

        positive_score = None if proba is None or task != "binary" else proba[:, 1]
        sliced = slice_columns
        if sliced is None and frame.shape[1] > _MAX_SLICE_COLUMNS:
            # a wide table: slice by a seeded sample of its columns (time and memory bound)
            picked = np.random.default_rng(seed).choice(
                frame.shape[1], _MAX_SLICE_COLUMNS, replace=False
            )
            sliced = [str(frame.columns[j]) for j in np.sort(picked)]
            notes.append(
                f"Slices by a seeded sample of {_MAX_SLICE_COLUMNS} of {frame.shape[1]:,} "
                "columns (slice_columns= chooses them)."
            )
        slices = slice_metrics(
            frame.reset_index(drop=True),
            truth,
            y_pred,
            task=task,
            y_score=positive_score,
            positive_label=positive,
            columns=sliced,
        )
        t = lap("slices", t)

        fairness = None
        if sens is not None and task == "binary":
            fairness = fairness_audit(
                truth,
                y_pred,
                sens,
                positive_label=positive,
                thresholds=fairness_thresholds,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
            )
        elif sens is not None:
            notes.append(f"No fairness audit: it covers binary decisions; this task is {task}.")
        else:
            notes.append("No fairness audit: no sensitive column was named.")
        t = lap("fairness", t)

        importance: tuple[tuple[str, float], ...] = ()
        method = ""
        explanation = None
        if explain:
            from forgeml.evaluate._explain import Explainer

            family_rows, background_rows = max_explain_rows, 100
            if Explainer(explained).family_ == "other":
                family_rows = min(max_explain_rows, _PERMUTATION_ROWS)
                background_rows = _PERMUTATION_ROWS
            try:
                series, explanation = global_importance(
                    explained,
                    model_input if isinstance(X, pd.DataFrame) else frame,
                    max_rows=family_rows,
                    background=model_input,
                    background_rows=background_rows,
                    seed=seed,
                )
            except InputError as e:
                notes.append(f"No explanation: {e.message}")
            else:
                importance = tuple((str(k), float(v)) for k, v in series.items())
                method = explanation.method
                explained_rows = len(explanation.contributions)
                if explained_rows < len(frame) or explanation.note:
                    notes.append(
                        f"Explanations ({method}) on a seeded sample of {explained_rows:,} of "
                        f"{len(frame):,} rows"
                        + (f"; {explanation.note}" if explanation.note else "")
                        + " (to bound memory and time)."
                    )
        t = lap("explanations", t)

        figures = _figures(
            task, truth, y_pred, proba, metrics, classes, positive, explanation, importance, seed
        )
        images = {key: _plots.figure_png(fig) for key, fig in figures.items()}
        plots = []
        for key, data in images.items():
            path = out_dir / f"{key}.png"
            path.write_bytes(data)
            plots.append((key, path))
        t = lap("plots", t)

        report = EvaluationReport(
            model_name=name,
            task=task,
            columns=tuple(str(c) for c in frame.columns),
            metrics=metrics,
            slices=slices,
            fairness=fairness,
            importance=importance,
            explanation_method=method,
            plots=tuple(plots),
            report_path=out_dir / "report.html",
            output_dir=out_dir,
            dataset_name=dataset_name,
            intended_use=intended_use,
            notes=tuple(notes),
            timings=timings,
            run_id=run.run_id if run is not None else None,
            threshold=threshold,
            metrics_at_default=at_default,
            rows=rows,
            evaluated_at=evaluated_at,
        )
        # the header states the time spent so far (everything but writing the page itself)
        timings["total"] = round(time.perf_counter() - started, 4)
        write_report(report, images, out_dir / "report.html")
        (out_dir / "card.md").write_text(report.card().to_markdown(), encoding="utf-8")
        lap("report", t)
        timings["total"] = round(time.perf_counter() - started, 4)
        (out_dir / "evaluation.json").write_text(
            dumps_text(report.to_dict(), indent=True, lenient=True), encoding="utf-8"
        )
        if run is not None:
            logged: dict[str, float] = {}
            for v in metrics.values:
                logged[f"{metric_prefix}{v.name}"] = v.value
                if math.isfinite(v.lower):
                    logged[f"{metric_prefix}{v.name}_lower"] = v.lower
                    logged[f"{metric_prefix}{v.name}_upper"] = v.upper
            run.log_metrics(logged)
            run.log_artifact(out_dir, name="evaluation")
        if scratch:
            report = replace(report, report_path=None, output_dir=None, plots=())
        return report
    except BaseException:
        if output_dir is None:  # a failed evaluation leaves no temporary folder behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        if scratch:
            shutil.rmtree(out_dir, ignore_errors=True)


def _figures(
    task: str,
    truth: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    metrics: Metrics,
    classes: np.ndarray | None,
    positive: Any,
    explanation: Any,
    importance: tuple[tuple[str, float], ...],
    seed: int,
) -> dict[str, Any]:
    from forgeml.evaluate import _plots

    figures: dict[str, Any] = {}
    if task == "regression":
        figures["predicted_vs_actual"] = _plots.predicted_vs_actual_plot(
            truth.astype(np.float64), y_pred.astype(np.float64)
        )
        figures["residuals"] = _plots.residuals_plot(
            truth.astype(np.float64), y_pred.astype(np.float64)
        )
    else:
        assert classes is not None
        figures["confusion_matrix"] = _plots.confusion_matrix_plot(
            metrics.confusion_matrix, metrics.classes
        )
        if proba is not None:
            figures["roc_curve"] = _plots.roc_plot(truth, proba, list(classes), positive)
            figures["pr_curve"] = _plots.pr_plot(truth, proba, list(classes), positive)
            figures["calibration"] = _plots.calibration_plot(truth, proba, list(classes), positive)
        if metrics.threshold_curve:
            figures["threshold_curve"] = _plots.threshold_plot(
                metrics.threshold_curve, metrics.threshold
            )
    if importance:
        figures["feature_importance"] = _plots.importance_plot(pd.Series(dict(importance)))
    if explanation is not None:
        values = explanation.contributions
        if values.ndim == 3:  # multiclass: the first class's contributions
            values = values[:, :, 0]
        figures["shap_summary"] = _plots.shap_summary_plot(
            values, explanation.data, explanation.columns, seed=seed
        )
    return figures
