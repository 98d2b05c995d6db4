"""The routing object on fakes: canary split, stickiness, shadow fraction, route parsing."""

from __future__ import annotations

from typing import Any

import pytest

from forgeml.errors import InputError
from forgeml.serve._routing import ModelEntry, Route, parse_route


class FakeServed:
    def __init__(self, version: int) -> None:
        self.version = version


def entry(route: Route, seed: int = 0) -> ModelEntry:
    versions: dict[int, Any] = {v: FakeServed(v) for v in route.versions}
    return ModelEntry(name="m", ref="m@production", route=route, versions=versions, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_canary_split_matches_its_weights(seed: int) -> None:
    table = entry(Route(split=((1, 80.0), (2, 20.0))), seed=seed)
    draws = 20_000
    chosen = [table.choose(None)[0].version for _ in range(draws)]
    assert set(chosen) == {1, 2}
    # binomial standard deviation at p=0.2, n=20,000 is 0.0028: 0.01 is over 3.5 of them
    assert abs(chosen.count(2) / draws - 0.2) < 0.01
    keyed = [table.choose(f"customer-{i}")[0].version for i in range(draws)]
    assert abs(keyed.count(2) / draws - 0.2) < 0.01  # keys spread by their hash


def test_a_key_always_gets_the_same_version_unless_not_sticky() -> None:
    table = entry(Route(split=((1, 50.0), (2, 50.0))))
    for key in ("a", "b", "customer-42"):
        assert len({table.choose(key)[0].version for _ in range(200)}) == 1
    loose = entry(Route(split=((1, 50.0), (2, 50.0)), sticky=False))
    assert len({loose.choose("customer-42")[0].version for _ in range(200)}) == 2


def test_the_shadow_gets_its_fraction_and_never_answers() -> None:
    table = entry(Route(split=((1, 1.0),), shadow=3, shadow_fraction=0.3))
    picks = [table.choose(None) for _ in range(20_000)]
    assert {served.version for served, _ in picks} == {1}
    shadowed = sum(shadow is not None for _, shadow in picks)
    assert abs(shadowed / len(picks) - 0.3) < 0.015
    assert {shadow.version for _, shadow in picks if shadow is not None} == {3}
    none = entry(Route(split=((1, 1.0),), shadow=3, shadow_fraction=0.0))
    assert all(none.choose(None)[1] is None for _ in range(1000))


def test_the_primary_is_the_largest_share() -> None:
    assert entry(Route(split=((1, 10.0), (4, 90.0)))).primary.version == 4


def test_routes_parse_aliases_and_refuse_bad_fields() -> None:
    aliases = {"production": 3, "staging": 4, "3": 3, "4": 4}

    def resolve(which: str) -> int:
        if which not in aliases:
            raise InputError(f"no version or alias {which!r}")
        return aliases[which]

    route = parse_route(
        {"split": {"production": 90, "4": 10}, "shadow": {"version": "staging", "fraction": 0.5}},
        resolve,
        revision=7,
    )
    assert route.split == ((3, 90.0), (4, 10.0)) and route.shadow == 4
    assert route.to_dict()["split"] == {"3": 0.9, "4": 0.1}
    assert route.revision == 7
    for config, word in [
        ({"split": {"9": 100}}, "9"),
        ({"split": {"3": -5}}, "split"),
        ({"split": {"3": 1}, "shadow": {"version": 4, "fraction": 3}}, "fraction"),
        ({"weights": {}}, "weights"),
        ({"split": {"3": 0}}, "> 0"),
        ({"split": {"3": float("inf")}}, "finite"),
        ({"split": {"3": 1}, "sticky": "yes"}, "sticky"),
    ]:
        with pytest.raises(InputError, match=word):
            parse_route(config, resolve)
