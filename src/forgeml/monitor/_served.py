"""Monitoring a served model: its prediction log, window by window, against its bundle's
reference.

Per window: input drift (one ``DriftDetector`` fitted once on the reference inputs), prediction
drift (the model's scores on the window against its scores on the reference), requests,
latency and error rate; on the rows whose labels came back through feedback, the true metrics
with bootstrap intervals and, per sensitive group, the fairness audit; on every row, the
confidence-based performance estimate (see ``_performance``); the serving cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from forgeml._json import dumps_text
from forgeml.errors import InputError
from forgeml.monitor._performance import Calibration, estimated_metrics
from forgeml.monitor._windows import LogWindow, WindowSpec, log_windows, parse_window

if TYPE_CHECKING:
    import pandas as pd

    from forgeml.store import Workspace

__all__ = ["ServedReport", "WindowResult", "served_report"]

_PREDICTION_COLUMN = "prediction_score"
_CALIBRATION_ROWS = 20_000
_MIN_CALIBRATION_ROWS = 100
_NOT_RECORDED = (
    "CPU time and memory per model are not recorded by the server: busy time is the sum of "
    "the logged request latencies (wall clock, one core per request assumed), so cost per "
    "1,000 predictions is an estimate from latency, not from measured CPU time"
)


@dataclass(frozen=True)
class WindowResult:
    """What one window of the log shows.

    Attributes:
        start_ms: the window's start (ms since the epoch).
        end_ms: its end (excluded).
        complete: the window is closed.
        requests: logged requests (failed ones included).
        rows: predicted rows.
        errors: failed requests.
        latency_ms: ``p50``, ``p99`` latency of the requests, ms.
        input_drift: the drift summary of the inputs (``None`` for an empty window).
        prediction_drift: the drift of the model's score (``None`` for an empty window).
        labelled_rows: rows whose labels came back.
        true: metric -> ``{"value", "lower", "upper"}`` on the labelled rows (empty before
            labels).
        estimated: metric -> expected value from the model's confidence (classifiers).
        fairness: sensitive column -> its disparities with intervals (labelled rows).
        resources: busy seconds and cost per 1,000 predictions.
        notes: what could not be computed for this window, and why.
    """

    start_ms: int
    end_ms: int
    complete: bool
    requests: int
    rows: int
    errors: int
    latency_ms: Mapping[str, float]
    input_drift: Mapping[str, Any] | None = None
    prediction_drift: Mapping[str, Any] | None = None
    labelled_rows: int = 0
    true: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    estimated: Mapping[str, float] = field(default_factory=dict)
    fairness: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, float | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """No predicted row: nothing to compare (no drift, no performance, no alert)."""
        return self.rows == 0

    @property
    def error_rate(self) -> float:
        """The share of the window's requests that failed."""
        return self.errors / self.requests if self.requests else float("nan")

    def values(self) -> dict[str, float]:
        """Every number of the window by its metric name, as alert rules and gauges name them
        (``input_drift.share_drifted``, ``true.accuracy``, ``estimated.roc_auc``...)."""
        out: dict[str, float] = {
            "requests": float(self.requests),
            "rows": float(self.rows),
            "errors": float(self.errors),
            "error_rate": self.error_rate,
            "labelled_rows": float(self.labelled_rows),
        }
        for key, latency in self.latency_ms.items():
            out[f"latency_{key}_ms"] = float(latency)
        if self.input_drift is not None:
            out["input_drift.share_drifted"] = float(self.input_drift["share_drifted"])
            out["input_drift.drifted"] = float(bool(self.input_drift["drifted"]))
            for column, info in self.input_drift["columns"].items():
                out[f"input_drift.column.{column}"] = _nan_if_none(info["effect_size"])
        if self.prediction_drift is not None:
            out["prediction_drift.effect_size"] = _nan_if_none(self.prediction_drift["effect_size"])
            out["prediction_drift.drifted"] = float(bool(self.prediction_drift["drifted"]))
        for name, metric in self.true.items():
            out[f"true.{name}"] = float(metric["value"])
        for name, number in self.estimated.items():
            out[f"estimated.{name}"] = float(number)
        for column, audit in self.fairness.items():
            for name, value in audit.get("disparities", {}).items():
                out[f"fairness.{column}.{name}"] = float(value["value"])
        for name, amount in self.resources.items():
            if amount is not None:
                out[f"resources.{name}"] = float(amount)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "complete": self.complete,
            "empty": self.empty,
            "requests": self.requests,
            "rows": self.rows,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "latency_ms": dict(self.latency_ms),
            "input_drift": self.input_drift,
            "prediction_drift": self.prediction_drift,
            "labelled_rows": self.labelled_rows,
            "true": {k: dict(v) for k, v in self.true.items()},
            "estimated": dict(self.estimated),
            "fairness": dict(self.fairness),
            "resources": dict(self.resources),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ServedReport:
    """A served model's log, window by window, against its reference.

    Attributes:
        ref: what was asked (``NAME@ALIAS``).
        model: the model's name.
        version: the version ``ref`` resolved to; only its logged predictions are read.
        task: ``binary``, ``multiclass`` or ``regression``.
        window: how the log was cut, in words; ``window_kind``: ``time`` or ``count``.
        reference_rows: rows of the bundle's reference sample.
        calibration: what the probabilities of the estimate were calibrated on.
        n_bootstrap: bootstrap replicates of the intervals; ``confidence`` their coverage;
            ``seed`` their seed.
        windows: the windows, oldest first.
        notes: what the whole report could not compute, and why.
        computed_at: when (ms since the epoch); ``seconds``: how long it took.
    """

    ref: str
    model: str
    version: int
    task: str | None
    window: str
    reference_rows: int
    calibration: str
    n_bootstrap: int
    confidence: float
    seed: int
    windows: tuple[WindowResult, ...]
    notes: tuple[str, ...] = ()
    price_per_core_hour: float | None = None
    window_kind: str = "time"
    computed_at: int = 0
    seconds: float = 0.0
    # the newest non-empty window's input DriftReport (its distributions, for the HTML page)
    latest_drift: Any = field(default=None, repr=False, compare=False)

    @property
    def header(self) -> str:
        """One line saying what the numbers were computed on."""
        rows = sum(w.rows for w in self.windows)
        return (
            f"{self.ref} = version {self.version}: {rows:,} logged predictions of version "
            f"{self.version} in {len(self.windows)} {self.window}, each against the bundle's "
            f"reference sample ({self.reference_rows:,} training rows); intervals: "
            f"{self.confidence:.0%} bootstrap, {self.n_bootstrap} replicates, seed {self.seed}"
        )

    def frame(self) -> pd.DataFrame:
        """One row per window, one column per metric of ``WindowResult.values``."""
        import pandas as pd

        return pd.DataFrame(
            [{"start_ms": w.start_ms, "end_ms": w.end_ms, **w.values()} for w in self.windows]
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ref": self.ref,
            "model": self.model,
            "version": self.version,
            "task": self.task,
            "window": self.window,
            "window_kind": self.window_kind,
            "header": self.header,
            "reference_rows": self.reference_rows,
            "calibration": self.calibration,
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
            "seed": self.seed,
            "price_per_core_hour": self.price_per_core_hour,
            "computed_at": self.computed_at,
            "seconds": self.seconds,
            "notes": list(self.notes),
            "windows": [w.to_dict() for w in self.windows],
        }

    def to_json(self) -> str:
        """``to_dict`` as JSON (NaN as null)."""
        return dumps_text(self.to_dict(), lenient=True)


# -- computing ---------------------------------------------------------------------------------


class _Baseline:
    """What every window is compared with, computed once: the loaded model, its reference
    inputs and scores, the fitted detectors and the calibration."""

    def __init__(
        self,
        ws: Workspace,
        ref: str,
        *,
        trust_pickle: bool,
        seed: int,
        drift_options: Mapping[str, Any],
    ) -> None:
        import forgeml.registry as registry

        self.loaded = registry.load(ref, workspace=ws, trust_pickle=trust_pickle)
        self.inputs = list(self.loaded.signature.names)
        reference = self.loaded.reference()
        if reference is None or len(reference) == 0:
            raise InputError(
                f"{ref} has no reference sample (it was registered without sample rows): "
                "there is nothing to compare its predictions with"
            )
        self.reference = reference
        self.classes = self.loaded.classes
        self.task = self.loaded.task or ("regression" if self.classes is None else None)
        # A masked column holds only present / missing: nothing to compare. Hashed columns
        # are compared as categories (the reference and the log hold the same keyed hashes).
        pii = self.loaded.pii
        self.masked = [c for c in self.inputs if pii.action(c) == "mask"]
        self.hashed = [c for c in self.inputs if pii.action(c) == "hash"]
        self.monitored = [c for c in self.inputs if c not in self.masked] or self.inputs
        ref_inputs = _comparable(reference.loc[:, self.monitored])
        self.input_detector = _detector(seed, drift_options).fit(ref_inputs)
        ref_scores = self._scores_of_model(reference.loc[:, self.inputs])
        self.score_detector = _detector(seed, drift_options).fit(ref_scores)
        self.seed = seed
        self.calibration: Calibration | None = None
        if self.classes is not None:
            self.calibration = self._calibration(ws)

    def _scores_of_model(self, rows: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        predicted, proba = self.loaded.predict_both(rows, probabilities=True)
        return pd.DataFrame({_PREDICTION_COLUMN: self._score(predicted, proba)})

    def _score(self, predicted: Any, proba: np.ndarray | None) -> Any:
        """The one column prediction drift watches: the positive class's probability (binary),
        the predicted class (multiclass), the prediction (regression)."""
        import pandas as pd

        if self.classes is not None and len(self.classes) == 2 and proba is not None:
            return np.asarray(proba, dtype=np.float64)[:, 1]
        if self.classes is not None:
            return pd.Series(np.asarray(predicted, dtype=object)).astype(str).to_numpy()
        return np.asarray(predicted, dtype=np.float64)

    def _calibration(self, ws: Workspace) -> Calibration:
        """Isotonic calibration on the labelled rows the model was tested on and never trained
        on (the recorded hold-out of its training dataset); the identity without them.

        The bundle's reference sample is not used: it holds training rows, on which a model
        is more confident than on new rows, so an estimate calibrated there is optimistic.
        """
        assert self.classes is not None
        import forgeml.data as data

        lineage = self.loaded.metadata.get("lineage") or {}
        dataset, split = lineage.get("dataset"), lineage.get("split")
        if not dataset or not split:
            return Calibration.identity(
                self.classes,
                "no held-out labelled rows are recorded with the model (trained without a "
                "recorded split); its probabilities are taken as calibrated",
            )
        version = data.get(dataset, workspace=ws)
        target = version.target
        rows = data.load(version, part="test", split=split, workspace=ws)
        if target is None or target not in rows.columns:
            return Calibration.identity(
                self.classes, f"{dataset} has no target column; probabilities taken as given"
            )
        rows = rows[rows[target].notna()]
        if len(rows) > _CALIBRATION_ROWS:
            rows = rows.sample(_CALIBRATION_ROWS, random_state=self.seed)
        labels = _true_labels_of(self.classes, rows[target])
        if len(rows) < _MIN_CALIBRATION_ROWS or not set(labels.tolist()) <= set(self.classes):
            return Calibration.identity(
                self.classes,
                f"the held-out rows of {dataset} are fewer than {_MIN_CALIBRATION_ROWS} or "
                "hold labels that are not the model's classes; probabilities taken as given",
            )
        proba = self.loaded.predict_proba(rows.loc[:, self.inputs])
        return Calibration.fit(
            proba,
            labels,
            self.classes,
            f"isotonic, on {len(rows):,} held-out rows of {dataset} (split {split!r}, part "
            "test: never trained on)",
        )

    def window_scores(self, rows: pd.DataFrame) -> tuple[Any, np.ndarray | None]:
        """(logged predictions, logged probabilities rows x classes or None)."""
        predicted = rows["prediction"].to_numpy()
        if self.classes is None:
            return predicted, None
        columns = [f"proba_{c}" for c in self.classes]
        if not all(c in rows.columns for c in columns):
            return predicted, None
        proba = rows.loc[:, columns].to_numpy(dtype=np.float64)
        return predicted, proba


def _detector(seed: int, options: Mapping[str, Any]) -> Any:
    from forgeml.monitor._detector import DriftDetector

    settings = {"random_state": seed, "multivariate": False, **options}
    return DriftDetector(**settings)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain text, so the reference and the log (where categories are JSON
    strings) are compared on the same values."""
    import pandas as pd

    out = {}
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object:
            values = values.astype(object).where(values.notna(), None)
            values = values.map(lambda v: None if v is None else str(v)).astype(object)
        elif pd.api.types.is_bool_dtype(values):
            values = values.astype(np.float64)
        out[column] = values
    return pd.DataFrame(out, index=frame.index)


def _window_inputs(rows: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The window's input columns, typed like the reference's."""
    import pandas as pd

    out = {}
    for column in reference.columns:
        values = rows[column] if column in rows.columns else pd.Series([None] * len(rows))
        if pd.api.types.is_numeric_dtype(reference[column]) and not pd.api.types.is_bool_dtype(
            reference[column]
        ):
            values = pd.to_numeric(values, errors="coerce").astype(np.float64)
        out[column] = values.reset_index(drop=True)
    return _comparable(pd.DataFrame(out))


def _drift_summary(report: Any) -> dict[str, Any]:
    """The parts of a ``DriftReport`` the served report keeps."""
    columns: dict[str, Any] = {}
    raw = getattr(report, "columns", ())
    items = raw.values() if isinstance(raw, Mapping) else raw
    for col in items:
        columns[str(col.column)] = {
            "test": getattr(col, "test", None),
            "statistic": _number(getattr(col, "statistic", None)),
            "p_value": _number(getattr(col, "p_value", None)),
            "effect_size": _number(col.effect_size),
            "threshold": _number(getattr(col, "threshold", None)),
            "drifted": bool(col.drifted),
        }
    share = getattr(report, "share_drifted", None)
    if share is None:
        share = sum(c["drifted"] for c in columns.values()) / max(len(columns), 1)
    return {
        "drifted": bool(report.drifted),
        "share_drifted": float(share),
        "rule": str(getattr(report, "rule", "")),
        "drifted_columns": [name for name, c in columns.items() if c["drifted"]],
        "columns": columns,
    }


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def served_report(
    ref: str,
    *,
    window: str | int | WindowSpec = "1d",
    since_ms: int | None = None,
    until_ms: int | None = None,
    sensitive: Sequence[str] = (),
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    price_per_core_hour: float | None = None,
    trust_pickle: bool = False,
    drift_options: Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
    now_ms: int | None = None,
    on_window: Callable[[WindowResult], None] | None = None,
) -> ServedReport:
    """Monitor ``NAME@ALIAS`` (or ``NAME@VERSION``) over its prediction log.

    Args:
        ref: the served model; the alias is resolved now and that version's log is read.
        window: ``1d``, ``6h``, ``30m``... (time windows, UTC) or a number of predictions.
        since_ms: only requests at or after this time (ms since the epoch).
        until_ms: only requests before this time.
        sensitive: logged input columns to audit for fairness per window (labelled rows).
        n_bootstrap: bootstrap replicates of the true metrics' and fairness intervals.
        confidence: coverage of the intervals.
        seed: seed of the bootstraps and the drift detectors.
        price_per_core_hour: price of one core-hour, for the cost per 1,000 predictions.
        trust_pickle: load a pickled model (see ``forgeml.load``).
        drift_options: keywords for the ``DriftDetector`` (``alpha``...).
        workspace: the workspace (default: the default one).
        now_ms: the current time, for which time windows are closed.
        on_window: called with each window's result as soon as it is computed.

    Returns:
        The report; a model without logged predictions gives a report without windows.

    Raises:
        InputError: a bad window, a sensitive column the model does not take, a bad price.
        NotFoundError: no such model, version or alias.
    """
    import forgeml.registry as registry

    started = time.perf_counter()
    spec = parse_window(window)
    if n_bootstrap < 0:
        raise InputError(f"n_bootstrap: expected an integer >= 0; got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence: expected a number in (0, 1); got {confidence}")
    if price_per_core_hour is not None and not (
        math.isfinite(price_per_core_hour) and price_per_core_hour >= 0
    ):
        raise InputError(
            f"price per core-hour: expected a finite number >= 0; got {price_per_core_hour}"
        )
    ws = _workspace(workspace)
    record = registry.get_version(ref, workspace=ws)
    base = _Baseline(
        ws, ref, trust_pickle=trust_pickle, seed=seed, drift_options=dict(drift_options or {})
    )
    unknown = [c for c in sensitive if c not in base.inputs]
    if unknown:
        raise InputError(
            f"sensitive: {', '.join(map(repr, unknown))} not among the logged inputs of "
            f"{record.name}@{record.version} ({', '.join(base.inputs[:12])})"
        )
    results = []
    latest_drift = None
    for log_window in log_windows(
        ws.predlog,
        record.name,
        spec,
        version=record.version,
        since_ms=since_ms,
        until_ms=until_ms,
        now_ms=now_ms,
    ):
        result, drift_report = _window_result(
            base,
            log_window,
            sensitive=sensitive,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
            price=price_per_core_hour,
        )
        results.append(result)
        if drift_report is not None:
            latest_drift = drift_report
        if on_window is not None:
            on_window(result)
    notes = [_NOT_RECORDED]
    notes += [
        f"{c}: not monitored for drift: masked by the PII policy (only present / missing is stored)"
        for c in base.masked
    ]
    if base.hashed:
        notes.append(
            f"{', '.join(base.hashed)}: compared as categories of keyed hashes (PII policy: "
            "the log and the reference hold hashes, never the values)"
        )
    if spec.kind == "time" and results:
        span = (results[-1].end_ms - results[0].start_ms) // spec.size
        if span > len(results):
            notes.append(
                f"{span - len(results)} window(s) between the first and the last had no "
                "request at all (not listed; an alert's consecutive windows never span them)"
            )
    if not results:
        notes.insert(0, f"No logged predictions of {record.name}@{record.version}: no windows")
    return ServedReport(
        ref=ref,
        model=record.name,
        version=record.version,
        task=base.task,
        window=spec.describe(),
        reference_rows=len(base.reference),
        calibration="" if base.calibration is None else base.calibration.source,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
        windows=tuple(results),
        notes=tuple(notes),
        price_per_core_hour=price_per_core_hour,
        window_kind=spec.kind,
        computed_at=int(time.time() * 1000),
        seconds=time.perf_counter() - started,
        latest_drift=latest_drift,
    )


def _workspace(workspace: Workspace | None) -> Workspace:
    if workspace is not None:
        return workspace
    from forgeml.store import Workspace

    return Workspace()


def _window_result(
    base: _Baseline,
    window: LogWindow,
    *,
    sensitive: Sequence[str],
    n_bootstrap: int,
    confidence: float,
    seed: int,
    price: float | None,
) -> tuple[WindowResult, Any]:
    """The window's result and its input ``DriftReport`` (``None`` for an empty window)."""
    stats = window.stats
    latency = {f"p{q:g}": float(v) for q, v in stats.latency_ms.items() if q in (50.0, 99.0)}
    rows = window.rows
    busy = float(_busy_seconds(rows))
    resources: dict[str, float | None] = {
        "busy_seconds": busy,
        "cost_per_1000": None
        if price is None or stats.rows == 0
        else busy / 3600.0 * price / stats.rows * 1000.0,
    }
    common: dict[str, Any] = {
        "start_ms": window.start_ms,
        "end_ms": window.end_ms,
        "complete": window.complete,
        "requests": stats.requests,
        "rows": len(rows),
        "errors": stats.errors,
        "latency_ms": latency,
        "resources": resources,
    }
    if len(rows) == 0:
        empty = WindowResult(
            **common,
            notes=(
                f"empty window: its {stats.requests} request(s) all failed; no drift, "
                "performance or alert is computed on it",
            ),
        )
        return empty, None
    notes: list[str] = []
    current = _window_inputs(rows, base.reference.loc[:, base.monitored])
    drift_report = base.input_detector.score(current)
    input_drift = _drift_summary(drift_report)
    predicted, proba = base.window_scores(rows)
    import pandas as pd

    scores = pd.DataFrame({_PREDICTION_COLUMN: base._score(predicted, proba)})
    score_report = _drift_summary(base.score_detector.score(scores))
    column = score_report["columns"].get(_PREDICTION_COLUMN, {})
    prediction_drift = {
        "column": "positive-class probability"
        if base.classes is not None and len(base.classes) == 2
        else "predicted class"
        if base.classes is not None
        else "prediction",
        "effect_size": column.get("effect_size"),
        "threshold": column.get("threshold"),
        "test": column.get("test"),
        "drifted": bool(score_report["drifted"]),
    }
    estimated: dict[str, float] = {}
    if base.calibration is not None:
        if proba is None:
            notes.append("no logged probabilities: no performance estimate")
        else:
            estimated = estimated_metrics(proba, predicted, base.calibration)
    labelled = rows["label"].notna().to_numpy() if "label" in rows.columns else None
    n_labelled = int(labelled.sum()) if labelled is not None else 0
    true: dict[str, dict[str, float]] = {}
    fairness: dict[str, Any] = {}
    if n_labelled:
        part = rows.loc[labelled]
        true, note = _true_metrics(base, part, n_bootstrap, confidence, seed)
        if note:
            notes.append(note)
        if sensitive:
            fairness, more = _fairness(base, part, sensitive, n_bootstrap, confidence, seed)
            notes.extend(more)
    else:
        notes.append("no labels yet: performance is estimated only")
    result = WindowResult(
        **common,
        input_drift=input_drift,
        prediction_drift=prediction_drift,
        labelled_rows=n_labelled,
        true=true,
        estimated=estimated,
        fairness=fairness,
        notes=tuple(notes),
    )
    return result, drift_report


def _busy_seconds(rows: pd.DataFrame) -> float:
    """Summed latency of the window's answered requests, seconds."""
    if len(rows) == 0:
        return 0.0
    per_request = rows.drop_duplicates("request_id")["latency_ms"]
    return float(per_request.sum()) / 1000.0


def _true_labels(base: _Baseline, labels: pd.Series) -> np.ndarray:
    """Feedback labels in the model's class types (JSON may send 1 for the class "1")."""
    return _true_labels_of(base.classes, labels)


def _true_labels_of(classes: tuple[Any, ...] | None, labels: pd.Series) -> np.ndarray:
    values = labels.to_numpy(dtype=object)
    if classes is None:
        return np.asarray(values, dtype=np.float64)
    by_text = {str(c): c for c in classes}
    return np.asarray([by_text.get(str(v), v) for v in values.tolist()], dtype=object)


def _true_metrics(
    base: _Baseline, part: pd.DataFrame, n_bootstrap: int, confidence: float, seed: int
) -> tuple[dict[str, dict[str, float]], str | None]:
    from forgeml.evaluate import classification_metrics, regression_metrics

    truth = _true_labels(base, part["label"])
    predicted, proba = base.window_scores(part)
    try:
        if base.classes is None:
            metrics = regression_metrics(
                truth,
                np.asarray(predicted, dtype=np.float64),
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
            )
            wanted: tuple[str, ...] = ("rmse", "mae", "r2")
        else:
            metrics = classification_metrics(
                truth,
                np.asarray(predicted, dtype=object),
                y_score=proba,
                classes=list(base.classes),
                threshold=base.loaded.threshold,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
            )
            wanted = ("accuracy", "roc_auc", "f1", "f1_macro", "log_loss")
    except InputError as e:
        return {}, f"true metrics not computed on the labelled rows: {e}"
    out = {}
    for value in metrics.values:
        if value.name in wanted:
            out[value.name] = {"value": value.value, "lower": value.lower, "upper": value.upper}
    return out, None


def _fairness(
    base: _Baseline,
    part: pd.DataFrame,
    sensitive: Sequence[str],
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> tuple[dict[str, Any], list[str]]:
    from forgeml.evaluate import audit_predictions

    if base.classes is None or len(base.classes) != 2:
        return {}, ["fairness per group is audited for binary classifiers only"]
    table = part.loc[:, [*sensitive, "prediction"]].reset_index(drop=True)
    table["label"] = _true_labels(base, part["label"])
    table["prediction"] = _true_labels(base, part["prediction"])
    out: dict[str, Any] = {}
    notes = []
    for column in sensitive:
        try:
            report = audit_predictions(
                table,
                label="label",
                sensitive=[column],
                prediction="prediction",
                positive_label=base.classes[1],
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                seed=seed,
            )
        except InputError as e:
            notes.append(f"fairness of {column!r} not audited in this window: {e}")
            continue
        audit = report[column].to_dict()
        out[column] = {
            "groups": audit.get("groups"),
            "disparities": audit.get("disparities", {}),
        }
    return out, notes
