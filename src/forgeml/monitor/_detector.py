"""``DriftDetector``: fit a reference table once, score any number of current tables against it.

The decision rule (the defaults in brackets):

1. Each column is reduced to counts over bins fixed by the reference (``_columns``) and compared
   on an effect size: the Kolmogorov-Smirnov distance for numbers, the Jensen-Shannon distance
   for categories (PSI on request), missing values and values outside the reference's range or
   categories included.
2. A column drifts when its effect size exceeds ``max(null_threshold, min_effect)``:
   ``null_threshold`` is the effect that two samples of the reference's distribution, of the
   reference's and the current's sizes, exceed with probability ``alpha / tests``; ``min_effect``
   [0.1] is the smallest effect that counts. The first term keeps false alarms at or under
   ``alpha`` on small samples; the second keeps millions of rows from flagging differences too
   small to matter (with a pure test, any difference is significant at that size).
3. With the domain classifier on (``multivariate``; ``auto`` runs it when both tables have at
   least 50 rows and there are two columns or more), it is one more test, at the same level,
   deciding on its cross-validated AUC against ``max(null AUC quantile, min_auc)`` [0.55].
4. The table drifts when any test drifts. ``tests`` is the number of columns plus one for the
   classifier: a Bonferroni correction, so the family-wise false-alarm rate of the table-level
   decision is at most ``alpha`` [0.05] whatever the number of columns.

Fitting learns the bins and the reference counts (and a reference sample for the classifier);
scoring a window costs one vectorised pass per column. Null distributions depend only on the
two sizes, so they are computed once per current size and kept (deterministic: each is seeded
by ``random_state``, the column and the sizes, never by call order).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from forgeml.errors import InputError, SchemaMismatchError
from forgeml.monitor import _stats
from forgeml.monitor._columns import CategoricalColumn, ColumnModel, NumericColumn
from forgeml.monitor._report import ColumnDrift, DriftReport, MultivariateDrift

if TYPE_CHECKING:
    from forgeml.monitor._domain import DomainSample

__all__ = ["DriftDetector"]

NumericTest = Literal["ks", "psi"]
CategoricalTest = Literal["jensen_shannon", "psi"]
_NUMERIC_TESTS = ("ks", "psi")
_CATEGORICAL_TESTS = ("jensen_shannon", "psi")
_MULTIVARIATE_MIN_ROWS = 50
_SCHEMA_SAMPLE = 50_000
_PSI_BINS = 10


def _param_error(name: str, expected: str, got: object) -> InputError:
    return InputError(f"The `{name}` parameter of DriftDetector must be {expected}; got {got!r}")


def _column_names(value: object, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(dict.fromkeys(value))
    raise _param_error(name, "a list of column names or None", value)


def _is_row_number(series: pd.Series) -> bool:
    """Whether an integer column holds distinct consecutive numbers (a row identifier)."""
    if not pd.api.types.is_integer_dtype(series.dtype) or not series.is_unique:
        return False
    return int(series.max()) - int(series.min()) + 1 == int(series.size)


class DriftDetector:
    """Data drift of current tables against one reference table.

    Follows scikit-learn's shape: ``DriftDetector(**params).fit(reference)`` learns the
    reference (bins, counts, a sample for the domain classifier) and returns the detector;
    ``score(current)`` returns a ``DriftReport`` and changes nothing in the detector's results,
    so one fitted detector serves many windows (and threads).

    Args:
        alpha: family-wise false-alarm level of the table-level decision.
        columns: the columns to compare (default: every column of the reference except
            identifiers and free text).
        categorical: columns to compare as categories although they hold numbers.
        min_effect: the smallest effect size that counts as drift (KS distance, Jensen-Shannon
            distance or PSI; the three are on comparable scales at 0.1).
        numeric_test: ``ks`` or ``psi`` for numeric columns.
        categorical_test: ``jensen_shannon`` or ``psi`` for categorical columns.
        bins: at most this many quantile bins per numeric column.
        max_categories: at most this many categories per column keep a bin of their own.
        n_bootstrap: replicates of the parametric bootstrap that calibrates the Jensen-Shannon
            and PSI thresholds.
        multivariate: run the domain classifier: ``True``, ``False`` or ``"auto"``.
        multivariate_rows: rows of each table the classifier uses at most (random sample).
        min_auc: the smallest domain-classifier AUC that counts as drift.
        folds: cross-validation folds of the domain classifier.
        min_reference_rows: the fewest reference rows accepted.
        random_state: seed of every random choice (samples, bootstrap, classifier).
        n_jobs: threads of the domain classifier.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        columns: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        min_effect: float = 0.1,
        numeric_test: NumericTest = "ks",
        categorical_test: CategoricalTest = "jensen_shannon",
        bins: int = 1000,
        max_categories: int = 1000,
        n_bootstrap: int = 500,
        multivariate: bool | Literal["auto"] = "auto",
        multivariate_rows: int = 10_000,
        min_auc: float = 0.55,
        folds: int = 5,
        min_reference_rows: int = 100,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.alpha = alpha
        self.columns = columns
        self.categorical = categorical
        self.min_effect = min_effect
        self.numeric_test = numeric_test
        self.categorical_test = categorical_test
        self.bins = bins
        self.max_categories = max_categories
        self.n_bootstrap = n_bootstrap
        self.multivariate = multivariate
        self.multivariate_rows = multivariate_rows
        self.min_auc = min_auc
        self.folds = folds
        self.min_reference_rows = min_reference_rows
        self.random_state = random_state
        self.n_jobs = n_jobs

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, as given."""
        import inspect

        names = inspect.signature(type(self)).parameters
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        return f"DriftDetector(alpha={self.alpha}, min_effect={self.min_effect})"

    # -- fitting ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        def number(name: str, low: float, high: float, *, integer: bool = False) -> None:
            value = getattr(self, name)
            kind = int if integer else (int, float)
            ok = isinstance(value, kind) and not isinstance(value, bool) and low <= value <= high
            if not ok or (not integer and not np.isfinite(value)):
                what = "an integer" if integer else "a number"
                raise _param_error(name, f"{what} in [{low}, {high}]", value)

        number("alpha", 1e-9, 0.5)
        number("min_effect", 0.0, 10.0)
        number("bins", 2, 100_000, integer=True)
        number("max_categories", 1, 100_000, integer=True)
        number("n_bootstrap", 50, 100_000, integer=True)
        number("multivariate_rows", 100, 10_000_000, integer=True)
        number("min_auc", 0.5, 1.0)
        number("folds", 2, 20, integer=True)
        number("min_reference_rows", 10, 10_000_000, integer=True)
        number("random_state", 0, 2**32 - 1, integer=True)
        if self.numeric_test not in _NUMERIC_TESTS:
            raise _param_error(
                "numeric_test", "one of " + ", ".join(_NUMERIC_TESTS), self.numeric_test
            )
        if self.categorical_test not in _CATEGORICAL_TESTS:
            raise _param_error(
                "categorical_test", "one of " + ", ".join(_CATEGORICAL_TESTS), self.categorical_test
            )
        if self.multivariate not in (True, False, "auto"):
            raise _param_error("multivariate", "True, False or 'auto'", self.multivariate)
        number("n_jobs", 1, 1024, integer=True)

    def fit(self, reference: pd.DataFrame) -> DriftDetector:
        """Learn the reference table.

        Raises:
            InputError: a parameter is invalid, the reference is not a DataFrame, has fewer
                than ``min_reference_rows`` rows, or lacks a named column.
            SchemaMismatchError: a column has no values at all.
        """
        from forgeml.data import ColumnKind, infer_schema

        self._check_params()
        if not isinstance(reference, pd.DataFrame):
            raise InputError(
                f"The reference must be a pandas DataFrame; got {type(reference).__name__}"
            )
        n = int(reference.shape[0])
        if n < self.min_reference_rows:
            raise InputError(
                f"The reference has {n} rows; at least {self.min_reference_rows} are needed to "
                "calibrate drift thresholds (min_reference_rows)"
            )
        names = [str(c) for c in reference.columns]
        if len(set(names)) != len(names):
            raise InputError("The reference has repeated column names")
        reference = reference.set_axis(names, axis=1)
        chosen = _column_names(self.columns, "columns")
        forced = _column_names(self.categorical, "categorical") or ()
        for group, label in ((chosen or (), "columns"), (forced, "categorical")):
            missing = [c for c in group if c not in reference.columns]
            if missing:
                raise InputError(
                    f"The `{label}` parameter names columns the reference does not have: "
                    + ", ".join(map(repr, missing[:10]))
                )
        rng = np.random.default_rng(self.random_state)
        candidates = list(chosen) if chosen else names
        sample = reference[candidates]
        if n > _SCHEMA_SAMPLE:
            sample = sample.iloc[np.sort(rng.choice(n, _SCHEMA_SAMPLE, replace=False))]
        schema = infer_schema(sample.reset_index(drop=True))
        models: list[ColumnModel] = []
        skipped: list[tuple[str, str]] = []
        for name in candidates:
            kind = schema[name].kind
            series = reference[name]
            if kind is ColumnKind.INTEGER and n > _SCHEMA_SAMPLE and _is_row_number(series):
                kind = ColumnKind.IDENTIFIER  # the sample cannot see that it counts the rows
            if not bool(series.notna().any()):
                skipped.append((name, "no value in the reference"))
                continue
            if name in forced or kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
                models.append(CategoricalColumn(name, series, max_categories=self.max_categories))
            elif kind in (ColumnKind.NUMERIC, ColumnKind.INTEGER, ColumnKind.DATETIME):
                models.append(
                    NumericColumn(
                        name,
                        series,
                        bins=self.bins,
                        rng=rng,
                        datetime=kind is ColumnKind.DATETIME,
                    )
                )
            elif chosen and name in chosen:
                # named on purpose: compared as categories whatever they look like
                models.append(CategoricalColumn(name, series, max_categories=self.max_categories))
            else:
                why = "identifier (a different value on every row)"
                skipped.append((name, why if kind is ColumnKind.IDENTIFIER else "free text"))
        if not models:
            raise InputError(
                "The reference has no column to compare (identifiers and free text are left "
                "out; name columns with `columns` to compare them as categories)"
            )
        self.columns_: tuple[ColumnModel, ...] = tuple(models)
        self.skipped_: tuple[tuple[str, str], ...] = tuple(skipped)
        self.n_reference_: int = n
        self.feature_names_in_: tuple[str, ...] = tuple(names)
        self._psi_groups = {
            m.name: self._decile_groups(m) for m in models if isinstance(m, NumericColumn)
        }
        self.reference_sample_: DomainSample | None = None
        if self.multivariate is not False and len(models) >= 2:
            from forgeml.monitor._domain import DomainSample

            self.reference_sample_ = DomainSample.draw(
                reference, self.columns_, rows=self.multivariate_rows, rng=rng
            )
        self._nulls: dict[tuple[int, int], _stats.Null] = {}
        self._lock = threading.Lock()
        return self

    @staticmethod
    def _decile_groups(model: NumericColumn) -> np.ndarray:
        """Fine bin -> PSI bin: below, ten reference-quantile groups, above, missing."""
        size = int(model.cuts.size)
        in_range = model.counts[1 : size + 1].astype("float64")
        before = np.cumsum(in_range) - in_range
        total = in_range.sum() or 1.0
        groups = 1 + np.minimum((before / total * _PSI_BINS).astype(int), _PSI_BINS - 1)
        return np.concatenate([[0], groups, [_PSI_BINS + 1, _PSI_BINS + 2]])

    # -- scoring ---------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise InputError("This DriftDetector is not fitted yet; call fit(reference) first")

    def _runs_multivariate(self, m: int) -> bool:
        if self.reference_sample_ is None:
            return False
        if self.multivariate == "auto":
            return m >= _MULTIVARIATE_MIN_ROWS and self.n_reference_ >= _MULTIVARIATE_MIN_ROWS
        return bool(self.multivariate)

    def _null(self, index: int, model: ColumnModel, test: str, m: int) -> _stats.Null:
        key = (index, m)
        cached = self._nulls.get(key)
        if cached is not None:
            return cached
        n = self.n_reference_
        if test == "ks":
            null = _stats.ks_null(n, m)
        else:
            rng = np.random.default_rng([self.random_state, index, n, m])
            shares = self._test_counts(model, model.counts, test)
            statistic = _stats.psi if test == "psi" else _stats.jensen_shannon
            unseen = (
                (model.unseen_bin, model.unseen_mass)
                if isinstance(model, CategoricalColumn)
                else None
            )
            null = _stats.quadratic_null(
                statistic, shares, n, m, n_bootstrap=self.n_bootstrap, rng=rng, unseen=unseen
            )
        with self._lock:
            if len(self._nulls) > 4096:
                self._nulls.clear()
            self._nulls[key] = null
        return null

    def _test_counts(self, model: ColumnModel, counts: np.ndarray, test: str) -> np.ndarray:
        if test == "psi" and isinstance(model, NumericColumn):
            return np.bincount(self._psi_groups[model.name], weights=counts, minlength=13)
        return counts

    def _effect(self, test: str, ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
        """(statistic, effect size) of ``test`` between two count vectors."""
        if test == "ks":
            d = float(_stats.ks_distance(ref, cur))
            return d, d
        if test == "psi":
            value = float(_stats.psi(ref, cur))
            return value, value
        divergence = float(_stats.jensen_shannon(ref, cur))
        return divergence, float(np.sqrt(divergence))

    def _effect_threshold(self, test: str, null: _stats.Null, level: float) -> float:
        q = null.quantile(level)
        return float(np.sqrt(q)) if test == "jensen_shannon" else q

    def score(self, current: pd.DataFrame) -> DriftReport:
        """Compare ``current`` with the fitted reference.

        Columns of ``current`` the reference does not have are ignored (and listed in the
        report); every fitted column must be there.

        Raises:
            InputError: the detector is not fitted, ``current`` is not a DataFrame or is empty.
            SchemaMismatchError: a fitted column is missing from ``current``, or a numeric
                column holds text.
        """
        self._check_fitted()
        start = time.perf_counter()
        if not isinstance(current, pd.DataFrame):
            raise InputError(
                f"The current table must be a pandas DataFrame; got {type(current).__name__}"
            )
        m = int(current.shape[0])
        if m == 0:
            raise InputError("The current table is empty (0 rows): there is nothing to compare")
        names = [str(c) for c in current.columns]
        if names != list(current.columns):
            current = current.set_axis(names, axis=1)
        missing = [c.name for c in self.columns_ if c.name not in current.columns]
        if missing:
            raise SchemaMismatchError(
                "The current table lacks reference columns: "
                + ", ".join(map(repr, missing[:10]))
                + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            )
        fitted = {c.name for c in self.columns_} | {name for name, _ in self.skipped_}
        ignored = tuple(c for c in names if c not in fitted)
        run_mv = self._runs_multivariate(m)
        tests = len(self.columns_) + (1 if run_mv else 0)
        level = self.alpha / tests
        results = [
            self._score_column(i, model, current[model.name], m, level)
            for i, model in enumerate(self.columns_)
        ]
        multivariate = self._score_multivariate(current, m, level, run_mv)
        n_drifted = sum(r.drifted for r in results)
        drifted = n_drifted > 0 or (multivariate is not None and multivariate.drifted)
        rule = (
            f"The table drifts when any of {tests} tests drifts ({len(results)} columns"
            + (" and the domain classifier" if run_mv else "")
            + f"); each test at level alpha/{tests} = {level:.3g} (Bonferroni: family-wise "
            f"false-alarm rate <= {self.alpha:g}). A column drifts when its effect size exceeds "
            f"the larger of the effect that same-distribution samples of {self.n_reference_:,} "
            f"and {m:,} rows exceed with probability {level:.3g} and the minimum effect "
            f"{self.min_effect:g}"
            + (
                f"; the classifier when its AUC exceeds the larger of its null quantile and "
                f"{self.min_auc:g}"
                if run_mv
                else ""
            )
            + "."
        )
        return DriftReport(
            drifted=drifted,
            rule=rule,
            columns=tuple(results),
            multivariate=multivariate,
            share_drifted=n_drifted / len(results),
            alpha=self.alpha,
            n_reference=self.n_reference_,
            n_current=m,
            skipped=self.skipped_,
            ignored_columns=ignored,
            seconds=time.perf_counter() - start,
        )

    def _score_column(
        self, index: int, model: ColumnModel, series: pd.Series, m: int, level: float
    ) -> ColumnDrift:
        common: dict[str, Any]
        if isinstance(model, NumericColumn):
            counts, mean, histogram = model.current_counts(series)
            test: str = self.numeric_test
            shift = (mean - model.mean) / model.std if mean is not None and model.std > 0 else None
            common = {
                "out_of_range_share": model.out_of_range(counts),
                "mean_shift": shift,
            }
        else:
            counts, unseen = model.current_counts(series)
            histogram = model.histogram(counts)
            test = self.categorical_test
            common = {
                "unseen_share": model.unseen_share(counts),
                "unseen_categories": tuple(unseen),
            }
        ref_counts = self._test_counts(model, model.counts, test)
        cur_counts = self._test_counts(model, counts, test)
        statistic, effect = self._effect(test, ref_counts, cur_counts)
        null = self._null(index, model, test, m)
        null_threshold = self._effect_threshold(test, null, level)
        threshold = max(null_threshold, self.min_effect)
        return ColumnDrift(
            column=model.name,
            kind=model.kind,
            test=test,
            statistic=statistic,
            p_value=null.p_value(statistic),
            effect_size=effect,
            threshold=threshold,
            null_threshold=null_threshold,
            min_effect=self.min_effect,
            level=level,
            drifted=effect > threshold,
            n_reference=self.n_reference_,
            n_current=m,
            missing_rate_ref=model.missing_rate(model.counts),
            missing_rate_cur=model.missing_rate(counts),
            histogram=histogram,
            **common,
        )

    def _score_multivariate(
        self, current: pd.DataFrame, m: int, level: float, run: bool
    ) -> MultivariateDrift | None:
        if self.multivariate is False:
            return None
        if not run or self.reference_sample_ is None:
            why = (
                "fewer than two columns"
                if self.reference_sample_ is None
                else f"fewer than {_MULTIVARIATE_MIN_ROWS} rows in a table"
            )
            return MultivariateDrift(
                auc=None,
                threshold=None,
                null_threshold=None,
                min_auc=self.min_auc,
                level=level,
                p_value=None,
                drifted=False,
                top_columns=(),
                n_reference=0,
                n_current=0,
                folds=self.folds,
                skipped=why,
            )
        from forgeml.monitor._domain import DomainSample, domain_classifier

        rng = np.random.default_rng([self.random_state, m])
        sample = DomainSample.draw(current, self.columns_, rows=self.multivariate_rows, rng=rng)
        return domain_classifier(
            self.reference_sample_,
            sample,
            level=level,
            min_auc=self.min_auc,
            folds=self.folds,
            seed=self.random_state,
            n_jobs=self.n_jobs,
        )
