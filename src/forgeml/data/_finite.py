"""forgeml's one policy for non-finite numbers in tables.

A value is a finite number, a missing value (an empty cell, NaN), text, a date or a boolean:
never an infinity. JSON has no token for infinity (forgeml writes NaN and infinities as
``null``, ``forgeml._json``), and most models either refuse it or treat it as an ordinary large
number, so an ``inf`` that entered a dataset would read back differently in its profile, its
stored documents, the model input and the served answers. So an infinity is stopped where a
table enters forgeml:

- ``data add`` (``forgeml.data.add``) refuses a table holding ``inf`` or ``-inf`` in a numeric
  column, naming every such column, its count and its first row, before anything is written;
  ``non_finite="missing"`` (``--non-finite missing``) reads them as missing values instead,
  and the version's quality findings say how many were converted in which column;
- training refuses a table holding an infinity in a feature or the target the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeml.errors import InputError

__all__ = [
    "NON_FINITE_POLICIES",
    "InfiniteColumn",
    "apply_non_finite",
    "infinite_columns",
    "refuse_infinite",
]

NON_FINITE_POLICIES = ("refuse", "missing")


@dataclass(frozen=True, slots=True)
class InfiniteColumn:
    """A numeric column holding infinities: how many, and the first row (0-based)."""

    column: str
    count: int
    first_row: int

    def describe(self) -> str:
        """``'x' (3 values, first at row 17)``: rows counted from 1, the header excluded."""
        plural = "s" if self.count != 1 else ""
        return f"{self.column!r} ({self.count} value{plural}, first at row {self.first_row + 1})"


def infinite_columns(frame: pd.DataFrame) -> list[InfiniteColumn]:
    """The float columns of ``frame`` that hold ``inf`` or ``-inf``, in column order."""
    found: list[InfiniteColumn] = []
    for name, series in frame.items():
        if series.dtype.kind != "f":
            continue
        mask = np.isinf(series.to_numpy())
        if mask.any():
            found.append(InfiniteColumn(str(name), int(mask.sum()), int(np.argmax(mask))))
    return found


def refuse_infinite(frame: pd.DataFrame, *, where: str = "The table", hint: str = "") -> None:
    """Raise ``InputError`` naming the columns of ``frame`` that hold infinities."""
    found = infinite_columns(frame)
    if found:
        shown = "; ".join(c.describe() for c in found[:5])
        more = f"; and {len(found) - 5} more columns" if len(found) > 5 else ""
        raise InputError(
            f"{where} holds infinite numbers in {shown}{more}: forgeml takes finite numbers or "
            f"missing values{hint}"
        )


def apply_non_finite(
    frame: pd.DataFrame, policy: str, *, where: str = "The table"
) -> tuple[pd.DataFrame, list[InfiniteColumn]]:
    """``frame`` under ``policy``: ``"refuse"`` raises if it holds an infinity, ``"missing"``
    replaces them with NaN (a copy of those columns only) and returns what it converted.

    Raises:
        InputError: an unknown policy, or an infinity under ``"refuse"``.
    """
    if policy not in NON_FINITE_POLICIES:
        raise InputError(
            f"non_finite must be one of {', '.join(NON_FINITE_POLICIES)}; got {policy!r}"
        )
    if policy == "refuse":
        refuse_infinite(
            frame,
            where=where,
            hint=" (read them as missing with --non-finite missing, non_finite='missing')",
        )
        return frame, []
    found = infinite_columns(frame)
    if not found:
        return frame, []
    frame = frame.copy(deep=False)
    for column in found:
        values = frame[column.column].to_numpy(copy=True)
        values[np.isinf(values)] = np.nan
        frame[column.column] = values
    return frame, found
