"""New request ids: 32 hex digits, never repeated, across refills of their random pool."""

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
