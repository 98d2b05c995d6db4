"""New request ids: 32 hex digits, never repeated, across refills of their random pool, in the
clock's order from one millisecond to the next."""

from __future__ import annotations

import re

from forgeml.serve._http import _RandomIds


def test_ids_are_random_hex_and_unique_across_refills():
    new_id = _RandomIds(ids=8)
    ids = [new_id() for _ in range(1000)]  # 125 refills
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    other = _RandomIds(ids=8)
    assert not set(ids) & {other() for _ in range(1000)}


def test_ids_follow_the_clock_in_milliseconds():
    now = [1_796_500_000_000_000_000]  # nanoseconds

    def clock() -> int:
        now[0] += 1_000_000  # a millisecond between ids
        return now[0]

    new_id = _RandomIds(ids=8, clock=clock)
    ids = [new_id() for _ in range(100)]
    assert ids == sorted(ids) and len(set(ids)) == 100
    assert int(ids[0][:12], 16) == 1_796_500_000_001
    # within one millisecond the random part still tells them apart
    same = _RandomIds(ids=8, clock=lambda: 5_000_000)
    assert len({same() for _ in range(1000)}) == 1000
