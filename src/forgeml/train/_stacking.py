"""A second stacking level over bagged level-1 members (AutoGluon's multi-layer stack).

Level-2 models are the configurations of the best level-1 trials of the leading families,
fitted on the raw columns plus the level-1 members' out-of-fold predictions, and bagged with
the *same* folds: fold ``f``'s level-2 model trains on rows outside ``f``, and its
predictions for the rows of ``f`` read level-1 values that fold ``f``'s level-1 models made
without those rows. So no row's level-2 out-of-fold prediction saw its own label through
either level, and the level-2 out-of-fold score is as honest as the level-1 one (the
remaining second-order effect, that a training row's level-1 value came from models that saw
other training rows, is the one AutoGluon accepts too).

At prediction time the level-1 inputs are the bags' averages (``StackedBag``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forgeml.train._compiled import level1_features
from forgeml.train._search import Problem, TrialRecord, evaluate_config

__all__ = ["BAGGED_FAMILIES", "StackLevel", "fit_level2", "level2_configs", "stack_estimate"]

# Families whose members are bagged rather than refitted: boosted trees predicting on arrays,
# so k fold models cost k booster calls on one encoded row (well under a millisecond), and
# bagging is where boosting gains most. Forests are bags already, and the other families
# predict through a DataFrame or a fitted transformer per model: refitted on all rows.
BAGGED_FAMILIES = ("lgbm", "xgb")
# Level-1 members whose predictions a level-2 model reads (each is k fold models to predict).
STACK_INPUTS = 5
# Level-2 models: the best configuration of this many leading families.
STACK_MODELS = 2
# A level-2 fold fit reads a few more columns than the level-1 fit it copies.
_COST_FACTOR = 1.3


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


def stack_estimate(ranked: Sequence[TrialRecord]) -> float:
    """Seconds the second level should take: the fold fits of the configurations it refits,
    with a margin for the extra columns."""
    return _COST_FACTOR * sum(sum(r.fit_seconds) for r in level2_configs(ranked))


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
) -> StackLevel | None:
    """Fit the second level on ``inputs``' out-of-fold predictions, each configuration of
    ``configs`` cross-validated (bagged) on the problem's folds.

    Returns:
        The level with its complete models, or ``None`` when none completed by ``deadline``.
    """
    parts = [level1_features(np.asarray(r.oof), problem.task) for r in inputs]
    values = np.hstack(parts)
    columns = _column_names(inputs, parts[0].shape[1], problem.X.columns)
    extra = pd.DataFrame(values, columns=columns, index=problem.X.index)
    level2 = replace(
        problem,
        X=pd.concat([problem.X, extra], axis=1),
        kinds={**problem.kinds, **dict.fromkeys(columns, "numeric")},
    )
    models: list[TrialRecord] = []
    for config in configs:
        if time.monotonic() >= deadline:
            break
        record = TrialRecord(number=config.number, family=config.family, params=dict(config.params))
        evaluate_config(level2, record, deadline=deadline, cost_aware=False)
        if record.state == "complete":
            models.append(record)
    if not models:
        return None
    return StackLevel(inputs=list(inputs), columns=columns, models=models)
