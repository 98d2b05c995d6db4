"""Effect sizes over binned distributions and their null distributions at given sample sizes.

A column is compared on its bin counts (``_columns``). The decision statistic is an effect size:

- ``ks``: the Kolmogorov-Smirnov distance, the largest gap between the two cumulative
  distributions (bins in order, missing last): the share of rows that would have to move.
- ``jensen_shannon``: the Jensen-Shannon distance (square root of the divergence, base 2), in
  [0, 1]; what Evidently uses for categories.
- ``psi``: the population stability index, ``sum((q - p) * ln(q / p))`` over ten reference
  quantile bins for numbers (categories for categories), shares floored at 1e-4.

Null distributions (both samples drawn from the same distribution, at the reference's and the
current's sizes ``n`` and ``m``):

- ``ks``: the asymptotic Kolmogorov distribution of ``sqrt(ne) * D``, ``ne = n*m/(n+m)``, with
  the small-sample correction of Stephens (``sqrt(ne) + 0.12 + 0.11/sqrt(ne)``). It is exact
  for continuous values and conservative for ties and bins (the gap can only be observed at
  fewer points), so it never raises more false alarms than its level.
- ``jensen_shannon`` and ``psi``: a parametric bootstrap of the reference at the current size
  (reference counts ~ Multinomial(n, p), current counts ~ Multinomial(m, p), ``p`` the reference
  shares), whose mean and variance are matched to a scaled chi-square ``c * chi2(k)``. Both
  statistics are, for small differences, quadratic forms of the share differences, whose null
  is a scaled chi-square (``8 * JSD / (1/n + 1/m) ~ chi2(bins - 1)``); matching the moments on
  the bootstrap keeps that tail accurate at small sizes and with rare categories, where the
  textbook degrees of freedom are wrong, and gives quantiles far in the tail (level alpha over
  the number of columns) without tens of thousands of replicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = [
    "PSI_FLOOR",
    "Null",
    "jensen_shannon",
    "ks_distance",
    "ks_null",
    "psi",
    "quadratic_null",
]

PSI_FLOOR = 1e-4


def _shares(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype="float64")
    total = counts.sum(axis=-1, keepdims=True)
    return counts / np.where(total > 0, total, 1.0)


def ks_distance(p_counts: np.ndarray, q_counts: np.ndarray) -> np.ndarray:
    """Largest gap between the cumulative shares (last axis = ordered bins)."""
    gap = np.cumsum(_shares(p_counts) - _shares(q_counts), axis=-1)
    return np.abs(gap).max(axis=-1)


def jensen_shannon(p_counts: np.ndarray, q_counts: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits (last axis = bins); its square root is the distance."""
    p, q = _shares(p_counts), _shares(q_counts)
    m = (p + q) / 2

    def entropy(x: np.ndarray) -> np.ndarray:
        return -special.xlogy(x, x).sum(axis=-1)

    divergence = (entropy(m) - (entropy(p) + entropy(q)) / 2) / math.log(2)
    return np.maximum(divergence, 0.0)


def psi(p_counts: np.ndarray, q_counts: np.ndarray) -> np.ndarray:
    """Population stability index of ``q`` against ``p`` (last axis = bins)."""
    p = np.maximum(_shares(p_counts), PSI_FLOOR)
    q = np.maximum(_shares(q_counts), PSI_FLOOR)
    return ((q - p) * np.log(q / p)).sum(axis=-1)


@dataclass(frozen=True, slots=True)
class Null:
    """The null distribution of one statistic at one pair of sample sizes.

    ``quantile(level)`` is the value exceeded with probability ``level`` when both samples
    come from the reference distribution; ``p_value(x)`` the probability of at least ``x``.
    """

    kind: str
    scale: float
    dof: float
    maximum: float = 0.0

    def quantile(self, level: float) -> float:
        if self.kind == "ks":
            return float(stats.kstwobign.isf(level)) / self.scale
        if self.scale <= 0:  # a constant column: the statistic is always 0 under the null
            return self.maximum
        return float(self.scale * stats.chi2.isf(level, self.dof))

    def p_value(self, statistic: float) -> float:
        if self.kind == "ks":
            return float(stats.kstwobign.sf(self.scale * statistic))
        if self.scale <= 0:
            return 1.0 if statistic <= self.maximum + 1e-12 else 0.0
        return float(stats.chi2.sf(statistic / self.scale, self.dof))


def ks_null(n: int, m: int) -> Null:
    """The Kolmogorov null of the KS distance between samples of ``n`` and ``m`` rows."""
    ne = n * m / (n + m)
    root = math.sqrt(ne)
    return Null("ks", scale=root + 0.12 + 0.11 / root, dof=0.0)


def quadratic_null(
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    shares: np.ndarray,
    n: int,
    m: int,
    *,
    n_bootstrap: int,
    rng: np.random.Generator,
    unseen: tuple[int, float] | None = None,
) -> Null:
    """A scaled chi-square fitted to ``n_bootstrap`` draws of ``statistic`` under the null.

    Args:
        unseen: ``(bin, mass)``: a fresh sample of the reference's distribution falls outside
            the categories the reference happened to hold with probability ``mass`` (estimated
            by Good-Turing: the share of the reference's rows whose category occurs once);
            the current draws put that mass in ``bin``. Without it, columns of many rare
            categories (countries, products) would drift on every window at small sizes.
    """
    p = np.asarray(shares, dtype="float64")
    p = p / p.sum()
    q = p
    if unseen is not None and unseen[1] > 0:
        q = p * (1 - unseen[1])
        q[unseen[0]] += unseen[1]
    reference = rng.multinomial(n, p, size=n_bootstrap)
    current = rng.multinomial(m, q, size=n_bootstrap)
    draws = statistic(reference, current)
    mean, var = float(draws.mean()), float(draws.var(ddof=1))
    if mean <= 0 or var <= 0:
        return Null("chi2", scale=0.0, dof=0.0, maximum=float(draws.max()))
    return Null("chi2", scale=var / (2 * mean), dof=2 * mean * mean / var)
