"""``watch``: run a model's loop on its cron schedule until stopped.

Sleeping is an ``Event.wait`` until croniter's next time, so a stop request (SIGTERM in the
CLI) ends the wait at once. Nothing is kept in memory between passes: a watcher killed at any
point and started again resumes from the store (see ``_runner``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from forgeml.loop._runner import LoopRunner, PassReport

__all__ = ["next_pass_at", "watch"]

_log = logging.getLogger("forgeml.loop")


def next_pass_at(cron: str, after: float) -> float:
    """The first time of ``cron`` strictly after ``after`` (seconds since the epoch)."""
    from croniter import croniter

    return float(croniter(cron, after).get_next(float))


def watch(
    runner: LoopRunner,
    *,
    stop: threading.Event | None = None,
    max_passes: int | None = None,
    on_pass: Callable[[PassReport], None] | None = None,
) -> int:
    """Run passes now and then at every time of the policy's ``schedule``.

    A pass that fails (the store unreachable, a step that raised) is logged and the watcher
    carries on at the next scheduled time; the failed step is recorded and runs again then.

    Args:
        runner: the model's loop.
        stop: set it to end the watch (checked between passes and while waiting).
        max_passes: end after this many passes.
        on_pass: called with each pass's report.

    Returns:
        The number of passes run.
    """
    stop = stop or threading.Event()
    passes = 0
    while not stop.is_set():
        try:
            report = runner.run_pass()
        except Exception:
            _log.exception("%s: the loop pass failed; next pass on schedule", runner.model)
        else:
            if on_pass is not None:
                on_pass(report)
        passes += 1
        if max_passes is not None and passes >= max_passes:
            break
        now = time.time()
        stop.wait(max(0.0, next_pass_at(runner.policy.schedule, now) - now))
    return passes
