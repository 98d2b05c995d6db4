"""The zero-shot portfolio: short ordered lists of configurations, per task and size class,
chosen offline to do well across many real tables (TabRepo's zero-shot selection, AutoGluon's
portfolios), tried before the Bayesian search.

The data is ``portfolio.json`` beside this module, built by ``tools/build_portfolio.py`` from a
meta-benchmark (its ``provenance`` names the tables, the candidates, the date and the command;
the tables ``benchmarks/automl.py`` scores are held back from it). Read through forgeml's JSON
policy and validated on first use: every configuration names a known family and gives a value
inside that family's search space for every parameter the space has.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml._json import loads
from forgeml.errors import InputError

__all__ = [
    "PORTFOLIO_FILE",
    "SIZE_CLASSES",
    "Portfolio",
    "check_config",
    "load_portfolio",
    "portfolio_configs",
    "size_class",
    "space_of",
]

PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")
# (name, most training rows); the last class has no upper bound
SIZE_CLASSES: tuple[tuple[str, int | None], ...] = (
    ("small", 5_000),
    ("medium", 50_000),
    ("large", None),
)
_TASKS = ("binary", "multiclass", "regression")


def size_class(n_rows: int) -> str:
    """The size class of a table of ``n_rows`` training rows."""
    for name, most in SIZE_CLASSES:
        if most is None or n_rows < most:
            return name
    return SIZE_CLASSES[-1][0]


@dataclass(frozen=True)
class Portfolio:
    """The validated portfolio: ``configs[task][size]`` lists ``{"model", "params"}`` in the
    order they are tried; ``provenance`` says how it was built."""

    configs: Mapping[str, Mapping[str, tuple[Mapping[str, Any], ...]]]
    provenance: Mapping[str, Any]

    def for_problem(self, task: str, n_rows: int) -> tuple[Mapping[str, Any], ...]:
        """The list for ``task`` at ``n_rows`` rows: its size class's, or the nearest smaller
        class that has one (the large class uses the medium list)."""
        by_size = self.configs.get(task, {})
        names = [name for name, _ in SIZE_CLASSES]
        for name in reversed(names[: names.index(size_class(n_rows)) + 1]):
            if name in by_size:
                return by_size[name]
        return ()


class _SpaceRecorder:
    """Stands in for an Optuna trial to read a family's space: records each parameter's
    distribution and answers its lowest value."""

    def __init__(self) -> None:
        self.space: dict[str, tuple[str, Any, Any]] = {}

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        self.space[name] = ("int", low, high)
        return low

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        self.space[name] = ("float", low, high)
        return low

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.space[name] = ("categorical", tuple(choices), None)
        return choices[0]


def space_of(family: str, task: str, weighted: bool) -> dict[str, tuple[str, Any, Any]]:
    """The parameters (without the family prefix) of ``family``'s search space for ``task``:
    ``(kind, low, high)`` or ``("categorical", choices, None)``. ``weighted``: the space of an
    imbalanced classification (class weights searched; always for multiclass)."""
    from forgeml.train._zoo import FAMILIES

    recorder = _SpaceRecorder()
    FAMILIES[family].space(recorder, task, weighted)
    prefix = family + "."
    return {k[len(prefix) :]: v for k, v in recorder.space.items()}


def check_config(config: Mapping[str, Any], task: str, where: str) -> None:
    """Raise ``InputError`` naming ``where`` unless ``config`` is ``{"model": family,
    "params": {...}}`` with a known family for ``task`` and every parameter of its space
    inside its range (class weights may be left out: they are searched only when needed)."""
    from forgeml.train._zoo import FAMILIES

    family = config.get("model")
    if family not in FAMILIES or task not in FAMILIES[family].tasks:
        raise InputError(f"{where}.model must be a model family for {task}; got {family!r}")
    params = config.get("params")
    if not isinstance(params, Mapping):
        raise InputError(f"{where}.params must be an object; got {params!r:.60}")
    space = space_of(family, task, True)
    unknown = sorted(set(params) - set(space))
    if unknown:
        raise InputError(f"{where}.params has {unknown[0]!r}, not in the {family} space")
    for name, (kind, low, high) in space.items():
        if name not in params:
            if name == "class_weight":
                continue
            raise InputError(f"{where}.params lacks {name!r} of the {family} space")
        value = params[name]
        if kind == "categorical":
            ok = value in low
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        else:
            ok = isinstance(value, int | float) and low <= value <= high
        if not ok:
            expected = f"one of {list(low)}" if kind == "categorical" else f"{low}..{high}"
            raise InputError(f"{where}.params.{name} must be {expected}; got {value!r}")


def parse_portfolio(document: Any) -> Portfolio:
    """Validate a portfolio document (the JSON ``tools/build_portfolio.py`` writes)."""
    if not isinstance(document, Mapping) or document.get("format") != 1:
        raise InputError("portfolio: a document of format 1 was expected")
    raw = document.get("portfolios")
    if not isinstance(raw, Mapping):
        raise InputError("portfolio.portfolios must be an object of tasks")
    sizes = {name for name, _ in SIZE_CLASSES}
    configs: dict[str, dict[str, tuple[Mapping[str, Any], ...]]] = {}
    for task, by_size in raw.items():
        if task not in _TASKS or not isinstance(by_size, Mapping):
            raise InputError(f"portfolio.portfolios.{task}: not a task of {', '.join(_TASKS)}")
        for size, members in by_size.items():
            where = f"portfolio.portfolios.{task}.{size}"
            if size not in sizes or not isinstance(members, list) or not members:
                raise InputError(f"{where}: a size class with a non-empty list was expected")
            for i, member in enumerate(members):
                check_config(member, task, f"{where}[{i}]")
            configs.setdefault(task, {})[size] = tuple(
                {"model": m["model"], "params": dict(m["params"]), "kind": m.get("kind", "")}
                for m in members
            )
    provenance = document.get("provenance")
    if not isinstance(provenance, Mapping) or not provenance.get("tables"):
        raise InputError("portfolio.provenance must name the tables it was built on")
    return Portfolio(configs, dict(provenance))


@functools.cache
def load_portfolio() -> Portfolio:
    """The shipped portfolio, validated (read once per process)."""
    return parse_portfolio(loads(PORTFOLIO_FILE.read_bytes()))


def portfolio_configs(
    task: str, n_rows: int, families: Sequence[str], n: int
) -> list[dict[str, Any]]:
    """The first ``n`` configurations of the portfolio for ``task`` and ``n_rows`` whose
    family is among ``families`` (``{"model", "params"}``, parameters without the prefix),
    less those that were a family's starting point when the portfolio was built (``kind``
    ``start``): the search tries each family's starting point before the portfolio, so such
    an entry stands for it, and a starting point changed since is not tried twice."""
    if n <= 0:
        return []
    allowed = set(families)
    chosen = [c for c in load_portfolio().for_problem(task, n_rows) if c["model"] in allowed]
    return [
        {"model": c["model"], "params": dict(c["params"])}
        for c in chosen[:n]
        if c.get("kind") != "start"
    ]
