"""What a training reports while it searches: ``TrainingProgress`` events.

Training prints nothing: ``fm.train(progress=handler)`` hands each event to ``handler`` (the
command line draws them as a live view); ``progress=True`` writes one line per event to the
``forgeml.train`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from forgeml.train._search import TrialRecord

__all__ = ["ProgressHandler", "TrainingProgress", "log_progress"]

_log = logging.getLogger("forgeml.train")


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """Where a training is: after every trial and at every change of phase.

    Attributes:
        phase: ``searching``, then ``ensembling and refitting``.
        elapsed: seconds since the training started.
        budget: the time budget in seconds.
        metric: the metric's name.
        greater_is_better: its direction.
        trials: every trial so far, in the order they started.
    """

    phase: str
    elapsed: float
    budget: float
    metric: str
    greater_is_better: bool
    trials: tuple[TrialRecord, ...]

    @property
    def complete(self) -> int:
        """Trials that completed (not pruned, not failed)."""
        return sum(r.state == "complete" for r in self.trials)


ProgressHandler = Callable[[TrainingProgress], None]
"""What ``fm.train(progress=...)`` takes: a callable given each event, on the training thread."""


def log_progress(event: TrainingProgress) -> None:
    """One INFO line per event on the ``forgeml.train`` logger (``progress=True``)."""
    _log.info(
        "%s: %.1fs of %gs, trials %d (%d complete)",
        event.phase,
        event.elapsed,
        event.budget,
        len(event.trials),
        event.complete,
    )
