"""XGBoost boosters' trees walked at once in NumPy, for a few rows, with XGBoost's numbers.

XGBoost's prediction C function sets each tree up for a block of rows: for one row it costs
about 1 us per tree of depth 6 (3 us for depth 8), and a bag of fold models pays it for every
fold model. ``XGBoostForest`` walks the trees of several boosters at once:

- every split's decision for the rows is computed first, grouped by input column: a numeric
  column's splits are one comparison of the column's value (as float32, as XGBoost reads it)
  against its thresholds, a categorical column's one row of a table built when the forest is
  made (category in the split's set: right; a missing value: the split's default way; a
  negative or unknown category: left, as XGBoost's ``Decision``);
- then every tree is walked at once, one NumPy step per level (the deeper trees first, so a
  level moves only the trees that are that deep);
- the leaves are added to each booster's base margin in tree order in float32, and a logistic
  objective's link is applied as XGBoost computes it (``common::Sigmoid``: ``x = min(-x, 88.7f)``,
  ``1 / (expf(x) + 1 + 1e-16)`` in float32, with the C library's own ``expf``).

It is used only when it gives the C function's numbers to the last bit on rows made to sit on
and beside every split, on every category of the sets and missing (``XGBoostForest.of``).
Objectives: those without a link (squared, absolute, pseudo-Huber error, ``binary:logitraw``)
and the logistic ones (``binary:logistic``, ``reg:logistic``); one output per row (not
multiclass, not multi-target), ``gbtree`` boosters (not DART).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["XGBoostForest"]

RowsPredictor = Callable[[np.ndarray], np.ndarray]

_IDENTITY = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "binary:logitraw")
_LOGISTIC = ("binary:logistic", "reg:logistic")
# Measured (one thread, loaded machine; Adult classifiers of 30 to 300 trees of depth 4 to 6,
# bike-sharing regressions of 200 and 1,000 trees of depth 8): XGBoost's call of one row costs
# about as much as the walk at 40 trees (30 trees: 45 us both; 300: 140 us vs 60 us; 1,000:
# 5.7 ms vs 0.27 ms), and each further row walked costs about what 60 trees cost XGBoost.
# Past 4 rows a large forest's decisions (one per split and row) no longer stay in the cache.
_TREES_FOR_ONE_ROW = 40
_TREES_PER_FURTHER_ROW = 60
_MOST_ROWS = 4


_LIBM: dict[str, Any] = {}


def _libm(name: str) -> Any:
    """The C library's float function ``name`` (``expf``, ``logf``: the ones XGBoost calls),
    or ``None``."""
    if name not in _LIBM:
        function = None
        for library in ("libm.so.6", None):  # None: wherever the system says it is
            try:
                found = ctypes.CDLL(library or ctypes.util.find_library("m"))
                function = getattr(found, name)
                break
            except (OSError, AttributeError, TypeError):
                continue
        if function is not None:
            function.restype = ctypes.c_float
            function.argtypes = [ctypes.c_float]
        _LIBM[name] = function
    return _LIBM[name]


class _Booster:
    """One booster's trees in an iteration range, its base margin and link."""

    def __init__(self, booster: Any, iteration_range: tuple[int, int]) -> None:
        learner = json.loads(booster.save_config())["learner"]
        params = learner["learner_model_param"]
        objective = learner["objective"]["name"]
        if learner["gradient_booster"]["name"] != "gbtree":
            raise ValueError("not a gbtree booster")
        if int(params.get("num_target", "1")) != 1 or int(params.get("num_class", "0")) > 1:
            raise ValueError("more than one output per row")
        base = np.ravel(json.loads(params["base_score"])).astype(np.float32)
        if len(base) != 1:
            raise ValueError("more than one base score")
        if objective in _IDENTITY:
            self.logistic = False
            self.base = np.float32(base[0])
        elif objective in _LOGISTIC and _libm("expf") is not None and _libm("logf") is not None:
            self.logistic = True
            # common::Logit, in float32: -logf(1.0f / x - 1.0f)
            logf = _libm("logf")
            self.base = np.float32(-logf(float(np.float32(1.0) / base[0] - np.float32(1.0))))
        else:
            raise ValueError(f"objective {objective} is not walked")
        model = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
        indptr = model["iteration_indptr"]
        begin, end = iteration_range
        self.trees: list[dict[str, Any]] = model["trees"][
            indptr[begin] : indptr[end or len(indptr) - 1]
        ]
        if not self.trees or any(int(g) != 0 for g in model["tree_info"]):
            raise ValueError("no trees, or trees of several outputs")
        self.features = int(booster.num_features())


def _deepest(left: np.ndarray, right: np.ndarray) -> int:
    """How many splits lead to the tree's deepest leaf."""
    depth = np.zeros(len(left), dtype=np.intp)
    deepest = 0
    stack = [0]
    while stack:
        i = stack.pop()
        if left[i] == -1:
            deepest = max(deepest, int(depth[i]))
            continue
        for child in (left[i], right[i]):
            depth[child] = depth[i] + 1
            stack.append(int(child))
    return deepest


class XGBoostForest:
    """The trees of several boosters walked at once (see the module docstring).

    The input is one float64 matrix of *slots*: booster ``b``'s feature ``j`` is slot
    ``slots[b][j]``, so boosters reading the same column the same way share its decisions.
    ``predict`` gives one float32 row of predictions per booster, what each booster's
    ``inplace_predict`` gives (its shape ``(n,)``).

    Attributes:
        walk_rows: up to how many rows the walk is cheaper than XGBoost's own call.
    """

    def __init__(self, boosters: Sequence[_Booster], slots: Sequence[Sequence[int]]) -> None:
        self.count = len(boosters)
        self.width = 1 + max((max(s) for s in slots if len(s)), default=0)
        # every node of every tree, numbered: internal nodes first, grouped by slot
        per_tree: list[tuple[int, int, dict[str, Any]]] = []  # booster, position, tree
        for b, booster in enumerate(boosters):
            per_tree.extend((b, t, tree) for t, tree in enumerate(booster.trees))
        internal: list[tuple[int, int, int, int]] = []  # slot, tree, node, split type
        leaves: list[tuple[int, int]] = []  # tree, node
        steps: list[int] = []
        for k, (b, _, tree) in enumerate(per_tree):
            left = np.asarray(tree["left_children"], dtype=np.intp)
            right = np.asarray(tree["right_children"], dtype=np.intp)
            steps.append(_deepest(left, right))
            kinds = tree["split_type"]
            for i, feature in enumerate(tree["split_indices"]):
                if left[i] == -1:
                    leaves.append((k, i))
                else:
                    internal.append((int(slots[b][feature]), k, i, int(kinds[i])))
        internal.sort(key=lambda entry: entry[0])  # stable: tree order within a slot
        number: dict[tuple[int, int], int] = {}
        for at, (_, k, i, _) in enumerate(internal):
            number[(k, i)] = at
        for at, (k, i) in enumerate(leaves, start=len(internal)):
            number[(k, i)] = at
        total = len(internal) + len(leaves)
        self._total = total
        child = np.empty(2 * total, dtype=np.intp)  # doubled: [2i] go right, [2i + 1] go left
        leaf_value = np.zeros(2 * total, dtype=np.float32)
        default_left = np.zeros(len(internal), dtype=bool)
        condition = np.zeros(len(internal), dtype=np.float32)
        sets: list[set[int]] = [set() for _ in internal]
        trees = [tree for _, _, tree in per_tree]
        for at, (_, k, i, _) in enumerate(internal):
            tree = trees[k]
            child[2 * at] = 2 * number[(k, tree["right_children"][i])]
            child[2 * at + 1] = 2 * number[(k, tree["left_children"][i])]
            default_left[at] = bool(tree["default_left"][i])
            condition[at] = np.float32(tree["split_conditions"][i])
        for k, tree in enumerate(trees):
            nodes = tree.get("categories_nodes") or []
            segments = tree.get("categories_segments") or []
            sizes = tree.get("categories_sizes") or []
            values = tree.get("categories") or []
            for node, start, size in zip(nodes, segments, sizes, strict=True):
                sets[number[(k, node)]] = {int(c) for c in values[start : start + size]}
        for k, i in leaves:
            at = number[(k, i)]
            child[2 * at] = child[2 * at + 1] = 2 * at
            leaf_value[2 * at] = np.float32(trees[k]["split_conditions"][i])
        self._child, self._leaf_value = child, leaf_value
        # the groups: (slot, first node, end, numeric thresholds | categorical table)
        self._groups: list[tuple[int, int, int, bool, np.ndarray, np.ndarray]] = []
        start = 0
        while start < len(internal):
            slot = internal[start][0]
            end = start
            while end < len(internal) and internal[end][0] == slot:
                end += 1
            kinds = {internal[j][3] for j in range(start, end)}
            if len(kinds) != 1:
                raise ValueError("a column split both as a number and as a category")
            if kinds == {1}:
                top = 1 + max((max(s) for s in sets[start:end] if s), default=0)
                # rows: category 0..top-1, then any other value (left), then missing
                table = np.ones((top + 2, end - start), dtype=bool)
                for j in range(start, end):
                    for c in sets[j]:
                        table[c, j - start] = False
                table[top + 1] = default_left[start:end]
                self._groups.append((slot, start, end, True, table, default_left[start:end]))
            else:
                self._groups.append(
                    (slot, start, end, False, condition[start:end], default_left[start:end])
                )
            start = end
        # walk order: the deepest trees first; a level moves the trees at least that deep
        order = sorted(range(len(per_tree)), key=lambda k: -steps[k])
        self._roots = np.array([2 * number[(k, 0)] for k in order], dtype=np.intp)
        most = max(steps, default=0)
        self._moving = [sum(1 for k in order if steps[k] > level) for level in range(most)]
        # where each tree's leaf goes in the per-booster sums: [booster, 1 + position]
        self._places = 1 + max(len(booster.trees) for booster in boosters)
        self._place = np.array(
            [per_tree[k][0] * self._places + 1 + per_tree[k][1] for k in order], dtype=np.intp
        )
        self._sums = np.zeros(self.count * self._places, dtype=np.float32)
        self._sums[:: self._places] = [booster.base for booster in boosters]
        self._logistic = np.array([booster.logistic for booster in boosters], dtype=bool)
        self._all_identity = not self._logistic.any()
        further = (len(per_tree) - _TREES_FOR_ONE_ROW) // _TREES_PER_FURTHER_ROW
        self.walk_rows = min(_MOST_ROWS, max(0, 1 + further))

    @classmethod
    def of(
        cls,
        boosters: Sequence[tuple[Any, tuple[int, int]]],
        slots: Sequence[Sequence[int]],
        references: Sequence[RowsPredictor],
    ) -> XGBoostForest | None:
        """The forest of ``boosters`` (each with its iteration range), or ``None`` when one of
        them is not walked (see the module docstring) or the walk does not give its
        ``reference`` predictor's numbers (XGBoost's own) to the last bit on probe rows."""
        try:
            forest = cls([_Booster(b, r) for b, r in boosters], slots)
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if any(len(s) != b.num_features() for (b, _), s in zip(boosters, slots, strict=True)):
            return None
        probe = forest.probe_rows()
        batch = forest.predict(probe)
        single = np.concatenate([forest.predict(probe[i : i + 1]) for i in range(len(probe))], 1)
        for b, reference in enumerate(references):
            expected = np.asarray(reference(probe[:, list(slots[b])]))
            if expected.shape != batch[b].shape or expected.dtype != np.float32:
                return None
            if not (np.array_equal(batch[b], expected) and np.array_equal(single[b], expected)):
                return None
        return forest

    def probe_rows(self, n: int = 16) -> np.ndarray:
        """Rows whose values sit on, just below and just above the thresholds, are
        categories in and out of the sets (and past them, and negative), or are missing
        (seeded: the same rows for the same trees)."""
        rng = np.random.default_rng(0)
        Z = rng.normal(size=(n, self.width))
        for slot, _, _, categorical, values, _ in self._groups:
            if categorical:
                top = len(values) - 2
                choices = np.concatenate([np.arange(top), [-1.0, top, top + 3, np.nan]])
                Z[:, slot] = rng.choice(choices, size=n)
                continue
            thresholds = values[rng.integers(0, len(values), size=n)]
            side = rng.integers(0, 4, size=n)
            Z[:, slot] = np.where(
                side == 0,
                thresholds,
                np.where(
                    side == 1,
                    np.nextafter(thresholds, np.float32(-np.inf)),
                    np.where(side == 2, np.nextafter(thresholds, np.float32(np.inf)), np.nan),
                ),
            )
        return Z

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """Each booster's predictions of ``Z``'s rows: float32, shape (boosters, rows)."""
        n = len(Z)
        total = self._total
        decisions = np.zeros((n, 2 * total), dtype=bool)  # at 2 * node: go left
        for row, into in zip(np.asarray(Z, dtype=np.float32).tolist(), decisions, strict=True):
            for slot, start, end, categorical, values, default_left in self._groups:
                x = row[slot]
                if categorical:  # the table's row: the category, another value, missing
                    top = len(values) - 2
                    if x != x:
                        k = top + 1
                    elif 0 <= x < top:
                        k = int(x)
                    else:
                        k = top
                    into[2 * start : 2 * end : 2] = values[k]
                elif x != x:
                    into[2 * start : 2 * end : 2] = default_left
                else:
                    np.greater(values, np.float32(x), out=into[2 * start : 2 * end : 2])
        child = self._child
        if n == 1:
            at = self._roots.copy()
            first = decisions[0]
            for moving in self._moving:
                part = at[:moving]
                part[:] = child[part + first[part]]
        else:  # trees by rows: tree t of row r at t * n + r
            at = self._roots.repeat(n)
            shift = np.arange(n, dtype=np.intp) * (2 * total)
            shift = np.broadcast_to(shift, (len(self._roots), n)).reshape(-1)
            flat = decisions.reshape(-1)
            for moving in self._moving:
                part = at[: moving * n]
                part[:] = child[part + flat[part + shift[: moving * n]]]
        # each booster's leaves after its base margin, in tree order, added in float32
        # rows of (boosters x places); the trailing zeros add nothing
        sums = self._sums.copy() if n == 1 else np.tile(self._sums, n)
        if n == 1:
            sums[self._place] = self._leaf_value[at]
        else:
            where = self._place[:, None] + np.arange(n, dtype=np.intp) * len(self._sums)
            sums[where.reshape(-1)] = self._leaf_value[at]
        margins = np.add.accumulate(sums.reshape(n * self.count, self._places), axis=1)[:, -1]
        if self._all_identity:
            return margins.reshape(n, self.count).T.copy()
        # common::Sigmoid in float32, with the C library's expf (NumPy's may differ by an ulp)
        x = np.minimum(-margins, np.float32(88.7))
        expf = _libm("expf")
        e = np.array([expf(v) for v in x.tolist()], dtype=np.float32)
        sigmoid = np.float32(1.0) / ((e + np.float32(1.0)) + np.float32(1e-16))
        logistic = self._logistic if n == 1 else np.tile(self._logistic, n)
        out = np.where(logistic, sigmoid, margins)
        return out.reshape(n, self.count).T.copy()
