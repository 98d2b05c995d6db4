"""What the server holds per served model: loaded versions with their micro-batchers and
caches, and the routing table that picks a version for each request.

Micro-batching
    Each served version has one ``Batcher``: requests put their validated columns on its queue
    and await a future. One task takes the first waiting request plus every request queued
    behind it (up to ``max_batch_rows`` rows), predicts them in a worker thread as one batch and
    resolves every future. With ``max_wait_ms=0`` (the default, *adaptive*) it never waits for
    more rows: a lone request is predicted at once, and under load the batch is whatever
    arrived while the previous batch ran, so batches grow with traffic and latency stays
    bounded by one batch. A positive ``max_wait_ms`` waits up to that long to fill a batch.

Routing
    A ``Route`` is immutable: a weighted split between versions (canary, A/B) and an optional
    shadow version with the fraction of traffic it receives. Requests with a key are assigned
    by a hash of the key (sticky); others by a seeded random draw. The server swaps a model's
    whole ``ModelEntry`` (route plus loaded versions) in one assignment, so a request sees
    either the old table or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgeml.errors import InputError
from forgeml.registry import LoadedModel
from forgeml.serve._runners import Runner
from forgeml.serve._validate import Validator

__all__ = ["Batcher", "ModelEntry", "PredictionCache", "Route", "Served", "parse_route"]


class Batcher:
    """Gathers concurrent requests for one model version into batches.

    Args:
        runner: what predicts a batch.
        executor: the threads batches run on (the event loop never runs a model).
        max_batch_rows: the most rows in one batch (a single larger request runs alone).
        max_wait_ms: how long to wait for more rows once a request is waiting (0: adaptive).
        observe: called with each batch's row count and the seconds it took.
    """

    def __init__(
        self,
        runner: Runner,
        executor: Executor,
        *,
        max_batch_rows: int = 512,
        max_wait_ms: float = 0.0,
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self.runner = runner
        self._executor = executor
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait_ms / 1000.0
        self._observe = observe
        self._queue: asyncio.Queue[tuple[dict[str, list[Any]], int, asyncio.Future[Any]]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None
        self._held: tuple[dict[str, list[Any]], int, asyncio.Future[Any]] | None = None
        self._busy = False
        self.batches = 0
        self.rows = 0

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize() + (self._held is not None)

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while self.depth or self._busy:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def predict(
        self, columns: dict[str, list[Any]], n: int
    ) -> tuple[list[Any], np.ndarray | None]:
        """Predictions and probabilities for one request's rows."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((columns, n, future))
        return await future  # type: ignore[no-any-return]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            if self._held is not None:
                first, self._held = self._held, None
            else:
                first = await queue.get()
            batch = [first]
            rows = first[1]
            deadline = loop.time() + self.max_wait if self.max_wait > 0 else 0.0
            while rows < self.max_batch_rows:
                if queue.empty():
                    if not deadline or loop.time() >= deadline:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), deadline - loop.time())
                    except TimeoutError:
                        break
                else:
                    item = queue.get_nowait()
                if rows + item[1] > self.max_batch_rows:
                    self._held = item  # starts the next batch
                    break
                batch.append(item)
                rows += item[1]
            self._busy = True
            try:
                await self._run(loop, batch, rows)
            finally:
                self._busy = False

    async def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[dict[str, list[Any]], int, asyncio.Future[Any]]],
        rows: int,
    ) -> None:
        if len(batch) == 1:
            columns = batch[0][0]
        else:
            columns = {name: [] for name in batch[0][0]}
            for part, _, _ in batch:
                for name, values in part.items():
                    columns[name].extend(values)
        started = loop.time()
        try:
            labels, proba = await loop.run_in_executor(
                self._executor, self.runner.run, columns, rows
            )
        except Exception as e:  # the whole batch failed: retry each request alone
            if len(batch) > 1:
                for item in batch:
                    await self._run(loop, [item], item[1])
                return
            if not batch[0][2].done():
                batch[0][2].set_exception(e)
            return
        self.batches += 1
        self.rows += rows
        if self._observe is not None:
            self._observe(rows, loop.time() - started)
        start = 0
        for _, n, future in batch:
            if not future.done():
                future.set_result(
                    (labels[start : start + n], None if proba is None else proba[start : start + n])
                )
            start += n


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

    Raises:
        InputError: naming the field that is wrong.
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
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
            raise InputError(f"route.split[{key!r}] is a weight >= 0; got {weight!r}")
        version = resolve(str(key))
        weights[version] = weights.get(version, 0.0) + float(weight)
    if sum(weights.values()) <= 0:
        raise InputError("route.split needs at least one weight above 0")
    shadow_config = config.get("shadow")
    shadow: int | None = None
    fraction = 0.0
    if shadow_config is not None:
        if not isinstance(shadow_config, Mapping) or "version" not in shadow_config:
            raise InputError("route.shadow is {'version': V, 'fraction': 0..1}")
        shadow = resolve(str(shadow_config["version"]))
        fraction = shadow_config.get("fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise InputError(f"route.shadow.fraction is a number from 0 to 1; got {fraction!r}")
        if not 0.0 <= fraction <= 1.0:
            raise InputError(f"route.shadow.fraction is a number from 0 to 1; got {fraction!r}")
    sticky = config.get("sticky", True)
    if not isinstance(sticky, bool):
        raise InputError(f"route.sticky is true or false; got {sticky!r}")
    return Route(
        split=tuple(sorted((v, w) for v, w in weights.items() if w > 0)),
        shadow=shadow,
        shadow_fraction=float(fraction),
        sticky=sticky,
        revision=revision,
    )


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
