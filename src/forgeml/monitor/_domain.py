"""Multivariate drift: a domain classifier that tries to tell current rows from reference rows.

A shift in how columns move together (the hour of the day no longer going with the
temperature) leaves every column's own distribution as it was; a classifier trained to
separate the two tables sees it. LightGBM (small: 60 trees of 15 leaves, 63 bins per
column, seeded, deterministic, one thread unless told otherwise: on samples this small more
threads cost more than they save) is cross-validated over ``folds`` folds on at most
``multivariate_rows`` rows of each table; the AUC is the mean of the folds' AUCs.

Null threshold: in a held-out fold, when both tables come from one distribution, the
classifier's scores are independent of which table a row came from, so the fold's AUC follows
the Mann-Whitney null (mean 0.5, variance ``(n1 + n2 + 1) / (12 n1 n2)``, smaller with ties);
the mean over folds has the sum of those variances over ``folds ** 2``. The classifier drifts
when its AUC exceeds both the normal quantile of that null at the test's level and ``min_auc``.

Identical rows are kept in one fold: tables resampled with replacement (or with repeated rows)
would otherwise let the classifier recognise in a held-out fold the very rows it was trained on,
and separate two samples of one distribution by memory alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from forgeml.monitor._columns import CategoricalColumn, ColumnModel
from forgeml.monitor._report import MultivariateDrift

__all__ = ["DomainSample", "domain_classifier"]

_PARAMS = {
    "objective": "binary",
    "num_leaves": 15,
    "learning_rate": 0.15,
    "max_bin": 63,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "verbose": -1,
    "deterministic": True,
    "force_col_wise": True,
}
_ROUNDS = 60
_TOP = 5


@dataclass(frozen=True, slots=True)
class DomainSample:
    """Rows of one table encoded for the classifier: numbers as float, categories as codes."""

    matrix: np.ndarray
    names: tuple[str, ...]
    categorical: tuple[int, ...]

    @staticmethod
    def draw(
        frame: pd.DataFrame,
        models: Sequence[ColumnModel],
        *,
        rows: int,
        rng: np.random.Generator,
    ) -> DomainSample:
        n = int(frame.shape[0])
        index = np.sort(rng.choice(n, rows, replace=False)) if n > rows else np.arange(n)
        part = frame.iloc[index]
        matrix = np.empty((index.size, len(models)), dtype="float64")
        for j, model in enumerate(models):
            matrix[:, j] = model.encode(part[model.name])
        categorical = tuple(j for j, m in enumerate(models) if isinstance(m, CategoricalColumn))
        return DomainSample(matrix, tuple(m.name for m in models), categorical)


def _folds(matrix: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per row, identical rows in the same fold."""
    hashes = pd.util.hash_pandas_object(pd.DataFrame(matrix), index=False).to_numpy()
    unique, inverse = np.unique(hashes, return_inverse=True)
    return (rng.permutation(unique.size) % folds)[inverse]


def domain_classifier(
    reference: DomainSample,
    current: DomainSample,
    *,
    level: float,
    min_auc: float,
    folds: int,
    seed: int,
    n_jobs: int,
) -> MultivariateDrift:
    """Cross-validated AUC of a classifier separating ``current`` from ``reference``."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    x = np.vstack([reference.matrix, current.matrix])
    y = np.concatenate([np.zeros(reference.matrix.shape[0]), np.ones(current.matrix.shape[0])])
    rng = np.random.default_rng([seed, 7])
    fold = _folds(x, folds, rng)
    params = {**_PARAMS, "seed": seed, "num_threads": n_jobs}
    aucs: list[float] = []
    variance = 0.0
    gain = np.zeros(x.shape[1])
    for k in range(folds):
        test = fold == k
        train = ~test
        y_test = y[test]
        n1, n2 = int((y_test == 0).sum()), int((y_test == 1).sum())
        if n1 == 0 or n2 == 0 or len(np.unique(y[train])) < 2:
            continue
        data = lgb.Dataset(
            x[train],
            label=y[train],
            categorical_feature=list(reference.categorical) or "auto",
            free_raw_data=True,
            params={"verbose": -1, "max_bin": _PARAMS["max_bin"]},
        )
        booster = lgb.train(params, data, num_boost_round=_ROUNDS)
        scores = booster.predict(x[test])
        aucs.append(float(roc_auc_score(y_test, scores)))
        variance += (n1 + n2 + 1) / (12 * n1 * n2)
        gain += booster.feature_importance(importance_type="gain")
    used = len(aucs)
    if used == 0:
        return MultivariateDrift(
            auc=None,
            threshold=None,
            null_threshold=None,
            min_auc=min_auc,
            level=level,
            p_value=None,
            drifted=False,
            top_columns=(),
            n_reference=reference.matrix.shape[0],
            n_current=current.matrix.shape[0],
            folds=folds,
            skipped="too few distinct rows to cross-validate",
        )
    auc = float(np.mean(aucs))
    sd = math.sqrt(variance) / used
    null_threshold = 0.5 + float(stats.norm.isf(level)) * sd
    threshold = max(null_threshold, min_auc)
    total = float(gain.sum())
    order = np.argsort(-gain)[:_TOP]
    top = tuple(
        (reference.names[j], float(gain[j] / total)) for j in order if total > 0 and gain[j] > 0
    )
    return MultivariateDrift(
        auc=auc,
        threshold=threshold,
        null_threshold=null_threshold,
        min_auc=min_auc,
        level=level,
        p_value=float(stats.norm.sf((auc - 0.5) / sd)),
        drifted=auc > threshold,
        top_columns=top,
        n_reference=reference.matrix.shape[0],
        n_current=current.matrix.shape[0],
        folds=used,
    )
