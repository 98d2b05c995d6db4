"""The metric registry: every metric forgeml computes, by one name, with its direction.

Training optimises these metrics, evaluation reports them with intervals, monitoring tracks
them over time; all three read names, directions and task kinds from here, so a metric means
the same thing wherever it appears. A metric is a plain function
``(y_true, y_pred, *, sample_weight=None) -> float`` named ``*_score`` when higher is better
and ``*_error`` / ``*_loss`` when lower is better (checked when it is registered).

Conventions of the functions: classification labels are encoded ``0 .. k-1`` (the positive
class of a binary task is 1); a metric that ``needs_proba`` reads class probabilities, one
column per encoded class (a binary task may pass the positive class's score as one column);
the others read encoded labels, or values for regression. ``sample_weight`` are frequency
weights: weight 2 counts a row twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from forgeml.errors import InputError

__all__ = [
    "CLASSIFICATION",
    "TASKS",
    "MetricSpec",
    "canonical_name",
    "get_metric",
    "greater_is_better",
    "metrics_for",
    "register_metric",
    "registered_metrics",
]

TASKS = ("binary", "multiclass", "regression")
CLASSIFICATION = ("binary", "multiclass")


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric. Immutable.

    Attributes:
        name: the name users write (``--metric``), logged to runs and shown in reports.
        func: ``(y_true, y_pred, *, sample_weight=None) -> float``.
        greater_is_better: the direction: a search maximises the metric when True.
        tasks: the tasks it applies to (``binary``, ``multiclass``, ``regression``).
        needs_proba: whether ``y_pred`` is class probabilities rather than labels.
        aliases: other names that mean this metric.
    """

    name: str
    func: Callable[..., float]
    greater_is_better: bool
    tasks: tuple[str, ...]
    needs_proba: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def reads(self) -> str:
        """What ``y_pred`` holds: ``proba``, ``label`` or ``value`` (regression)."""
        if self.tasks == ("regression",):
            return "value"
        return "proba" if self.needs_proba else "label"

    @property
    def description(self) -> str:
        """The first line of the function's docstring."""
        return (self.func.__doc__ or self.name).strip().splitlines()[0]

    def __call__(self, y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
        return float(self.func(y_true, y_pred, sample_weight=sample_weight))


_REGISTRY: dict[str, MetricSpec] = {}
_ALIASES: dict[str, str] = {}


def register_metric(
    name: str,
    *,
    greater_is_better: bool,
    tasks: Iterable[str],
    needs_proba: bool = False,
    aliases: Iterable[str] = (),
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register the decorated function as the metric ``name``.

    Args:
        name: the metric's name.
        greater_is_better: its direction; must agree with the function's name
            (``*_score`` higher is better, ``*_error`` / ``*_loss`` lower).
        tasks: the tasks it applies to.
        needs_proba: whether it reads class probabilities.
        aliases: other accepted names.

    Returns:
        a decorator that registers the function and returns it unchanged.

    Raises:
        ValueError: a name already taken, an unknown task, or a function name that says the
            opposite direction.
    """
    task_tuple = tuple(tasks)

    def decorate(func: Callable[..., float]) -> Callable[..., float]:
        suffix_higher = func.__name__.endswith("_score")
        if not func.__name__.endswith(("_score", "_error", "_loss")):
            raise ValueError(
                f"The metric function {func.__name__} must end in _score, _error or _loss"
            )
        if suffix_higher != greater_is_better:
            raise ValueError(
                f"The metric {name!r}: {func.__name__} says "
                f"{'higher' if suffix_higher else 'lower'} is better, the registration not"
            )
        unknown = set(task_tuple) - set(TASKS)
        if unknown or not task_tuple:
            raise ValueError(f"The metric {name!r}: tasks must be among {TASKS}; got {task_tuple}")
        spec = MetricSpec(name, func, greater_is_better, task_tuple, needs_proba, tuple(aliases))
        for key in (spec.name, *spec.aliases):
            if key in _REGISTRY or key in _ALIASES:
                raise ValueError(f"The metric name {key!r} is already registered")
        _REGISTRY[spec.name] = spec
        _ALIASES.update({alias: spec.name for alias in spec.aliases})
        return func

    return decorate


def registered_metrics() -> Mapping[str, MetricSpec]:
    """Every registered metric by its name (aliases not included); a read-only view."""
    return MappingProxyType(_REGISTRY)


def canonical_name(name: str) -> str:
    """The registered name ``name`` stands for (itself, or the metric it is an alias of).

    Raises:
        InputError: no metric has that name.
    """
    return get_metric(name).name


def get_metric(name: str, task: str | None = None) -> MetricSpec:
    """The metric called ``name`` (or an alias of it), optionally checked against ``task``.

    Raises:
        InputError: an unknown name, or a metric that does not apply to ``task``.
    """
    spec = _REGISTRY.get(_ALIASES.get(name, name))
    if spec is None:
        raise InputError(f"Unknown metric {name!r}; known metrics: {', '.join(sorted(_REGISTRY))}")
    if task is not None and task not in spec.tasks:
        fits = ", ".join(m.name for m in metrics_for(task))
        raise InputError(f"The metric {name!r} does not apply to a {task} task; use one of {fits}")
    return spec


def greater_is_better(name: str) -> bool:
    """Whether a larger value of the metric ``name`` is better.

    Raises:
        InputError: no metric has that name.
    """
    return get_metric(name).greater_is_better


def metrics_for(task: str) -> list[MetricSpec]:
    """The metrics that apply to ``task``, by name."""
    return sorted((m for m in _REGISTRY.values() if task in m.tasks), key=lambda m: m.name)
