"""The live Rich view of a training: time used against the budget, the leaderboard so far."""

from __future__ import annotations

import threading
import time
from typing import Any

from forgeml.train._search import TrialRecord

__all__ = ["LiveView"]


class LiveView:
    """Shows progress on a console (stderr by default) while ``train`` runs.

    Args:
        budget: the time budget in seconds.
        metric: the metric's name.
        greater_is_better: its direction.
        console: a Rich console (default: stderr).
    """

    def __init__(
        self, *, budget: float, metric: str, greater_is_better: bool, console: Any = None
    ) -> None:
        from rich.console import Console

        self.budget = budget
        self.metric = metric
        self.greater_is_better = greater_is_better
        self.console = console or Console(stderr=True)
        self.started = time.monotonic()
        self.phase = "searching"
        self._records: list[TrialRecord] = []
        self._lock = threading.Lock()
        self._live: Any = None

    def __enter__(self) -> LiveView:
        from rich.live import Live

        self._live = Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=4,
            transient=True,
        )
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, records: list[TrialRecord], phase: str | None = None) -> None:
        """New trials (and optionally a new phase: refitting, evaluating...)."""
        with self._lock:
            self._records = list(records)
            if phase is not None:
                self.phase = phase

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            records, phase = list(self._records), self.phase
        elapsed = time.monotonic() - self.started
        done = sum(r.state == "complete" for r in records)
        header = Text(
            f"{phase}: {elapsed:5.1f}s of {self.budget:g}s   trials {len(records)} "
            f"({done} complete)"
        )
        bar = ProgressBar(total=self.budget, completed=min(elapsed, self.budget), width=50)
        table = Table(header_style="bold", show_edge=False, pad_edge=False)
        for column in ("#", "model", self.metric, "seconds"):
            table.add_column(column)
        complete = sorted(
            (r for r in records if r.state == "complete" and r.loss is not None),
            key=lambda r: r.loss or 0.0,
        )
        for r in complete[:8]:
            table.add_row(str(r.number), r.family, f"{r.score:.5g}", f"{r.seconds:.1f}")
        return Group(header, bar, table)
