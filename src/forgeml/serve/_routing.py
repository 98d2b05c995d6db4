"""Routing: which loaded version answers a request, and which shadow gets a copy.

A ``Route`` is immutable: a weighted split between versions (canary, A/B) and an optional
shadow version with the fraction of traffic it receives. Requests with a key are assigned by a
hash of the key (sticky); others by a seeded random draw. The service swaps a model's whole
``ModelEntry`` (route plus loaded versions) in one assignment, so a request sees either the old
table or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forgeml.errors import ConflictError, InputError

if TYPE_CHECKING:
    from forgeml.registry import LoadedModel
    from forgeml.serve._batcher import Batcher
    from forgeml.serve._cache import PredictionCache
    from forgeml.serve._runners import Runner
    from forgeml.serve._validate import Validator

__all__ = ["ModelEntry", "Route", "Served", "parse_route"]


@dataclass(frozen=True, slots=True)
class Route:
    """How a model's traffic is shared between versions.

    Attributes:
        split: (version, weight) pairs; weights are relative.
        shadow: the version that receives a copy of traffic, or ``None``.
        shadow_fraction: the share of requests copied to the shadow (0 to 1).
        sticky: requests with a key always go to the same version while the split holds.
        revision: the stored route's revision (0: the default route, the served alias).
    """

    split: tuple[tuple[int, float], ...]
    shadow: int | None = None
    shadow_fraction: float = 0.0
    sticky: bool = True
    revision: int = 0

    @property
    def versions(self) -> set[int]:
        out = {v for v, _ in self.split}
        if self.shadow is not None:
            out.add(self.shadow)
        return out

    def to_dict(self) -> dict[str, Any]:
        total = sum(w for _, w in self.split)
        return {
            "split": {str(v): w / total for v, w in self.split},
            "shadow": None
            if self.shadow is None
            else {"version": self.shadow, "fraction": self.shadow_fraction},
            "sticky": self.sticky,
            "revision": self.revision,
        }


def parse_route(
    config: Mapping[str, Any], resolve: Callable[[str], int], *, revision: int = 0
) -> Route:
    """A ``Route`` from its stored form.

    ``{"split": {"production": 90, "7": 10}, "shadow": {"version": "staging", "fraction":
    0.2}, "sticky": true}``: split keys and the shadow version are version numbers or aliases
    (resolved with ``resolve`` each time the table is rebuilt, so an alias move is followed).
    Every weight is a finite number above 0 (a version that gets no traffic is left out) and
    their sum is finite; ``resolve`` refuses versions that cannot be served (retired).

    Raises:
        InputError: naming the field that is wrong (``route.split['7']``,
            ``route.shadow.version``...), including what ``resolve`` refused.
    """
    if not isinstance(config, Mapping):
        raise InputError("A route is an object with 'split' and optionally 'shadow' and 'sticky'")
    unknown = set(config) - {"split", "shadow", "sticky"}
    if unknown:
        raise InputError(
            f"Unknown route field(s) {sorted(unknown)}; expected split, shadow, sticky"
        )
    split_config = config.get("split")
    if not isinstance(split_config, Mapping) or not split_config:
        raise InputError("route.split maps versions or aliases to weights, e.g. {'3': 90, '4': 10}")
    weights: dict[int, float] = {}
    for key, weight in split_config.items():
        field = f"route.split[{str(key)!r}]"
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or not weight > 0
        ):
            raise InputError(f"{field} is a finite weight > 0; got {weight!r}")
        version = _resolved(resolve, str(key), field)
        weights[version] = weights.get(version, 0.0) + float(weight)
    total = sum(weights.values())
    if not math.isfinite(total):
        raise InputError(
            f"route.split: the weights' sum is not finite ({total}); use smaller weights"
        )
    shadow_config = config.get("shadow")
    shadow: int | None = None
    fraction = 0.0
    if shadow_config is not None:
        if not isinstance(shadow_config, Mapping) or "version" not in shadow_config:
            raise InputError("route.shadow is {'version': V, 'fraction': 0..1}")
        shadow = _resolved(resolve, str(shadow_config["version"]), "route.shadow.version")
        fraction = shadow_config.get("fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise InputError(f"route.shadow.fraction is a number from 0 to 1; got {fraction!r}")
        if not 0.0 <= fraction <= 1.0:
            raise InputError(f"route.shadow.fraction is a number from 0 to 1; got {fraction!r}")
    sticky = config.get("sticky", True)
    if not isinstance(sticky, bool):
        raise InputError(f"route.sticky is true or false; got {sticky!r}")
    return Route(
        split=tuple(sorted(weights.items())),
        shadow=shadow,
        shadow_fraction=float(fraction),
        sticky=sticky,
        revision=revision,
    )


def _resolved(resolve: Callable[[str], int], which: str, field: str) -> int:
    """``resolve(which)``, its refusal prefixed with the route field that named ``which``."""
    try:
        return resolve(which)
    except (InputError, ConflictError) as e:
        raise InputError(f"{field}: {e.message}") from None


@dataclass(slots=True)
class Served:
    """One loaded version of a served model."""

    model: LoadedModel
    runner: Runner
    validator: Validator
    batcher: Batcher
    cache: PredictionCache | None

    @property
    def version(self) -> int:
        return self.model.version


@dataclass(slots=True)
class ModelEntry:
    """A served model: its route and the loaded versions it uses. Replaced whole, never
    mutated, when the route or an alias changes."""

    name: str
    ref: str
    route: Route
    versions: dict[int, Served]
    seed: int = 0
    _cumulative: list[tuple[float, int]] = field(default_factory=list)
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        total = sum(w for _, w in self.route.split)
        acc = 0.0
        self._cumulative = []
        for version, weight in self.route.split:
            acc += weight / total
            self._cumulative.append((acc, version))
        self._random = random.Random(self.seed)

    @property
    def primary(self) -> Served:
        """The version with the largest share of traffic."""
        version = max(self.route.split, key=lambda vw: vw[1])[0]
        return self.versions[version]

    def choose(self, key: str | None) -> tuple[Served, Served | None]:
        """The version that answers a request and the shadow that gets a copy (or ``None``)."""
        route = self.route
        if len(self._cumulative) == 1:
            version = self._cumulative[0][1]
        else:
            u = _unit(key, "split") if key is not None and route.sticky else self._random.random()
            version = self._cumulative[-1][1]
            for bound, candidate in self._cumulative:
                if u < bound:
                    version = candidate
                    break
        shadow = None
        if route.shadow is not None and route.shadow_fraction > 0:
            u = _unit(key, "shadow") if key is not None else self._random.random()
            if u < route.shadow_fraction:
                shadow = self.versions[route.shadow]
        return self.versions[version], shadow


def _unit(key: str, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
