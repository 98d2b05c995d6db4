"""Windows of a served model's prediction log: by time (``1d``, ``6h``...) or by count of
predicted rows (``10000``)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from forgeml.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from forgeml.store import PredictionLogReader, WindowStats

__all__ = ["LogWindow", "WindowSpec", "log_windows", "parse_window"]

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNIT_NAMES = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_COUNT = re.compile(r"^\s*(\d[\d_,]*)\s*$")
# one bucket spanning every possible time: window_stats over a time range as one window
_EVER_MS = 1 << 60


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """How a log is cut into windows.

    Attributes:
        kind: ``time`` (aligned on multiples of ``size`` ms since the epoch, UTC) or ``count``
            (consecutive runs of ``size`` predicted rows, oldest first).
        size: milliseconds for ``time``, predicted rows for ``count``.
        text: the spec as written (``1d``, ``10000``).
    """

    kind: str
    size: int
    text: str

    def describe(self) -> str:
        """In words: ``windows of 1 day (UTC)``, ``windows of 10,000 predictions``."""
        if self.kind == "count":
            return f"windows of {self.size:,} predictions"
        match = _DURATION.match(self.text)
        if match:
            n, unit = int(match.group(1)), match.group(2)
            return f"windows of {n} {_UNIT_NAMES[unit]}{'s' if n != 1 else ''} (UTC)"
        return f"windows of {self.size:,} ms (UTC)"


def parse_window(value: Any) -> WindowSpec:
    """A window spec from ``1d``, ``6h``, ``30m``, ``45s``, ``1w`` or a row count (``10000``).

    Raises:
        InputError: anything else, naming what was expected.
    """
    if isinstance(value, WindowSpec):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = value if isinstance(value, str) else None
    if text is not None:
        match = _DURATION.match(text)
        if match and int(match.group(1)) > 0:
            return WindowSpec("time", int(match.group(1)) * _UNITS[match.group(2)], text.strip())
        match = _COUNT.match(text)
        if match:
            count = int(match.group(1).replace("_", "").replace(",", ""))
            if count > 0:
                return WindowSpec("count", count, text.strip())
    raise InputError(
        "window: expected a duration such as 1d, 6h, 30m, 45s or 1w, or a positive number of "
        f"predictions such as 10000; got {value!r}"
    )


@dataclass(frozen=True)
class LogWindow:
    """One window of a model's log.

    Attributes:
        start_ms: the window's start (time windows: its aligned start; count windows: the
            time of its first request).
        end_ms: its end, excluded (count windows: one ms after its last request).
        rows: its predicted rows (one per row, the columns of ``predictions()``); empty when
            every request of the window failed.
        stats: requests, errors and latency of the window's requests.
        complete: the window is closed (its time has passed, or it holds ``size`` rows).
    """

    start_ms: int
    end_ms: int
    rows: pd.DataFrame
    stats: WindowStats
    complete: bool


def log_windows(
    log: PredictionLogReader,
    model: str,
    spec: WindowSpec,
    *,
    version: int | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    now_ms: int | None = None,
) -> Iterator[LogWindow]:
    """The windows of ``model``'s primary log, oldest first, each read on its own.

    Time windows holding requests that all failed are yielded with no rows; windows without
    any request are skipped. Count windows hold ``spec.size`` predicted rows each (the last
    one maybe fewer); their request statistics cover their time range.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if spec.kind == "time":
        yield from _time_windows(log, model, spec.size, version, since_ms, until_ms, now)
    else:
        yield from _count_windows(log, model, spec.size, version, since_ms, until_ms)


def _time_windows(
    log: PredictionLogReader,
    model: str,
    every: int,
    version: int | None,
    since_ms: int | None,
    until_ms: int | None,
    now: int,
) -> Iterator[LogWindow]:
    import pandas as pd

    stats = {
        s.start_ms: s
        for s in log.window_stats(
            model, every_ms=every, version=version, since_ms=since_ms, until_ms=until_ms
        )
    }
    frames = log.windows(
        model,
        every_ms=every,
        version=version,
        since_ms=since_ms,
        until_ms=until_ms,
        output="pandas",
    )
    pending = next(frames, None)
    for start in sorted(stats):
        rows: Any = pd.DataFrame()
        # a window read after its statistics may hold requests logged meanwhile
        while pending is not None and pending[0] < start:
            pending = next(frames, None)
        if pending is not None and pending[0] == start:
            rows = pending[1]
            pending = next(frames, None)
        yield LogWindow(start, start + every, rows, stats[start], start + every <= now)


def _count_windows(
    log: PredictionLogReader,
    model: str,
    size: int,
    version: int | None,
    since_ms: int | None,
    until_ms: int | None,
) -> Iterator[LogWindow]:
    import pandas as pd

    held: list[pd.DataFrame] = []
    n_held = 0
    for batch in log.batches(
        model, version=version, since_ms=since_ms, until_ms=until_ms, output="pandas"
    ):
        assert isinstance(batch, pd.DataFrame)
        offset = 0
        while offset < len(batch):
            take = min(size - n_held, len(batch) - offset)
            held.append(batch.iloc[offset : offset + take])
            n_held += take
            offset += take
            if n_held == size:
                yield _count_window(log, model, version, held, complete=True)
                held, n_held = [], 0
    if n_held:
        yield _count_window(log, model, version, held, complete=False)


def _count_window(
    log: PredictionLogReader,
    model: str,
    version: int | None,
    parts: list[pd.DataFrame],
    *,
    complete: bool,
) -> LogWindow:
    import pandas as pd

    rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    rows = rows.reset_index(drop=True)
    start = int(rows["time_ms"].iloc[0])
    end = int(rows["time_ms"].iloc[-1]) + 1
    found = log.window_stats(
        model, every_ms=_EVER_MS, version=version, since_ms=start, until_ms=end
    )
    import dataclasses

    return LogWindow(
        start, end, rows, dataclasses.replace(found[0], start_ms=start, end_ms=end), complete
    )
