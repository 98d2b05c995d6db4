"""HistGradientBoosting's trees walked at once in NumPy, for a few rows, with its numbers.

scikit-learn's predictor walks one tree per call (a few microseconds of set-up each), and a
walk that moves every tree one level per NumPy step pays a dozen steps per level: its trees
grow leaf by leaf, 20 levels deep and more (adult's 99 trees of 31 leaves: 22 levels, 0.55 ms
a row). ``HGBForest`` does the work in two parts, as ``train._xgboost_walk`` does:

- every split's decision for the rows is computed first, all splits at once: a numeric split
  is ``x <= threshold`` in float64 (a missing value: the split's missing way), a categorical
  one a row of a table made when the forest is made (the category in the split's left set:
  left; another known category: right; a missing, negative or unknown one: the missing way,
  as scikit-learn's ``_predict_one_from_raw_data``);
- then each node's next node is chosen for each row (left or right; a leaf is its own), and
  every tree moves one level per NumPy step, the deepest trees first, so that a level moves
  only the trees at least that deep.

The leaves are added to the baseline in the model's order in float64, as its
``_raw_predict`` adds them. It reads the model's *preprocessed* rows (categories as its own
ordinal codes, categorical columns first). ``HGBForest.of`` keeps it only when it gives the
raw predictions of scikit-learn's predictor to the last bit on rows made to sit on, just
below and just above every threshold, on every known category, on unknown and negative ones
and on missing values, a batch at once and a row at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["HGBForest"]


def _depths(left: np.ndarray, right: np.ndarray, leaf: np.ndarray) -> int:
    """How many splits lead to the tree's deepest leaf."""
    depth = np.zeros(len(left), dtype=np.intp)
    deepest = 0
    stack = [0]
    while stack:
        i = stack.pop()
        if leaf[i]:
            deepest = max(deepest, int(depth[i]))
            continue
        for child in (int(left[i]), int(right[i])):
            depth[child] = depth[i] + 1
            stack.append(child)
    return deepest


def _bits(bitsets: np.ndarray) -> np.ndarray:
    """Bitsets of 8 x 32 bits as rows of 256 booleans (bit ``c``: value ``c``)."""
    as_bytes = np.ascontiguousarray(bitsets, dtype="<u4").view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little").astype(bool)


class HGBForest:
    """The trees of a fitted HistGradientBoosting model walked at once (module docstring).

    Args:
        predictors: the model's ``_predictors`` (per iteration, one tree per output).
        known_bitsets, feature_map: its bin mapper's ``make_known_categories_bitsets()``.
        baseline: its ``_baseline_prediction``.
        outputs: its ``n_trees_per_iteration_``.
    """

    def __init__(
        self,
        predictors: Sequence[Sequence[Any]],
        known_bitsets: np.ndarray,
        feature_map: np.ndarray,
        baseline: np.ndarray,
        outputs: int,
    ) -> None:
        trees = [(k, tree) for per_iteration in predictors for k, tree in enumerate(per_iteration)]
        if not trees or any(k >= outputs for k, _ in trees):
            raise ValueError("no trees, or more outputs than the model predicts")
        sizes = np.array([len(tree.nodes) for _, tree in trees], dtype=np.intp)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate([tree.nodes for _, tree in trees])
        total = len(nodes)
        leaf = nodes["is_leaf"].astype(bool)
        categorical = nodes["is_categorical"].astype(bool) & ~leaf
        numeric = ~leaf & ~categorical
        # every node numbered again: the numeric splits, the categorical ones, then the leaves
        # (so that the rows' next nodes are three arrays put end to end)
        renumbered = np.concatenate(
            [np.flatnonzero(numeric), np.flatnonzero(categorical), np.flatnonzero(leaf)]
        )
        number = np.empty(total, dtype=np.intp)
        number[renumbered] = np.arange(total, dtype=np.intp)
        shift = np.repeat(starts, sizes)
        left = number[nodes["left"].astype(np.intp) + shift][renumbered]
        right = number[nodes["right"].astype(np.intp) + shift][renumbered]
        nodes = nodes[renumbered]
        feature = nodes["feature_idx"].astype(np.intp)
        missing_left = nodes["missing_go_to_left"].astype(bool)
        splits = int(numeric.sum())
        self._splits = splits
        self._categorical_end = splits + int(categorical.sum())
        inner = slice(0, self._categorical_end)
        self._left, self._right = left[inner], right[inner]
        self._leaves = np.arange(self._categorical_end, total, dtype=np.intp)  # each its own
        self._total = total
        self._leaf_value = nodes["value"].astype(np.float64)
        # numeric splits: their columns, thresholds and missing ways
        self._numeric_feature = feature[:splits]
        self._threshold = nodes["num_threshold"][:splits].astype(np.float64)
        self._numeric_missing = missing_left[:splits]
        # categorical splits: one row per split, one column per code, the last for missing
        at = slice(splits, self._categorical_end)
        self._categorical_feature = feature[at]
        known = _bits(np.asarray(known_bitsets, dtype=np.uint32))  # (features, 256)
        mapped = np.asarray(feature_map, dtype=np.intp)[self._categorical_feature]
        used = known[mapped] if len(mapped) else np.zeros((0, 256), dtype=bool)
        self.codes = codes = int(np.flatnonzero(used.any(axis=0)).max() + 1) if used.any() else 0
        raw_bitsets = [np.asarray(tree.raw_left_cat_bitsets, dtype=np.uint32) for _, tree in trees]
        bitset_start = np.concatenate([[0], np.cumsum([len(b) for b in raw_bitsets])[:-1]])
        bitset_at = nodes["bitset_idx"].astype(np.intp) + np.repeat(bitset_start, sizes)[renumbered]
        if len(mapped):
            in_left = _bits(np.concatenate(raw_bitsets))[bitset_at[at]]
            missing = missing_left[at, None]
            # in the left set: left; another known category: right; else the missing way
            table = np.where(in_left, True, np.where(used, False, missing))[:, :codes]
            table = np.hstack([table, missing])
        else:
            table = np.zeros((0, codes + 1), dtype=bool)
        self._table = np.ascontiguousarray(table).reshape(-1)
        self._table_row = np.arange(len(mapped), dtype=np.intp) * (codes + 1)
        # walk order: the deepest trees first; a level moves the trees at least that deep
        steps = [
            _depths(tree.nodes["left"], tree.nodes["right"], tree.nodes["is_leaf"].astype(bool))
            for _, tree in trees
        ]
        order = sorted(range(len(trees)), key=lambda t: -steps[t])
        self._roots = number[starts[order]]
        self._moving = [sum(1 for t in order if steps[t] > level) for level in range(max(steps))]
        # where each tree's leaf goes in the sums: [output, 1 + its position among the output's]
        positions: list[int] = []
        seen = [0] * outputs
        for k, _ in trees:
            seen[k] += 1
            positions.append(seen[k])
        self._places = 1 + max(seen)
        self._place = np.array(
            [trees[t][0] * self._places + positions[t] for t in order], dtype=np.intp
        )
        self.outputs = outputs
        self._sums = np.zeros(outputs * self._places, dtype=np.float64)
        self._sums[:: self._places] = np.asarray(baseline, dtype=np.float64).reshape(-1)
        self.trees = len(trees)
        self._thresholds_by_feature = {
            int(f): self._threshold[self._numeric_feature == f]
            for f in np.unique(self._numeric_feature)
        }

    @classmethod
    def of(
        cls,
        model: Any,
        known_bitsets: np.ndarray,
        feature_map: np.ndarray,
        reference: Callable[[np.ndarray], np.ndarray],
    ) -> HGBForest | None:
        """The forest of ``model``'s trees, or ``None`` when its walk does not give
        ``reference``'s raw predictions (scikit-learn's predictor, tree by tree, of the
        preprocessed rows) to the last bit on probe rows, in a batch and row by row."""
        try:
            forest = cls(
                model._predictors,
                known_bitsets,
                feature_map,
                np.asarray(model._baseline_prediction),
                int(model.n_trees_per_iteration_),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None
        probe = forest.probe_rows(int(model.n_features_in_))
        expected = np.asarray(reference(probe))
        batch = forest.raw(probe)
        single = np.concatenate([forest.raw(probe[i : i + 1]) for i in range(len(probe))])
        if expected.shape != batch.shape or expected.dtype != batch.dtype:
            return None
        if not (np.array_equal(batch, expected) and np.array_equal(single, expected)):
            return None
        return forest

    def probe_rows(self, width: int, n: int = 48) -> np.ndarray:
        """Preprocessed rows of ``width`` columns whose numbers sit on, just below and just
        above the split thresholds or are missing, and whose categories are known, unknown,
        negative or missing (seeded: the same rows for the same trees)."""
        rng = np.random.default_rng(0)
        Z = rng.normal(size=(n, width))
        categorical = set(self._categorical_feature.tolist())
        for j in range(width):
            if j in categorical:
                choices = np.concatenate(
                    [np.arange(self.codes + 1, dtype=np.float64), [-1.0, np.nan]]
                )
                Z[:, j] = rng.choice(choices, size=n)
                continue
            thresholds = self._thresholds_by_feature.get(j)
            if thresholds is None:
                continue
            at = thresholds[rng.integers(0, len(thresholds), size=n)]
            side = rng.integers(0, 4, size=n)
            below, above = np.nextafter(at, -np.inf), np.nextafter(at, np.inf)
            Z[:, j] = np.where(
                side == 0, at, np.where(side == 1, below, np.where(side == 2, above, np.nan))
            )
        return Z

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The raw predictions (baseline plus leaf values, float64, shape (rows, outputs),
        Fortran order as the model's own) of the preprocessed rows ``X``."""
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        total = self._total
        # each split's next node for each row, then the leaves' (themselves)
        x = X.take(self._numeric_feature, axis=1)
        go_left = x <= self._threshold  # a missing value compares false
        absent = np.isnan(x)
        if absent.any():
            go_left |= absent & self._numeric_missing
        numeric = np.where(go_left, self._left[: self._splits], self._right[: self._splits])
        x = X.take(self._categorical_feature, axis=1)
        code = np.where(np.isnan(x) | (x < 0) | (x >= self.codes), self.codes, x)
        go_left = self._table[code.astype(np.intp) + self._table_row]
        categorical = np.where(go_left, self._left[self._splits :], self._right[self._splits :])
        if n == 1:
            following = np.concatenate([numeric[0], categorical[0], self._leaves])
            at = self._roots.copy()
            for moving in self._moving:
                part = at[:moving]
                part[:] = following[part]
            sums = self._sums.copy()
            sums[self._place] = self._leaf_value[at]
        else:  # rows one after the other; trees by rows: tree t of row r at t * n + r
            offsets = np.arange(n, dtype=np.intp) * total
            leaves = np.broadcast_to(self._leaves, (n, len(self._leaves)))
            following = np.hstack([numeric, categorical, leaves]) + offsets[:, None]
            following = following.reshape(-1)
            at = (self._roots[:, None] + offsets).reshape(-1)
            for moving in self._moving:
                part = at[: moving * n]
                part[:] = following[part]
            sums = np.tile(self._sums, n)
            where = self._place[:, None] + np.arange(n, dtype=np.intp) * len(self._sums)
            sums[where.reshape(-1)] = self._leaf_value[at % total]
        # the baseline, then each tree's value in the model's order, added one by one
        added = np.add.accumulate(sums.reshape(n * self.outputs, self._places), axis=1)[:, -1]
        out = np.empty((n, self.outputs), dtype=np.float64, order="F")
        out[:] = added.reshape(n, self.outputs)
        return out
