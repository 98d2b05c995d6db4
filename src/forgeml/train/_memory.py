"""The memory budget (``memory_limit``): each configuration's peak memory predicted from the
table's shape and the family's parameters, and configurations shrunk or skipped to fit.

The model is deliberately simple and errs high; it was checked against the resident set size
measured in fresh processes on the shared tables (``benchmarks/memory_model.py``):

- **inputs** of a trial: its fold's training rows as the family encodes them (native and
  ordinal: one 8-byte cell per column; dense: the one-hot width, measured by encoding a sample)
  held about three times over (the row slice, the encoding, the library's own copy);
- **the model** of each fold, kept until the trial ends (ensemble members and the fallback):
  forests ``trees x nodes x (64 + 8 x classes)`` bytes with ``nodes = 2 x rows /
  min_samples_leaf`` (an upper bound: trees end at pure leaves); boosting ``rounds x leaves``
  nodes; the MLP its weights;
- **working memory** of the boosting libraries: binned rows (one byte a cell) and gradient
  histograms (``leaves x columns x 256`` bins of 16 bytes for LightGBM, per tree level for
  XGBoost, per leaf for HistGradientBoosting).

The search starts from the process's resident memory with the data loaded; a configuration
whose prediction does not fit what the limit leaves (after the trials running beside it and
the fold models kept) is shrunk one notch at a time (fewer or shallower trees, fewer leaves,
a narrower network) and, when even the smallest does not fit, skipped. Both are recorded in
the trial's note and the leaderboard.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MEMORY_SLACK",
    "MemoryModel",
    "format_bytes",
    "parse_memory",
    "process_rss",
]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
# Below this a training cannot even hold the libraries it imports.
MIN_LIMIT = 64 * 1024**2
# Share of the limit kept free for what the model does not see (allocator slack, the refit).
MEMORY_SLACK = 0.12
_MAX_ROUNDS_GUESS = 1000  # boosting rounds assumed kept (early stopping usually ends sooner)


def parse_memory(value: Any) -> int:
    """Bytes from ``value``: a whole number of bytes or a size with a unit (``512MB``,
    ``2G``, ``1.5GiB``; K, M, G and T count in 1024s).

    Raises:
        ValueError: not a size, or under 64 MB.
    """
    if isinstance(value, bool):
        raise ValueError(f"memory_limit is a size such as 2GB or 512MB; got {value!r}")
    if isinstance(value, int | float):
        amount: float = float(value)
    else:
        match = _SIZE.match(str(value))
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            raise ValueError(f"memory_limit is a size such as 2GB or 512MB; got {value!r}")
        amount = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(amount) or amount < MIN_LIMIT:
        raise ValueError(f"memory_limit must be at least 64MB; got {value!r}")
    return int(amount)


def format_bytes(n: float) -> str:
    """``n`` bytes as MB or GB, e.g. ``'1.2 GB'``, ``'340 MB'``."""
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    return f"{n / 1024**2:.0f} MB"


def process_rss() -> int:
    """This process's resident set size in bytes (Linux ``/proc``; elsewhere the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass(frozen=True)
class Fit:
    """A configuration as it will run, and its predicted peak bytes."""

    params: dict[str, Any]
    bytes: int
    note: str = ""  # what was shrunk, or empty


@dataclass
class MemoryModel:
    """Predicts a trial's peak bytes on one table; shrinks configurations to a budget.

    Attributes:
        rows: training rows of a fold.
        widths: encoded columns per encoder output (native, ordinal, dense).
        n_classes: classes (0 for regression).
        n_folds: folds of a trial (each fold's model is kept until the trial ends).
    """

    rows: int
    widths: dict[str, int]
    n_classes: int
    n_folds: int

    @classmethod
    def for_problem(cls, problem: Any) -> MemoryModel:
        """The model for a search ``Problem`` (dense width measured on a sample)."""
        from forgeml.train._preprocess import TabularEncoder

        n = len(problem.y)
        k = max(2, len(problem.folds))
        sample = problem.X.iloc[: min(n, 2000)]
        y = problem.y[: len(sample)]
        dense = TabularEncoder(kinds=problem.kinds, output="dense", random_state=problem.seed)
        width = int(dense.fit_transform(sample, y).shape[1])
        native = int(problem.X.shape[1])
        return cls(
            rows=n * (k - 1) // k,
            widths={"native": native, "ordinal": native, "dense": max(native, width)},
            n_classes=int(problem.n_classes),
            n_folds=k,
        )

    # -- prediction ---------------------------------------------------------------------------

    def model_bytes(self, family: str, params: dict[str, Any]) -> int:
        """One fitted fold model's bytes."""
        p = _own(params, family)
        outputs = max(1, self.n_classes) if self.n_classes > 2 else 1
        if family in ("rf", "et"):
            rows = self.rows * (0.632 if family == "rf" else 1.0)
            nodes = 2 * rows / max(1, int(p.get("min_samples_leaf", 1))) + 1
            per_node = 64 + 8 * max(1, self.n_classes)
            return int(int(p.get("n_estimators", 100)) * nodes * per_node)
        if family == "lgbm":
            leaves = int(p.get("num_leaves", 31))
            return int(_MAX_ROUNDS_GUESS * outputs * leaves * 2 * 48)
        if family == "xgb":
            leaves = 2 ** int(p.get("max_depth", 6))
            return int(_MAX_ROUNDS_GUESS * outputs * min(leaves, self.rows) * 2 * 48)
        if family == "hgb":
            leaves = int(p.get("max_leaf_nodes", 31))
            return int(_MAX_ROUNDS_GUESS * outputs * leaves * 2 * 48)
        if family == "catboost":
            leaves = 2 ** int(p.get("depth", 6))
            return int(_MAX_ROUNDS_GUESS * outputs * leaves * 8 * 2)
        if family == "mlp":
            sizes = [self.widths["dense"], *_layers(p), max(1, outputs)]
            weights = sum(a * b + b for a, b in itertools.pairwise(sizes))
            return int(weights * 8 * 4)  # weights, their best copy and Adam's two moments
        if family == "linear":
            return int(self.widths["dense"] * max(1, outputs) * 8 * 2)
        return 0

    def working_bytes(self, family: str, params: dict[str, Any]) -> int:
        """Memory a fold's fit uses while it runs (inputs and the library's buffers)."""
        from forgeml.train._zoo import FAMILIES

        p = _own(params, family)
        width = self.widths[FAMILIES[family].output]
        inputs = 3 * self.rows * width * 8
        binned = self.rows * width
        if family == "lgbm":
            return inputs + binned + int(p.get("num_leaves", 31)) * width * 256 * 16
        if family == "xgb":
            level = 2 ** max(0, int(p.get("max_depth", 6)) - 1)
            return inputs + 4 * binned + 2 * level * width * 256 * 16
        if family == "hgb":
            return inputs + binned + int(p.get("max_leaf_nodes", 31)) * width * 256 * 20
        if family == "catboost":
            return inputs + 4 * binned + 2 ** int(p.get("depth", 6)) * width * 256 * 16
        if family == "mlp":
            # the early-stopping split copies the rows; a batch's activations are small
            batch = int(p.get("batch_size", 256)) * sum(_layers(p)) * 8 * 4
            return inputs + self.rows * width * 8 + batch
        if family == "linear":
            return inputs + self.rows * width * 8
        if family in ("rf", "et"):
            return inputs + self.rows * 8 * 4  # bootstrap weights and sample indices
        return inputs

    def trial_bytes(self, family: str, params: dict[str, Any]) -> int:
        """A trial's predicted peak: one fold's working memory plus every fold's model."""
        return self.working_bytes(family, params) + self.n_folds * self.model_bytes(family, params)

    def kept_bytes(self, family: str, params: dict[str, Any]) -> int:
        """What a finished trial keeps while its fold models are held."""
        return self.n_folds * self.model_bytes(family, params)

    # -- fitting a budget --------------------------------------------------------------------

    def fit(self, family: str, params: dict[str, Any], budget: float) -> Fit | None:
        """``params`` if predicted within ``budget`` bytes, else the largest shrunk
        configuration that is (its note says what changed), else ``None``."""
        need = self.trial_bytes(family, params)
        if need <= budget:
            return Fit(dict(params), need)
        shrink = _SHRINK.get(family)
        current = dict(params)
        changed: dict[str, tuple[Any, Any]] = {}
        while shrink is not None:
            smaller = shrink(current)
            if smaller is None:
                break
            for key, value in smaller.items():
                if key not in changed:
                    changed[key] = (current[key], value)
                else:
                    changed[key] = (changed[key][0], value)
            current = {**current, **smaller}
            now = self.trial_bytes(family, current)
            if now <= budget:
                shown = ", ".join(
                    f"{k.split('.', 1)[1]} {a}->{b}" for k, (a, b) in sorted(changed.items())
                )
                note = (
                    f"shrunk to fit the memory limit: {shown} (predicted "
                    f"{format_bytes(need)} -> {format_bytes(now)})"
                )
                return Fit(current, now, note)
        return None


def _own(params: dict[str, Any], family: str) -> dict[str, Any]:
    prefix = family + "."
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def _layers(p: dict[str, Any]) -> list[int]:
    from forgeml.train._zoo import _LAYERS

    return list(_LAYERS.get(str(p.get("layers", "128")), (128,)))


def _halve(key: str, floor: int) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    def step(params: dict[str, Any]) -> dict[str, Any] | None:
        value = int(params.get(key, floor))
        if value <= floor:
            return None
        return {key: max(floor, value // 2)}

    return step


def _minus(key: str, floor: int) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    def step(params: dict[str, Any]) -> dict[str, Any] | None:
        value = int(params.get(key, floor))
        return None if value <= floor else {key: value - 1}

    return step


def _forest(name: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """Fewer trees down to 10, then larger leaves (shallower trees) up to 256 rows."""
    trees, leaf = f"{name}.n_estimators", f"{name}.min_samples_leaf"

    def step(params: dict[str, Any]) -> dict[str, Any] | None:
        if int(params[trees]) > 10:
            return {trees: max(10, int(params[trees]) * 2 // 3)}
        if int(params[leaf]) < 256:
            return {leaf: min(256, int(params[leaf]) * 2)}
        return None

    return step


def _mlp(params: dict[str, Any]) -> dict[str, Any] | None:
    order = ["64", "128", "128-64", "256-128"]
    layers = str(params.get("mlp.layers", "128"))
    if layers in order and order.index(layers) > 0:
        return {"mlp.layers": order[order.index(layers) - 1]}
    return None


_SHRINK: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "rf": _forest("rf"),
    "et": _forest("et"),
    "lgbm": _halve("lgbm.num_leaves", 4),
    "hgb": _halve("hgb.max_leaf_nodes", 4),
    "xgb": _minus("xgb.max_depth", 2),
    "catboost": _minus("catboost.depth", 3),
    "mlp": _mlp,
}
