"""A second stacking level over bagged level-1 members (AutoGluon's multi-layer stack).

Level-2 models are the configurations of the best level-1 trials of the leading families,
fitted on the raw columns plus the level-1 members' out-of-fold predictions, and bagged with
the *same* folds: fold ``f``'s level-2 model trains on rows outside ``f``, and its
predictions for the rows of ``f`` read level-1 values that fold ``f``'s level-1 models made
without those rows. So no row's level-2 out-of-fold prediction saw its own label through
either level, and the level-2 out-of-fold score is as honest as the level-1 one (the
remaining second-order effect, that a training row's level-1 value came from models that saw
other training rows, is the one AutoGluon accepts too).

At prediction time the level-1 inputs are the bags' averages (``StackedBag``). In regression
every input's column holds its predictions in the target's units (its out-of-fold predictions
are, whichever target transform it was fitted on), and each level-2 model is fitted on the
transform of the level-1 trial whose configuration it copies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forgeml.train._compiled import level1_features
from forgeml.train._model import raw_predict
from forgeml.train._search import Problem, TrialRecord, evaluate_config, fit_pipeline
from forgeml.train._target import forward_transform, inverse_transform
from forgeml.train._zoo import FAMILIES

__all__ = [
    "BAGGED_FAMILIES",
    "Level2Probe",
    "StackLevel",
    "fit_level2",
    "level2_configs",
    "probe_level2",
    "stack_estimate",
]

# Families whose members are bagged rather than refitted: boosted trees predicting on arrays,
# so k fold models cost k booster calls on one encoded row (well under a millisecond), and
# bagging is where boosting gains most. Forests are bags already, and the other families
# predict through a DataFrame or a fitted transformer per model: refitted on all rows.
BAGGED_FAMILIES = ("lgbm", "xgb")
# Level-1 members whose predictions a level-2 model reads (each is k fold models to predict).
STACK_INPUTS = 5
# Level-2 models: the best configuration of this many leading families.
STACK_MODELS = 2
# Before a probe: a level-2 fold fit reads a few more columns than the level-1 fit it copies
# (an upper bound: level-2 models stop early after far fewer rounds, which only a probe
# measures).
_COST_FACTOR = 1.3
# A probe times one level-2 fold, during the search; the level's other folds stop early after
# other numbers of rounds. Measured (bike-sharing, california-housing, german-credit-amount,
# 60 s budgets, loaded machine): a fold probed during the search times k came to 1.4 to 3.1
# times the whole level fitted after it; fitted alone one after the other (bike-sharing,
# LightGBM and XGBoost starting points), to 0.95 to 1.36 times.
_PROBE_MARGIN = 1.2


@dataclass(frozen=True)
class Level2Probe:
    """One level-2 fold of a level-1 trial's configuration, fitted and timed during the
    search: what the second level costs against the first for that family. A level-2 model
    reads the level-1 out-of-fold predictions as columns, so early stopping ends it after
    far fewer rounds than its level-1 original (on bike-sharing 40 to 125 rounds against
    340 to 820, a fold 3 to 4 times shorter), and it predicts faster for the same reason."""

    family: str
    number: int  # the level-1 trial whose configuration was fitted
    level1_seconds: float  # that trial's mean fold: fit, then predicting the validation fold
    seconds: float  # the level-2 fold, the same way
    level1_predict_seconds: float  # that trial's mean validation-fold prediction
    predict_seconds: float  # the level-2 fold model's prediction of the same rows
    # the level-2 fold model's predictions of its validation fold (the problem's first
    # fold; in regression in the target's units), which the search compares with the
    # level-1 blend's on the same rows
    prediction: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def ratio(self) -> float:
        """Level-2 fold time over level-1 fold time (fit and validation prediction)."""
        return self.seconds / max(self.level1_seconds, 1e-9)

    @property
    def predict_ratio(self) -> float:
        """Level-2 prediction time over level-1 prediction time, per row."""
        return self.predict_seconds / max(self.level1_predict_seconds, 1e-9)


@dataclass
class StackLevel:
    """A fitted second level: its inputs, the columns they fill, and its bagged models."""

    inputs: list[TrialRecord]
    columns: list[str]
    models: list[TrialRecord]  # complete level-2 trials (OOF and fold models)


def level2_configs(ranked: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The level-1 trials whose configurations level 2 refits: the best of each of the
    ``STACK_MODELS`` leading bagged families."""
    chosen: list[TrialRecord] = []
    for record in ranked:
        if record.family not in BAGGED_FAMILIES:
            continue
        if all(c.family != record.family for c in chosen):
            chosen.append(record)
        if len(chosen) == STACK_MODELS:
            break
    return chosen


def _fold_seconds(record: TrialRecord) -> float:
    """Seconds of ``record``'s folds: their fits and validation predictions."""
    return float(sum(record.fit_seconds) + sum(record.predict_seconds))


def stack_estimate(
    ranked: Sequence[TrialRecord], probes: Mapping[str, Level2Probe] | None = None
) -> float:
    """Seconds the second level should take: for each configuration it refits, its level-1
    folds scaled by its family's probe (with a margin for the folds the probe did not time),
    or before a probe its level-1 fold fits with a margin for the extra columns."""
    total = 0.0
    for record in level2_configs(ranked):
        probe = (probes or {}).get(record.family)
        if probe is None:
            total += _COST_FACTOR * sum(record.fit_seconds)
        else:
            total += _PROBE_MARGIN * probe.ratio * _fold_seconds(record)
    return total


def level2_problem(problem: Problem, inputs: Sequence[TrialRecord]) -> tuple[Problem, list[str]]:
    """The problem level 2 fits: the raw columns and ``inputs``' out-of-fold predictions,
    and the names of the columns those fill."""
    parts = [level1_features(np.asarray(r.oof), problem.task) for r in inputs]
    values = np.hstack(parts)
    columns = _column_names(inputs, parts[0].shape[1], problem.X.columns)
    extra = pd.DataFrame(values, columns=columns, index=problem.X.index)
    level2 = replace(
        problem,
        X=pd.concat([problem.X, extra], axis=1),
        kinds={**problem.kinds, **dict.fromkeys(columns, "numeric")},
    )
    return level2, columns


def probe_level2(
    problem: Problem,
    inputs: Sequence[TrialRecord],
    config: TrialRecord,
    *,
    deadline: float,
) -> Level2Probe | None:
    """Fit and time the first level-2 fold of ``config`` over ``inputs`` (as ``fit_level2``
    would, then predicting its validation fold, as a trial does).

    Returns:
        The probe, or ``None`` when the fit was cut by ``deadline``, failed, or ``config``
        has no measured folds to compare with.
    """
    if not config.fit_seconds or not config.predict_seconds or not inputs:
        return None
    level2, _ = level2_problem(problem, inputs)
    train_pos, val_pos = level2.folds.splits[0]
    started = time.monotonic()
    try:
        pipeline, outcome = fit_pipeline(
            level2,
            FAMILIES[config.family],
            config.params,
            level2.X.iloc[train_pos],
            forward_transform(level2.y, config.transform)[train_pos],
            deadline=deadline,
        )
        if outcome.truncated:
            return None
        predicting = time.monotonic()
        prediction = raw_predict(pipeline, level2.X.iloc[val_pos], level2.task)
        # in the target's units, as the level-1 blend it is judged against (with the shift of
        # the level-1 trial it copies: the level-2 model's own is fitted on all its folds)
        prediction = inverse_transform(prediction, config.transform, config.shift)
    except Exception:  # a configuration that cannot fit these columns: level 2 will say so
        return None
    ended = time.monotonic()
    folds = len(config.fit_seconds)
    return Level2Probe(
        family=config.family,
        number=config.number,
        level1_seconds=_fold_seconds(config) / folds,
        seconds=ended - started,
        level1_predict_seconds=float(np.mean(config.predict_seconds)),
        predict_seconds=ended - predicting,
        prediction=np.asarray(prediction),
    )


def _column_names(inputs: Sequence[TrialRecord], width: int, taken: pd.Index) -> list[str]:
    prefix = "stack"
    while any(str(c).startswith(prefix + "_") for c in taken):
        prefix = "_" + prefix
    return [f"{prefix}_{r.family}{r.number}_{j}" for r in inputs for j in range(width)]


def fit_level2(
    problem: Problem,
    inputs: Sequence[TrialRecord],
    configs: Sequence[TrialRecord],
    *,
    deadline: float,
    stop_doomed: bool = True,
) -> StackLevel | None:
    """Fit the second level on ``inputs``' out-of-fold predictions, each configuration of
    ``configs`` cross-validated (bagged) on the problem's folds; ``stop_doomed`` as
    ``evaluate_config`` takes it (``False`` in the deterministic mode).

    Returns:
        The level with its complete models, or ``None`` when none completed by ``deadline``.
    """
    level2, columns = level2_problem(problem, inputs)
    models: list[TrialRecord] = []
    for config in configs:
        if time.monotonic() >= deadline:
            break
        record = TrialRecord(
            number=config.number,
            family=config.family,
            params=dict(config.params),
            transform=config.transform,
        )
        evaluate_config(
            level2, record, deadline=deadline, cost_aware=False, stop_doomed=stop_doomed
        )
        if record.state == "complete":
            models.append(record)
    if not models:
        return None
    return StackLevel(inputs=list(inputs), columns=columns, models=models)
