"""Live views on standard error, drawn from the events capabilities emit."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeml.train import TrainingProgress

__all__ = ["TrainingView", "training_view"]


class TrainingView:
    """Time used against the budget and the leaderboard so far, from ``TrainingProgress``
    events (pass it as ``fm.train(progress=...)``; ``close`` it when training ends)."""

    def __init__(self, console: Any = None) -> None:
        self._console = console
        self._event: TrainingProgress | None = None
        self._received = 0.0
        self._lock = threading.Lock()
        self._live: Any = None

    def __call__(self, event: TrainingProgress) -> None:
        with self._lock:
            self._event, self._received = event, time.monotonic()
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                get_renderable=self._render,
                console=self._console or Console(stderr=True),
                refresh_per_second=4,
                transient=True,
            )
            self._live.start()

    def close(self) -> None:
        """Stop drawing (the view is transient: it leaves nothing on the screen)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            event, received = self._event, self._received
        if event is None:
            return Text("")
        elapsed = event.elapsed + time.monotonic() - received  # the clock runs between events
        header = Text(
            f"{event.phase}: {elapsed:5.1f}s of {event.budget:g}s   trials "
            f"{len(event.trials)} ({event.complete} complete)"
        )
        bar = ProgressBar(total=event.budget, completed=min(elapsed, event.budget), width=50)
        table = Table(header_style="bold", show_edge=False, pad_edge=False)
        for column in ("#", "model", event.metric, "seconds"):
            table.add_column(column)
        complete = sorted(
            (r for r in event.trials if r.state == "complete" and r.loss is not None),
            key=lambda r: r.loss or 0.0,
        )
        for r in complete[:8]:
            table.add_row(str(r.number), r.family, f"{r.score:.5g}", f"{r.seconds:.1f}")
        return Group(header, bar, table)


def training_view(ctx: Any, enabled: bool) -> TrainingView | None:
    """A ``TrainingView`` closed when the command ends (also on failure), if ``enabled``."""
    if not enabled:
        return None
    view = TrainingView()
    ctx.call_on_close(view.close)
    return view
