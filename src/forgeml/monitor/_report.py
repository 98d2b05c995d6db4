"""The result of comparing a current table with a fitted reference: immutable values that
serialise to JSON (``to_dict``, ``to_json``); ``monitor.write_html`` renders them as a page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forgeml.monitor._columns import Histogram

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnDrift", "DriftReport", "Histogram", "MultivariateDrift"]


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """How one column moved between the reference and the current table.

    Attributes:
        column: the column's name.
        kind: ``numeric`` (numbers, booleans, datetimes) or ``categorical``.
        test: the statistic compared: ``ks``, ``jensen_shannon`` or ``psi``.
        statistic: the test's statistic (the Jensen-Shannon divergence in bits for
            ``jensen_shannon``; the same as ``effect_size`` for the others).
        p_value: the probability of an effect at least this large when both tables come from
            the reference's distribution, at these sample sizes (see ``monitor._stats``).
        effect_size: the number the decision is made on (KS distance, Jensen-Shannon distance
            or PSI).
        threshold: the effect size above which the column drifts: the larger of
            ``null_threshold`` and ``min_effect``.
        null_threshold: the effect size that same-distribution samples of these sizes exceed
            with probability ``level`` (the per-column level after the multiple-test correction).
        min_effect: the smallest effect that counts (practical significance).
        level: the per-column false-alarm level (``alpha`` divided by the number of tests).
        drifted: ``effect_size > threshold``.
        n_reference: rows of the reference (missing values included).
        n_current: rows of the current table.
        missing_rate_ref: share of missing values in the reference.
        missing_rate_cur: share of missing values in the current table.
        out_of_range_share: numbers: share of the current's values outside the reference's
            [min, max]; ``None`` for categories.
        unseen_share: categories: share of the current's values never seen in the reference;
            ``None`` for numbers.
        unseen_categories: the most frequent unseen categories with their counts.
        mean_shift: numbers: (current mean - reference mean) / reference standard deviation.
        histogram: the two distributions for plots.
    """

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float | None
    effect_size: float
    threshold: float
    null_threshold: float
    min_effect: float
    level: float
    drifted: bool
    n_reference: int
    n_current: int
    missing_rate_ref: float
    missing_rate_cur: float
    out_of_range_share: float | None = None
    unseen_share: float | None = None
    unseen_categories: tuple[tuple[str, int], ...] = ()
    mean_shift: float | None = None
    histogram: Histogram | None = field(default=None, repr=False)

    def to_dict(self, *, histogram: bool = True) -> dict[str, Any]:
        """The fields as plain values (the histogram's too unless ``histogram=False``)."""
        out: dict[str, Any] = {
            name: getattr(self, name) for name in self.__dataclass_fields__ if name != "histogram"
        }
        out["unseen_categories"] = [list(pair) for pair in self.unseen_categories]
        if histogram:
            out["histogram"] = None if self.histogram is None else self.histogram.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class MultivariateDrift:
    """The domain classifier's verdict: can a model tell current rows from reference rows?

    Attributes:
        auc: the cross-validated ROC AUC of a classifier separating current rows from
            reference rows (0.5: indistinguishable), the mean over folds.
        threshold: the AUC above which the table drifts: the larger of ``null_threshold`` and
            ``min_auc``.
        null_threshold: the AUC a classifier exceeds with probability ``level`` when both
            samples come from one distribution (Mann-Whitney null of each fold's AUC).
        min_auc: the smallest AUC that counts.
        level: the false-alarm level of this test.
        p_value: the probability of an AUC at least this high under that null.
        drifted: ``auc > threshold``.
        top_columns: the columns the classifier relies on most, with their share of its
            total split gain.
        n_reference: reference rows the classifier used.
        n_current: current rows the classifier used.
        folds: the number of cross-validation folds (identical rows share a fold).
        skipped: why the classifier did not run, when it did not.
    """

    auc: float | None
    threshold: float | None
    null_threshold: float | None
    min_auc: float
    level: float
    p_value: float | None
    drifted: bool
    top_columns: tuple[tuple[str, float], ...]
    n_reference: int
    n_current: int
    folds: int
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["top_columns"] = [list(pair) for pair in self.top_columns]
        return out


@dataclass(frozen=True, slots=True)
class DriftReport:
    """A current table compared with a fitted reference.

    Attributes:
        drifted: the table-level decision (see ``rule``).
        rule: the table-level rule in words, with its numbers.
        columns: one ``ColumnDrift`` per compared column, in the reference's order.
        multivariate: the domain classifier's result, ``None`` when it was not asked for.
        share_drifted: share of the compared columns that drifted.
        alpha: the family-wise false-alarm level of the table-level decision.
        n_reference: rows of the reference.
        n_current: rows of the current table.
        skipped: columns left out of the comparison, with the reason.
        ignored_columns: columns of the current table the reference does not have.
        seconds: time taken by the scoring.
        reference: what the reference was (a path, a dataset version, a DataFrame's shape).
        current: what the current table was.
    """

    drifted: bool
    rule: str
    columns: tuple[ColumnDrift, ...]
    multivariate: MultivariateDrift | None
    share_drifted: float
    alpha: float
    n_reference: int
    n_current: int
    skipped: tuple[tuple[str, str], ...] = ()
    ignored_columns: tuple[str, ...] = ()
    seconds: float = 0.0
    reference: str = "reference"
    current: str = "current"

    def __iter__(self) -> Iterator[ColumnDrift]:
        return iter(self.columns)

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise KeyError(column)

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """The names of the columns that drifted, largest effect (relative to threshold) first."""
        hits = [c for c in self.columns if c.drifted]
        hits.sort(key=lambda c: c.effect_size / c.threshold if c.threshold else 0.0, reverse=True)
        return tuple(c.column for c in hits)

    def to_dict(self, *, histograms: bool = True) -> dict[str, Any]:
        """The report as plain values (``histograms=False`` leaves the plot data out)."""
        return {
            "drifted": self.drifted,
            "rule": self.rule,
            "share_drifted": self.share_drifted,
            "alpha": self.alpha,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "reference": self.reference,
            "current": self.current,
            "drifted_columns": list(self.drifted_columns),
            "columns": [c.to_dict(histogram=histograms) for c in self.columns],
            "multivariate": None if self.multivariate is None else self.multivariate.to_dict(),
            "skipped": {name: reason for name, reason in self.skipped},
            "ignored_columns": list(self.ignored_columns),
            "seconds": self.seconds,
        }

    def to_json(self, *, histograms: bool = True, indent: bool = False) -> str:
        """The report as JSON text (NaN as null)."""
        from forgeml._json import dumps_text

        return dumps_text(self.to_dict(histograms=histograms), indent=indent)

    def to_frame(self) -> pd.DataFrame:
        """One row per column: test, effect size, threshold, decision, missing, out of range."""
        import pandas as pd

        rows = [c.to_dict(histogram=False) for c in self.columns]
        return pd.DataFrame(rows).set_index("column")
