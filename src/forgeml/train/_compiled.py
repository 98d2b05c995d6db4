"""A ``TrainedModel`` compiled for serving: rows as plain column lists in, arrays out.

The general path (``TrainedModel.predict_proba`` on a DataFrame) pays for pandas on every
call, which dominates one-row requests. Compiling does the work once, at load:

- each member's ``TabularEncoder`` becomes a list of per-column functions over plain Python
  values (category lookups in dictionaries, numbers as floats) that fill the float matrix the
  encoder's ``codes`` would give, in ``feature_names_out_`` order;
- each member's estimator becomes a call on that matrix without a DataFrame: LightGBM's
  single-row C API for a few rows (``train._native``; or a predictor the caller injects) and
  its booster for more, XGBoost's prediction C function called directly for a few rows
  (``train._native``) and ``inplace_predict`` for more,
  CatBoost's own predictor, HistGradientBoosting compiled to its trees
  (``compile_hist_gradient_boosting``: its category codes, a NumPy walk of every tree for a
  few rows, scikit-learn's predictor for more), the forests on the ordinal float32 matrix; the
  dense output of linear models and the MLP goes through its fitted column transformer
  compiled to arrays (or, when that does not compile, on a frame of encoded columns); an
  estimator it cannot call directly is given the raw rows as a DataFrame, as
  ``TrainedModel`` does.

The compiled model gives the same numbers as the model it came from; callers still check that on
known rows before trusting it (the server's runner gate does).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeml.train._calibration import apply_calibration
from forgeml.train._native import ROWS, lightgbm_rows, xgboost_forest, xgboost_rows
from forgeml.train._sklearn_compiled import NotCompilable as SklearnNotCompilable
from forgeml.train._sklearn_compiled import (
    compile_forest,
    compile_hist_gradient_boosting,
    compile_transformer,
)
from forgeml.train._xgboost_walk import XGBoostForest

__all__ = [
    "KEPT_CALL",
    "CompiledModel",
    "NotCompilable",
    "compile_encoder",
    "compiled_before",
    "level1_features",
]

Columns = Mapping[str, Sequence[Any]]
MemberCall = Callable[[Columns, int], np.ndarray]
BoosterPredictor = Callable[[Any], Callable[[np.ndarray], np.ndarray] | None]

_SMALL_BATCH = 2_000  # rows: below this, one thread predicts faster than a pool
_TRUE_TEXT = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


class NotCompilable(ValueError):
    """The model holds a part compiling does not handle (the reason is the message)."""


def _missing(value: Any) -> bool:
    return value is None or (value.__class__ is float and value != value) or value is pd.NA


def _number(value: Any) -> float:
    """One value as the encoder's numeric columns read it (missing and non-numbers: NaN)."""
    if value is None:
        return math.nan
    cls = value.__class__
    if cls is float or cls is int or cls is bool:
        return float(value)
    if cls is str:
        lowered = value.lower()
        known = _TRUE_TEXT.get(lowered)
        if known is not None:
            return known
        try:
            return float(value)
        except ValueError:
            return math.nan
    try:
        return math.nan if pd.isna(value) else float(value)
    except (TypeError, ValueError):
        return math.nan


def compile_encoder(encoder: Any) -> tuple[list[str], Callable[[Columns, int], np.ndarray]]:
    """The encoded column names and a function giving ``encoder.codes`` of plain column lists.

    Args:
        encoder: a fitted ``TabularEncoder``.

    Returns:
        ``(names, encode)``: ``encode(columns, n)`` is the float64 matrix (one row per input
        row, one column per name) for ``columns`` (raw column -> list of ``n`` values; a column
        absent from it reads as missing).

    Raises:
        NotCompilable: the encoder's output columns cannot be reproduced.
    """
    parts: list[tuple[str, list[str], Callable[[Sequence[Any]], list[np.ndarray]]]] = []
    # parts that read values parsed once per call for every member (dates, text): by index
    shared_builds: dict[int, Callable[[Sequence[Any], Shared | None], list[np.ndarray]]] = {}
    # the same encoding of one value (its output columns as floats), where there is one
    singles: list[tuple[str, Callable[[Any], list[float]]]] | None = []
    for column in encoder.columns_:
        kind = encoder.kinds.get(column, "numeric")
        if kind == "categorical":
            part, single = _categorical_part(encoder, column)
        elif kind == "datetime":
            part, single = _datetime_part(encoder, column), None
            shared_builds[len(parts)] = _datetime_build(encoder, column)
        elif kind == "text":
            part = (column, [f"{column}__chars", f"{column}__words"], _text_values)
            single = _text_one
            shared_builds[len(parts)] = _shared_text(column)
        else:
            part, single = (column, [column], _numeric_values), _numeric_one
        parts.append(part)
        if single is None:
            singles = None
        elif singles is not None:
            singles.append((column, single))
    names = [name for _, produced, _ in parts for name in produced]
    if names != list(encoder.feature_names_out_):
        raise NotCompilable("the encoder's output columns differ from the compiled ones")
    width = len(names)

    def encode(columns: Columns, n: int) -> np.ndarray:
        if n == 1 and singles is not None:
            # one row: a flat list of floats converted once, not one assignment per column
            row: list[float] = []
            for source, single in singles:
                values = columns.get(source)
                row.extend(single(None if values is None else values[0]))
            return np.array(row, dtype=np.float64).reshape(1, width)
        out = np.empty((n, width), dtype=np.float64)
        shared: Shared | None = getattr(columns, "shared", None)
        j = 0
        for k, (source, _, build) in enumerate(parts):
            values = columns.get(source)
            if values is None:
                values = [None] * n
            together = shared_builds.get(k)
            arrays = build(values) if together is None else together(values, shared)
            for array in arrays:
                out[:, j] = array
                j += 1
        return out

    return names, encode


Shared = dict[tuple[str, str], Any]


class SharedColumns(dict[str, Any]):
    """Plain columns for one prediction call, with what every member's encoder reads the same
    way (``shared``: a date column parsed, a text column's lengths), computed once per call."""

    shared: Shared

    @classmethod
    def of(cls, columns: Columns) -> SharedColumns:
        """``columns`` with a cache (its own when it has one: a call within a call)."""
        if isinstance(columns, SharedColumns):
            return columns
        out = cls(columns)
        out.shared = getattr(columns, "shared", None) or {}
        return out


def _shared_text(column: str) -> Callable[[Sequence[Any], Shared | None], list[np.ndarray]]:
    def text(values: Sequence[Any], shared: Shared | None) -> list[np.ndarray]:
        if shared is None:
            return _text_values(values)
        found = shared.get((column, "text"))
        if found is None:
            found = shared[(column, "text")] = _text_values(values)
        return list(found)

    return text


def _numeric_values(values: Sequence[Any]) -> list[np.ndarray]:
    try:
        return [np.array(values, dtype=np.float64)]  # numbers and None (NaN)
    except (TypeError, ValueError):
        return [np.array([_number(v) for v in values], dtype=np.float64)]


def _numeric_one(value: Any) -> list[float]:
    cls = value.__class__
    if cls is float or cls is int or cls is bool:
        return [float(value)]
    if value is None:
        return [math.nan]
    return [float(_numeric_values([value])[0][0])]


def _text_one(value: Any) -> list[float]:
    text = "" if _missing(value) else str(value)
    return [float(len(text)), float(len(text.split()))]


def _text_values(values: Sequence[Any]) -> list[np.ndarray]:
    texts = ["" if _missing(v) else str(v) for v in values]
    chars = np.array([len(t) for t in texts], dtype=np.float64)
    words = np.array([len(t.split()) for t in texts], dtype=np.float64)
    return [chars, words]


def _categorical_part(
    encoder: Any, column: str
) -> tuple[
    tuple[str, list[str], Callable[[Sequence[Any]], list[np.ndarray]]],
    Callable[[Any], list[float]],
]:
    """The column's part of the encoding, and the same for one value."""
    lookup = {text: float(code) for text, code in encoder._lookup(column).items()}
    rare = encoder.frequencies_.get(column)
    nan = math.nan
    if rare is None:

        def codes(values: Sequence[Any]) -> list[np.ndarray]:
            get = lookup.get
            return [
                np.array(
                    [nan if _missing(v) else get(str(v), nan) for v in values], dtype=np.float64
                )
            ]

        def code(value: Any) -> list[float]:
            return [nan if _missing(value) else lookup.get(str(value), nan)]

        return (column, [column], codes), code
    other = float(len(encoder.categories_[column]))

    def frequency_and_code(value: Any) -> list[float]:
        if _missing(value):
            return [0.0, nan]
        text = str(value)
        code = lookup.get(text)
        if code is None:
            code = other if text in rare else nan
        return [rare.get(text, 0.0), code]

    def codes_and_frequencies(values: Sequence[Any]) -> list[np.ndarray]:
        pairs = [frequency_and_code(v) for v in values]
        return [
            np.array([p[0] for p in pairs], dtype=np.float64),
            np.array([p[1] for p in pairs], dtype=np.float64),
        ]

    return (column, [f"{column}__freq", column], codes_and_frequencies), frequency_and_code


def _datetime_part(
    encoder: Any, column: str
) -> tuple[str, list[str], Callable[[Sequence[Any]], list[np.ndarray]]]:
    build = _datetime_build(encoder, column)

    def dates(values: Sequence[Any]) -> list[np.ndarray]:
        return build(values, None)

    parts = list(encoder.date_parts_[column])
    return column, [f"{column}__{part}" for part in parts], dates


def _datetime_build(
    encoder: Any, column: str
) -> Callable[[Sequence[Any], Shared | None], list[np.ndarray]]:
    """The column's date parts from its values parsed once per call (``shared``)."""
    from forgeml.train import _preprocess

    parts = list(encoder.date_parts_[column])

    def dates(values: Sequence[Any], shared: Shared | None) -> list[np.ndarray]:
        parsed = None if shared is None else shared.get((column, "date"))
        if parsed is None:
            parsed = _preprocess._to_datetime(pd.Series(list(values), dtype=object))
            if shared is not None:
                shared[(column, "date")] = parsed
        out = []
        for part in parts:
            found = None if shared is None else shared.get((column, "part " + part))
            if found is None:
                if part == "ordinal":
                    vals = (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400
                else:
                    vals = getattr(parsed.dt, part)
                found = vals.astype(float).to_numpy()
                if shared is not None:
                    shared[(column, "part " + part)] = found
            out.append(found)
        return out

    return dates


def level1_features(prediction: np.ndarray, task: str) -> np.ndarray:
    """What a level-1 prediction gives a second stacking level, as columns: the positive
    class's probability (binary), every class's probability (multiclass) or the value."""
    if task == "binary":
        return prediction[:, 1:2]
    if task == "multiclass":
        return prediction
    return prediction.reshape(-1, 1)


def member_value(values: np.ndarray, target: Sequence[Any] | None) -> np.ndarray:
    """A regression member's prediction in the target's units: ``target`` is the member's
    ``(transform, shift)`` (``expm1(values + shift)`` after ``log1p``), ``None`` or
    ``("none", 0.0)`` for a member fitted on the target itself."""
    if target is None or target[0] in (None, "none"):
        return values
    if target[0] == "log1p":
        return np.expm1(np.asarray(values, dtype=float) + float(target[1]))
    raise ValueError(f"Unknown target transform {target[0]!r}")


def _in_units(call: MemberCall, target: Sequence[Any] | None) -> MemberCall:
    """``call`` answering in the target's units (``member_value``)."""
    if target is None or target[0] in (None, "none"):
        return call

    def inverted(columns: Columns, n: int) -> np.ndarray:
        return member_value(call(columns, n), target)

    return inverted


def _member_call(
    member: Any,
    task: str,
    booster_predictor: BoosterPredictor | None,
    raw_predict: Callable[[Any, pd.DataFrame, str], np.ndarray],
    walked: _WalkedBoosters | None = None,
) -> tuple[MemberCall, bool]:
    """One member as a function of plain columns, and whether it avoids DataFrames
    (``walked``: XGBoost fold models whose trees are walked together for a few rows)."""
    inputs = getattr(member, "inputs", None)
    if inputs is not None:  # a second stacking level over bags of level-1 fold models
        return _stacked_call(member, task, booster_predictor, raw_predict, walked)
    pipelines = getattr(member, "pipelines", None)
    if pipelines is not None:  # a bag of fold models: their mean
        calls = [_member_call(p, task, booster_predictor, raw_predict, walked) for p in pipelines]
        walked_bag = None if walked is None else walked.bag(pipelines, task)

        def bag(columns: Columns, n: int) -> np.ndarray:
            if walked_bag is not None and n <= walked_bag[0]:
                return walked_bag[1](columns, n)
            # the members summed in order, then divided: np.mean(axis=0)'s arithmetic
            total = np.array(calls[0][0](columns, n), dtype=np.float64)
            for call, _ in calls[1:]:
                total += call(columns, n)
            return total / len(calls)

        return bag, all(direct for _, direct in calls)
    steps = getattr(member, "steps", None)
    if not steps or len(steps) != 2:
        raise NotCompilable("a member is not an (encoder, estimator) pipeline")
    encoder, estimator = steps[0][1], steps[1][1]
    if not hasattr(encoder, "columns_") or not hasattr(encoder, "feature_names_out_"):
        raise NotCompilable("a member's first step is not a fitted TabularEncoder")
    names, encode = compile_encoder(encoder)
    module = type(estimator).__module__
    output = encoder.output

    def shaped(out: np.ndarray) -> np.ndarray:
        # in the estimator's own precision first, as its predict_proba computes it
        out = np.asarray(out)
        if task != "regression" and out.ndim == 1:
            if 0 < len(out) <= 8 and out.dtype == np.float64:  # the same arithmetic, fewer calls
                return np.array([[1.0 - p, p] for p in out.tolist()], dtype=np.float64)
            out = np.column_stack((1.0 - out, out))
        return out.astype(float, copy=False)

    if output == "native" and module.startswith("lightgbm") and hasattr(estimator, "booster_"):
        if list(getattr(estimator, "feature_names_in_", [])) != encoder.model_feature_names():
            raise NotCompilable("a LightGBM member's feature names differ from its encoder's")
        booster = estimator.booster_
        single = (booster_predictor or lightgbm_rows)(booster)

        def lightgbm(columns: Columns, n: int) -> np.ndarray:
            matrix = encode(columns, n)
            if single is not None and n <= ROWS:
                return shaped(single(matrix))
            params = {"num_threads": 1} if n < _SMALL_BATCH else {}
            return shaped(booster.predict(matrix, **params))

        return lightgbm, True
    if output == "native" and module.startswith("xgboost") and hasattr(estimator, "get_booster"):
        part = None if walked is None else walked.part(member)
        return _xgboost_call(estimator, encode, shaped, part), True
    if module.startswith("forgeml.train._catboost") and hasattr(estimator, "model_"):
        return _catboost_call(estimator, encoder, encode, task), True
    if output == "native" and module.startswith("sklearn.ensemble"):
        hist = _hist_gradient_boosting(estimator, encoder)
        if hist is not None:

            def boosted(columns: Columns, n: int) -> np.ndarray:
                return shaped(hist(encode(columns, n)))

            return boosted, True
    if output == "ordinal" and module.startswith("sklearn.ensemble"):
        try:
            forest = compile_forest(estimator, task)
        except SklearnNotCompilable:
            forest = None
        if forest is not None:

            def trees(columns: Columns, n: int) -> np.ndarray:
                return forest(encode(columns, n).astype(np.float32))

            return trees, True
    if output == "ordinal" and hasattr(
        estimator, "predict_proba" if task != "regression" else "predict"
    ):

        def ordinal(columns: Columns, n: int) -> np.ndarray:
            matrix = encode(columns, n).astype(np.float32)
            if task == "regression":
                return np.asarray(estimator.predict(matrix), dtype=float)
            return np.asarray(estimator.predict_proba(matrix), dtype=float)

        return ordinal, True
    if output == "dense":
        dense = encoder.dense_
        try:
            transform = compile_transformer(dense)
            fitted_on = [str(c) for c in getattr(dense, "feature_names_in_", names)]
            order = np.asarray([names.index(c) for c in fitted_on], dtype=np.intp)
        except (SklearnNotCompilable, ValueError):
            transform = None
        if transform is not None:
            same_order = bool(np.array_equal(order, np.arange(len(names))))

            def dense_arrays(columns: Columns, n: int) -> np.ndarray:
                matrix = encode(columns, n)
                matrix = transform(matrix if same_order else matrix[:, order])
                if task == "regression":
                    return np.asarray(estimator.predict(matrix), dtype=float)
                return np.asarray(estimator.predict_proba(matrix), dtype=float)

            return dense_arrays, True

        def dense_call(columns: Columns, n: int) -> np.ndarray:
            frame = pd.DataFrame(encode(columns, n), columns=names)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                matrix = dense.transform(frame)
            if task == "regression":
                return np.asarray(estimator.predict(matrix), dtype=float)
            return np.asarray(estimator.predict_proba(matrix), dtype=float)

        return dense_call, False
    raw_columns = list(encoder.columns_)

    def through_frame(columns: Columns, n: int) -> np.ndarray:
        frame = pd.DataFrame({c: list(columns.get(c, [None] * n)) for c in raw_columns})
        return raw_predict(member, frame, task)

    return through_frame, False


def _hist_gradient_boosting(estimator: Any, encoder: Any) -> Callable[..., np.ndarray] | None:
    """A HistGradientBoosting member compiled to a function of the encoder's code matrix, or
    ``None`` (another estimator, or fitted on other columns than the encoder gives)."""
    if list(getattr(estimator, "feature_names_in_", [])) != encoder.model_feature_names():
        return None
    try:
        return compile_hist_gradient_boosting(estimator)
    except SklearnNotCompilable:
        return None


def _catboost_call(
    estimator: Any, encoder: Any, encode: Callable[[Columns, int], np.ndarray], task: str
) -> MemberCall:
    """CatBoost's own predictor on rows of plain values: categorical columns as integer codes
    (missing: -1), the others as floats, as ``CatBoostModel`` builds its pool."""
    names = [str(c) for c in estimator.feature_names_in_]
    if names != [str(c) for c in encoder.model_feature_names()]:
        raise NotCompilable("a CatBoost member's feature names differ from its encoder's")
    categorical = set(estimator.cat_columns_)
    cat_at = [j for j, c in enumerate(names) if c in categorical]
    model = estimator.model_

    def catboost(columns: Columns, n: int) -> np.ndarray:
        matrix = encode(columns, n)
        rows: list[list[Any]] = matrix.tolist()
        for row in rows:
            for j in cat_at:
                value = row[j]
                row[j] = -1 if value != value else int(value)
        if task == "regression":
            return np.asarray(model.predict(rows, thread_count=1), dtype=float)
        return np.asarray(model.predict_proba(rows, thread_count=1), dtype=float)

    return catboost


def _stacked_call(
    member: Any,
    task: str,
    booster_predictor: BoosterPredictor | None,
    raw_predict: Callable[[Any, pd.DataFrame, str], np.ndarray],
    walked: _WalkedBoosters | None = None,
) -> tuple[MemberCall, bool]:
    """A ``StackedBag``: its level-1 bags called on the columns, their predictions added as
    the level-2 models' extra columns, the level-2 bags weighted."""
    base = [
        (_kept_call(b, task) if booster_predictor is None else None)
        or _member_call(b, task, booster_predictor, raw_predict, walked)
        for b in member.inputs
    ]
    top = [_member_call(m, task, booster_predictor, raw_predict) for m in member.members]
    # regression inputs and members fitted on log1p of the target answer in its units
    input_targets = getattr(member, "input_targets", None) or [None] * len(base)
    member_targets = getattr(member, "member_targets", None) or [None] * len(top)
    base = [(_in_units(c, t), d) for (c, d), t in zip(base, input_targets, strict=True)]
    top = [(_in_units(c, t), d) for (c, d), t in zip(top, member_targets, strict=True)]
    names = list(member.columns)
    weights = [float(w) for w in member.weights]

    def stacked(columns: Columns, n: int) -> np.ndarray:
        values = np.hstack([level1_features(call(columns, n), task) for call, _ in base])
        augmented = SharedColumns(columns)  # the raw columns' shared parses stay shared
        augmented.shared = SharedColumns.of(columns).shared
        for j, name in enumerate(names):
            augmented[name] = values[:, j]
        total: np.ndarray | None = None
        for weight, (call, _) in zip(weights, top, strict=True):
            part = weight * call(augmented, n)
            total = part if total is None else total + part
        assert total is not None
        return total

    return stacked, all(direct for _, direct in base + top)


def _iterations(estimator: Any) -> tuple[int, int]:
    """The iteration range an XGBoost estimator predicts with (up to its best iteration)."""
    try:
        return (0, int(estimator.best_iteration) + 1)
    except AttributeError:  # no early stopping: every tree
        return (0, 0)


def _one_thread(estimator: Any) -> Any:
    one_thread = estimator.get_booster().copy()
    one_thread.set_param({"nthread": 1})
    return one_thread


def _xgboost_call(
    estimator: Any,
    encode: Callable[[Columns, int], np.ndarray],
    shaped: Callable[..., Any],
    walked: tuple[Any, int, Callable[[Columns, int], np.ndarray]] | None = None,
) -> MemberCall:
    booster = estimator.get_booster()
    iterations = _iterations(estimator)
    if walked is not None:  # (its one-thread booster, rows walked, its walked predictions)
        one_thread, walk_rows, walk = walked
        few = xgboost_rows(one_thread, iterations, walk=False)
    else:
        one_thread, walk_rows = _one_thread(estimator), 0
        few = xgboost_rows(one_thread, iterations)

    def xgboost(columns: Columns, n: int) -> np.ndarray:
        if n <= walk_rows:
            return shaped(walk(columns, n))
        matrix = encode(columns, n)
        if few is not None and n <= ROWS:
            return shaped(few(matrix))
        chosen = one_thread if n < _SMALL_BATCH else booster
        return shaped(chosen.inplace_predict(matrix, iteration_range=iterations))

    return xgboost


# Where a bag (``FoldBag``) keeps its compiled call, with the task it was built for: built for
# a model of that bag alone (its XGBoost fold models walked by themselves), it serves every
# model that holds the same bag without being built again (an XGBoost bag's walk, checked
# against XGBoost on its probe rows, took 1.5 s for five fold models on california-housing).
# It lives as long as the bag: ``FoldBag.__getstate__`` leaves it out.
KEPT_CALL = "_compiled_call"


def _kept_call(member: Any, task: str) -> tuple[MemberCall, bool] | None:
    """The call (and whether it avoids DataFrames) ``member`` keeps for ``task``, or ``None``."""
    kept = getattr(member, "__dict__", {}).get(KEPT_CALL)
    if kept is None or kept[0] != task:
        return None
    return kept[1], kept[2]


def _keep_call(member: Any, task: str, call: tuple[MemberCall, bool]) -> None:
    """Keeps ``call`` on ``member`` when it is a bag of fold models (``FoldBag``)."""
    if getattr(member, "pipelines", None) is not None and getattr(member, "inputs", None) is None:
        member.__dict__[KEPT_CALL] = (task, *call)


def compiled_before(member: Any, task: str) -> bool:
    """Whether ``member`` keeps a compiled call for ``task``: a model holding it does not build
    it again (its first call costs a call, not a build)."""
    return _kept_call(member, task) is not None


class CompiledModel:
    """A ``TrainedModel`` as functions of plain column lists (see the module docstring).

    Args:
        model: the trained model.
        raw_predict: how the model calls one member on a DataFrame (``train._model``'s), for
            the members compiling does not call directly.
        booster_predictor: given a LightGBM booster, its predictor of a few rows (a
            function returning ``None``: ``Booster.predict``); LightGBM's single-row API
            (``train._native``) by default.

    Attributes:
        direct: every member runs without building a DataFrame.

    Raises:
        NotCompilable: a member is not an (encoder, estimator) pipeline.
    """

    def __init__(
        self,
        model: Any,
        *,
        raw_predict: Callable[[Any, pd.DataFrame, str], np.ndarray],
        booster_predictor: BoosterPredictor | None = None,
    ) -> None:
        self.task = model.task
        self.threshold = model.threshold
        self.target_transform = getattr(model, "target_transform", None)
        self.target_shift = float(getattr(model, "target_shift", 0.0))
        self.calibration = getattr(model, "calibration", None)
        self.classes_ = getattr(model, "classes_", None)
        # a bag's call built before (for a model of that bag alone) is taken as it is, its
        # checks already passed; the others are built, their XGBoost fold models walked together
        kept = [
            _kept_call(m, model.task) if booster_predictor is None else None for m in model.members
        ]
        walked = _WalkedBoosters.of(
            [m for m, k in zip(model.members, kept, strict=True) if k is None],
            model.task if booster_predictor is None else None,
        )
        members = [
            k
            if k is not None
            else _member_call(m, model.task, booster_predictor, raw_predict, walked)
            for m, k in zip(model.members, kept, strict=True)
        ]
        if booster_predictor is None and len(members) == 1 and kept[0] is None:
            _keep_call(model.members[0], model.task, members[0])
        targets = getattr(model, "member_targets", None) or [None] * len(members)
        self._members = [
            _in_units(call, target) for (call, _), target in zip(members, targets, strict=True)
        ]
        self._weights = [float(w) for w in model.weights]
        self.direct = all(direct for _, direct in members)

    def combined(self, columns: Columns, n: int) -> np.ndarray:
        """The members' weighted sum (class probabilities before normalising, or values)."""
        total: np.ndarray | None = None
        columns = SharedColumns.of(columns)
        for weight, call in zip(self._weights, self._members, strict=True):
            part = weight * call(columns, n)
            total = part if total is None else total + part
        assert total is not None
        return total

    def predict_both(self, columns: Columns, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """What ``TrainedModel.predict_with_proba`` gives for the same rows: predictions and,
        for classifiers, class probabilities."""
        total = self.combined(columns, n)
        if self.task == "regression":
            if self.target_transform == "log1p":
                return np.expm1(total + self.target_shift), None
            return total, None
        proba = apply_calibration(total / total.sum(axis=1, keepdims=True), self.calibration)
        if self.threshold is not None and proba.shape[1] == 2:
            codes = (proba[:, 1] >= self.threshold).astype(int)
        else:
            codes = np.argmax(proba, axis=1)
        assert self.classes_ is not None
        return self.classes_[codes], proba


def _is_xgboost_pipeline(pipeline: Any) -> bool:
    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2:
        return False
    encoder, estimator = steps[0][1], steps[1][1]
    return (
        getattr(encoder, "output", None) == "native"
        and hasattr(encoder, "feature_names_out_")
        and type(estimator).__module__.startswith("xgboost")
        and hasattr(estimator, "get_booster")
    )


def _encoded_keys(encoder: Any) -> list[tuple[Any, ...]]:
    """One key per encoded column: equal keys are equal encodings of the same raw column
    (a number; categories with the same codes), whichever fitted encoder made them."""
    keys: list[tuple[Any, ...]] = []
    for column in encoder.columns_:
        kind = encoder.kinds.get(column, "numeric")
        if kind == "categorical" and encoder.frequencies_.get(column) is None:
            keys.append(("category", column, tuple(sorted(encoder._lookup(column).items()))))
        elif kind not in ("categorical", "datetime", "text"):
            keys.append(("number", column))
        else:  # this encoder's own: rare categories' frequencies, date parts, text lengths
            count = len(encoder.date_parts_[column]) if kind == "datetime" else 2
            keys.extend(("own", id(encoder), column, i) for i in range(count))
    return keys


class _WalkedBoosters:
    """The XGBoost fold models of a model's members (and of a second level's level-1 bags),
    their trees walked at once for a few rows (``train._xgboost_walk``; one C call per fold
    model costs several times more). The walk reads one matrix: the columns of the fold
    models' encoders, each column that several of them encode the same way (numbers,
    categories with the same codes) once; it is computed once per call and kept in the
    call's ``SharedColumns``."""

    def __init__(
        self,
        pipelines: list[Any],
        boosters: list[Any],
        encoders: list[Callable[[Columns, int], np.ndarray]],
        forest: XGBoostForest,
    ) -> None:
        self._index = {id(p): b for b, p in enumerate(pipelines)}
        self._boosters = boosters
        self._encoders = encoders
        self._forest = forest
        self._key = ("xgboost walk", str(id(self)))

    @classmethod
    def of(cls, members: Sequence[Any], kept: str | None = None) -> _WalkedBoosters | None:
        """The walk of ``members``' XGBoost fold models, or ``None`` (none, or not walked);
        with ``kept`` (a task), not those of bags that keep a call for it (``_kept_call``)."""
        pipelines: list[Any] = []
        for member in members:
            for bag in [*getattr(member, "inputs", []), member]:
                if kept is not None and _kept_call(bag, kept) is not None:
                    continue
                for pipeline in getattr(bag, "pipelines", None) or [bag]:
                    if _is_xgboost_pipeline(pipeline) and all(pipeline is not p for p in pipelines):
                        pipelines.append(pipeline)
        if not pipelines:
            return None
        position: dict[tuple[Any, ...], int] = {}
        encoders: list[Callable[[Columns, int], np.ndarray]] = []
        slots: list[list[int]] = []
        width = 0
        try:
            for pipeline in pipelines:
                encoder = pipeline.steps[0][1]
                keys = _encoded_keys(encoder)
                names, encode = compile_encoder(encoder)
                if len(keys) != len(names):
                    return None
                if any(key not in position for key in keys):  # this encoder is read
                    for j, key in enumerate(keys):
                        position.setdefault(key, width + j)
                    encoders.append(encode)
                    width += len(keys)
                slots.append([position[key] for key in keys])
        except (NotCompilable, AttributeError, KeyError):
            return None
        estimators = [p.steps[1][1] for p in pipelines]
        boosters = [_one_thread(e) for e in estimators]
        forest = xgboost_forest(
            [(b, _iterations(e)) for b, e in zip(boosters, estimators, strict=True)], slots
        )
        if forest is None or forest.walk_rows == 0:
            return None
        return cls(pipelines, boosters, encoders, forest)

    def outputs(self, columns: Columns, n: int) -> np.ndarray:
        """Every walked fold model's predictions of the rows (float32, one row each)."""
        shared: Shared | None = getattr(columns, "shared", None)
        if shared is not None:
            found = shared.get(self._key)
            if found is not None:
                return found  # type: ignore[no-any-return]
        matrices = [encode(columns, n) for encode in self._encoders]
        out = self._forest.predict(matrices[0] if len(matrices) == 1 else np.hstack(matrices))
        if shared is not None:
            shared[self._key] = out
        return out

    def bag(
        self, pipelines: Sequence[Any], task: str
    ) -> tuple[int, Callable[[Columns, int], np.ndarray]] | None:
        """A bag whose fold models are all walked: up to how many rows, and the mean of
        their predictions shaped as each fold model's call shapes it (``1 - p, p`` in float32
        for a binary classifier), added in fold order in float64 as the bag adds them."""
        at = [self._index.get(id(p)) for p in pipelines]
        if task not in ("binary", "regression") or not at or None in at:
            return None
        rows = np.array(at, dtype=np.intp)
        k = len(rows)

        def mean(columns: Columns, n: int) -> np.ndarray:
            p = self.outputs(columns, n)[rows]  # (fold models, rows), float32
            if task == "regression":
                values = p.astype(np.float64)
            else:
                pairs = np.empty((k, n, 2), dtype=np.float32)
                pairs[:, :, 0] = 1.0 - p
                pairs[:, :, 1] = p
                values = pairs.astype(np.float64)
            return np.add.accumulate(values, axis=0)[-1] / k

        return self._forest.walk_rows, mean

    def part(self, pipeline: Any) -> tuple[Any, int, Callable[[Columns, int], np.ndarray]] | None:
        """For one walked fold model: its one-thread booster, up to how many rows it is
        walked, and its walked predictions; ``None`` for a pipeline not walked."""
        b = self._index.get(id(pipeline))
        if b is None:
            return None

        def walked(columns: Columns, n: int) -> np.ndarray:
            return self.outputs(columns, n)[b]

        return self._boosters[b], self._forest.walk_rows, walked
