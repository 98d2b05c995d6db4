"""Caruana's greedy ensemble selection (Caruana et al., ICML 2004) on out-of-fold predictions.

Start from the best single model; at each step add (with replacement) the candidate whose
addition lowers the ensemble's loss most; keep the best prefix. Weights are how often each
candidate was picked. The caller keeps the ensemble only when its loss beats the best single
model's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["ensemble_selection"]


def ensemble_selection(
    predictions: Sequence[np.ndarray],
    loss: Callable[[np.ndarray], float],
    *,
    max_steps: int = 40,
    patience: int = 6,
    deadline: float | None = None,
) -> tuple[np.ndarray, float]:
    """Greedy forward selection with replacement.

    Args:
        predictions: each candidate's out-of-fold predictions (same shape).
        loss: the loss of a prediction array (lower is better).
        max_steps: at most this many picks.
        patience: stop after this many picks without improvement.
        deadline: a ``time.monotonic()`` time to stop at.

    Returns:
        The weights (summing to 1) and the ensemble's loss.
    """
    n = len(predictions)
    losses = [loss(p) for p in predictions]
    first = int(np.argmin(losses))
    counts = np.zeros(n, dtype=int)
    counts[first] = 1
    current = predictions[first].astype(float).copy()
    size = 1
    best_loss, best_counts = losses[first], counts.copy()
    stale = 0
    for _ in range(max_steps - 1):
        if deadline is not None and time.monotonic() > deadline:
            break
        trial_losses = [loss((current * size + p) / (size + 1)) for p in predictions]
        pick = int(np.argmin(trial_losses))
        current = (current * size + predictions[pick]) / (size + 1)
        size += 1
        counts[pick] += 1
        if trial_losses[pick] < best_loss - 1e-12:
            best_loss, best_counts, stale = trial_losses[pick], counts.copy(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    return best_counts / best_counts.sum(), float(best_loss)
