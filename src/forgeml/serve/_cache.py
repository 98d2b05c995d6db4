"""The prediction cache of one served model version."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["PredictionCache"]


class PredictionCache:
    """An LRU cache of single-row predictions keyed on the row's canonical values.

    Keys hold the validated values in signature order (missing values as ``None``), so rows
    that differ only in column order, number format ("3" and 3.0 for a number) or extra
    columns share an entry. One cache belongs to one model version: a version switch starts
    from an empty cache.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(columns: Mapping[str, list[Any]]) -> tuple[Any, ...]:
        """The key of a one-row request."""
        return tuple(
            float(v) if v.__class__ is int else v for values in columns.values() for v in values
        )

    def get(self, key: tuple[Any, ...]) -> tuple[Any, Any] | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: tuple[Any, ...], value: tuple[Any, Any]) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
