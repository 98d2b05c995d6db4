"""The route store contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from forgeml.errors import InputError, NotFoundError
from forgeml.store import Workspace


def test_routes_have_increasing_revisions(workspace: Workspace):
    store = workspace.routing
    assert store.routes() == {}
    assert store.route("adult") is None
    canary = {"versions": {"1": 0.9, "2": 0.1}, "shadow": [3]}
    assert store.set_route("adult", canary, user="ada") == 1
    assert store.set_route("churn", {"versions": {"4": 1.0}}) == 1
    assert store.set_route("adult", {"versions": {"2": 1.0}}) == 2
    assert store.routes() == {
        "adult": ({"versions": {"2": 1.0}}, 2),
        "churn": ({"versions": {"4": 1.0}}, 1),
    }
    assert store.clear_route("adult") == 3
    assert store.routes() == {"churn": ({"versions": {"4": 1.0}}, 1)}
    assert store.route("adult") is None
    with pytest.raises(NotFoundError, match="adult"):
        store.clear_route("adult")
    assert store.set_route("adult", canary) == 4  # never back to a revision already seen
    assert store.route("adult") == (canary, 4)
    with pytest.raises(InputError):
        store.set_route("bad name!", {})
    with pytest.raises(InputError, match="mapping"):
        store.set_route("adult", [1, 2])  # type: ignore[arg-type]
