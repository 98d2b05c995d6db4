"""What ``train`` returns: the model, its scores, the leaderboard and the input schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from forgeml.security import PiiPolicy
from forgeml.train._model import TrainedModel

__all__ = ["TrainResult"]


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one training.

    Attributes:
        model: the refit best pipeline or ensemble; ``predict(df)`` and, for classification,
            ``predict_proba(df)`` take the raw feature columns.
        leaderboard: one row per completed trial (and the ensemble, when kept), best first:
            ``rank``, ``model``, ``trial``, the metric's cross-validated score, its spread
            over folds, fit and trial seconds, parameters.
        run_id: the tracked run.
        task: binary, multiclass or regression.
        metric: the metric optimised.
        greater_is_better: its direction.
        cv_score: the chosen model's out-of-fold score (on the validation split's rows
            with ``validation`` holdout).
        test_metrics: the chosen model's metrics on the held-out test split.
        baseline_metrics: a trivial model's test metrics (training class shares, or the
            training mean), for comparison.
        target: the target column.
        feature_columns: the raw columns the model reads.
        classes_: the class labels (classification).
        column_kinds: kind of every feature column (identifiers included: they are dropped).
        input_schema: per feature column: kind, dtype, missing share and its categories or
            range in the training rows, for validating new data and for the registry.
        threshold: the tuned decision threshold (binary, label metrics).
        best: the best single trial's family and parameters.
        ensemble: each ensemble member's trial number, family and weight (empty if the best
            single model won).
        n_trials: trials run, by state.
        failures: per family with failed trials: ``trials``, ``failed``, ``all_failed`` and
            ``first_error``.
        elapsed: wall seconds the call took.
        time_budget: the budget in seconds.
        notes: fallbacks taken (rows dropped, folds reduced...).
        latency: the returned model's prediction time, measured after the refit on held-out
            rows: ``one_row_ms`` (``predict_proba``, or ``predict`` for a regressor, on a
            one-row DataFrame, median of 10 calls), ``rows_1000_ms`` (one call on 1,000
            held-out rows, drawn with replacement when there are fewer) and
            ``first_call_ms`` (the first one-row call, which builds the compiled form): only
            what was measured before the deadline (the notes say what was not); when the
            one-row time was not, ``one_row_ms_estimated`` is its members' measured during
            the search, summed (an estimate).
        dataset: the training dataset version, when trained from the dataset store.
        evaluation: the ``forgeml.evaluate`` report on the held-out rows, when asked for.
        split: the recorded split of the dataset version whose train part the model was
            fitted on and whose test part it was scored on (trained from a dataset).
        config: the ``TrainConfig`` the training ran with.
        n_train_rows: rows the model was searched and refit on.
        n_test_rows: held-out rows the test metrics were computed on.
        phases: seconds each phase of the budget took, in order: ``prepare`` (encoding the
            target, starting the run, the target transform), ``search``, ``latency`` (the
            candidates' prediction time), ``selection`` (the ensemble), ``stacking`` (the
            second level), ``decisions`` (threshold, calibration), ``refit``, ``measure``
            (the returned model's prediction time), ``holdout``
            (the held-out predictions and the permutation check) and ``record`` (writing the
            run); a phase that did not run is absent.
        validation: how trials were scored: ``cv`` (k folds) or ``holdout`` (one split).
        n_validation_rows: training rows the scores were computed on (out of fold).
        pii: the PII policy the training data was stored or trained under (the dataset
            version's, or the one ``train`` applied to a table): the columns it hashes or
            masks are what ``model`` takes; ``register`` copies it into the bundle.
    """

    model: TrainedModel
    leaderboard: pd.DataFrame
    run_id: str
    task: str
    metric: str
    greater_is_better: bool
    cv_score: float
    test_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    target: str
    feature_columns: list[str]
    classes_: list[Any] | None
    column_kinds: dict[str, str]
    input_schema: dict[str, dict[str, Any]]
    threshold: float | None
    best: dict[str, Any]
    ensemble: list[dict[str, Any]]
    n_trials: dict[str, int]
    elapsed: float
    time_budget: float
    notes: list[str] = field(default_factory=list)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset: str | None = None
    evaluation: Any = None
    split: str | None = None
    config: Any = None
    n_train_rows: int | None = None
    n_test_rows: int | None = None
    latency: dict[str, float] | None = None
    phases: dict[str, float] = field(default_factory=dict)
    pii: PiiPolicy | None = None
    validation: str = "cv"
    n_validation_rows: int | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``forgeml train --json`` prints)."""
        return {
            "run_id": self.run_id,
            "task": self.task,
            "metric": self.metric,
            "cv_score": self.cv_score,
            "validation": self.validation,
            "n_validation_rows": self.n_validation_rows,
            "test_metrics": self.test_metrics,
            "baseline_metrics": self.baseline_metrics,
            "best": self.best,
            "ensemble": self.ensemble,
            "n_trials": self.n_trials,
            "failures": self.failures,
            "elapsed": round(self.elapsed, 3),
            "time_budget": self.time_budget,
            "threshold": self.threshold,
            "feature_columns": self.feature_columns,
            "classes": self.classes_,
            "notes": self.notes,
            "dataset": self.dataset,
            "split": self.split,
            "n_train_rows": self.n_train_rows,
            "n_test_rows": self.n_test_rows,
            "latency": self.latency,
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "config": None if self.config is None else self.config.to_dict(),
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
            "leaderboard": self.leaderboard.to_dict(orient="records"),
        }

    def __repr__(self) -> str:
        return (
            f"TrainResult(task={self.task!r}, metric={self.metric!r}, "
            f"cv_score={self.cv_score:.6g}, test={self.test_metrics.get(self.metric)}, "
            f"model={self.model!r}, run_id={self.run_id!r})"
        )
