"""``TrainConfig``: everything that decides what a training does, as one serialisable value.

A pipeline step or a retraining policy stores this (``to_json``) and trains again from it
(``fm.train(data, config)``); the run records it as ``train_config.json``. Only what shapes the
result lives here: where to record (workspace), who acts, and whether to draw progress are
arguments of the call, not configuration.

To add an option: add a field with its default and description; give it a validator when a
type is not enough. Unknown keys are refused, so a stored config never silently loses one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from forgeml._json import dumps_text, loads
from forgeml.errors import InputError

# Settings that take one of a few words.
_CHOICES = {
    "target_transform": ("auto", "none", "log1p"),
    "validation": ("auto", "cv", "holdout"),
}

__all__ = ["TrainConfig"]

_TASKS = ("auto", "binary", "multiclass", "regression")


class TrainConfig(BaseModel):
    """What to train and how. Frozen; ``replace(**changes)`` gives a changed copy.

    Example::

        config = fm.TrainConfig(target="y", time_budget=120, models=("lgbm", "xgb"))
        result = fm.train("bank", config)
        TrainConfig.from_json(config.to_json()) == config   # True
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    target: str | None = Field(
        default=None, description="The column to predict (default: the dataset's target)."
    )
    task: str = Field(default="auto", description="auto, binary, multiclass or regression.")
    metric: str | None = Field(
        default=None, description="The metric to optimise (default: by task)."
    )
    time_budget: float = Field(default=60.0, description="Seconds for the whole training.")
    models: tuple[str, ...] | None = Field(
        default=None, description="Model families to search (default: all)."
    )
    seed: int = Field(default=0, description="Seeds the hold-out, folds, search and models.")
    n_jobs: int = Field(default=-1, description="Threads per model (-1: all cores).")
    memory_limit: int | None = Field(
        default=None,
        description="Bytes the training may hold (a size such as 2GB or 512MB is read): "
        "configurations predicted to exceed it are shrunk (fewer or smaller trees, fewer "
        "leaves) or skipped (default: no limit).",
    )
    parallel_trials: int | None = Field(
        default=None,
        description="Trials run at once, sharing the n_jobs threads (default: by the table's "
        "size, one per core when a fit runs on one thread anyway; 1: one at a time).",
    )
    time_column: str | None = Field(
        default=None, description="Order rows by this column (latest rows held out)."
    )
    column_kinds: dict[str, str] = Field(
        default_factory=dict, description="Known column kinds; others are inferred."
    )
    test_size: float = Field(default=0.2, description="Share of rows held out for the test.")
    split: str | None = Field(
        default=None,
        description="A split recorded with the dataset version: train on its train part, "
        "test on its test part (instead of drawing a hold-out).",
    )
    max_trials: int | None = Field(
        default=None, description="Run exactly this many trials (the deterministic mode)."
    )
    evaluate: bool = Field(
        default=False, description="Evaluate on the held-out rows in the same run."
    )
    target_transform: str = Field(
        default="auto",
        description="Regression: auto (log1p when the target is never negative and skewed, "
        "and validation prefers it), none or log1p.",
    )
    validation: str = Field(
        default="auto",
        description="How trials are scored: cv (k-fold cross-validation), holdout (one "
        "validation split, as large tables on a short budget need) or auto (holdout for "
        "regression tables large for the budget, cv otherwise).",
    )
    bagging: bool = Field(
        default=True,
        description="Ensemble members are the averages of their cross-validation fold "
        "models (bagged, scored out of fold), with a second stacking level when the time "
        "allows; False refits each member on all rows (as do time-ordered folds).",
    )
    drop: tuple[str, ...] = Field(default=(), description="Columns to leave out.")
    sensitive: tuple[str, ...] | None = Field(
        default=None,
        description="Sensitive columns (default: the dataset's): audited for fairness, not "
        "model inputs unless use_sensitive.",
    )
    use_sensitive: bool = Field(default=False, description="Let sensitive columns be inputs.")
    allow_leaks: bool = Field(
        default=False,
        description="Train although the leak gate found columns that give the target away.",
    )
    warm_start: tuple[dict[str, Any], ...] = Field(
        default=(),
        description="Configurations tried before any other, each {'model': family, 'params': "
        "{...}} as in a leaderboard (a retraining starts from the champion's best).",
    )
    max_latency_ms: float | None = Field(
        default=10.0,
        description="The returned model answers one row (predict_proba, or predict for a "
        "regressor, on a one-row DataFrame; median of 10 calls) within this many "
        "milliseconds: slower ensemble members are dropped or a faster model is chosen, and "
        "the run notes what that cost in score. None: no bound.",
    )
    portfolio: int = Field(
        default=8,
        description="Before the Bayesian search, after each family's starting point, try this "
        "many configurations of the shipped zero-shot portfolio for the task and table size "
        "(0: off).",
    )
    experiment: str | None = Field(
        default=None, description="The experiment of the run (default: train)."
    )
    run_name: str | None = Field(
        default=None, description="The run's name (default: what ran, e.g. 'train bank y')."
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise _input_error(e) from None

    # -- validation --------------------------------------------------------------------------

    @field_validator(
        "time_budget",
        "test_size",
        "seed",
        "n_jobs",
        "max_trials",
        "max_latency_ms",
        "parallel_trials",
        "portfolio",
        mode="before",
    )
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"must be a number, not {value!r}")
        return value

    @field_validator("task")
    @classmethod
    def _task(cls, value: str) -> str:
        if value not in _TASKS:
            raise ValueError(f"task must be one of {', '.join(_TASKS)}; got {value!r}")
        return value

    @field_validator("time_budget")
    @classmethod
    def _budget(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"time_budget must be a positive number of seconds; got {value}")
        return float(value)

    @field_validator("max_latency_ms")
    @classmethod
    def _latency(cls, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise ValueError(
                f"max_latency_ms must be a positive number of milliseconds; got {value}"
            )
        return None if value is None else float(value)

    @field_validator("test_size")
    @classmethod
    def _test_size(cls, value: float) -> float:
        if not 0 < value <= 0.5:
            raise ValueError(f"test_size must be above 0 and at most 0.5; got {value}")
        return float(value)

    @field_validator("n_jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(f"n_jobs must be -1 (all cores) or at least 1; got {value}")
        return value

    @field_validator("max_trials")
    @classmethod
    def _trials(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"max_trials must be at least 1; got {value}")
        return value

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int | None:
        from forgeml.train._memory import parse_memory

        return None if value is None else parse_memory(value)

    @field_validator("parallel_trials")
    @classmethod
    def _parallel(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"parallel_trials must be at least 1; got {value}")
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"seed must be a non-negative integer; got {value}")
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [m.strip() for m in value.split(",") if m.strip()]
        if value is not None and len(value) == 0:
            raise ValueError("models must name at least one model family")
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        from forgeml.train._zoo import FAMILIES, OPTIONAL, available_families

        unknown = [m for m in value if m not in FAMILIES]
        if unknown:
            raise ValueError(
                f"Unknown model family {unknown[0]!r}; known families: {', '.join(FAMILIES)}"
            )
        missing = [m for m in value if m not in available_families()]
        if missing:
            raise ValueError(
                f"Model family {missing[0]!r} needs the {OPTIONAL[missing[0]]!r} package, which "
                f"is not installed: pip install 'forgeml[{OPTIONAL[missing[0]]}]'"
            )
        return tuple(dict.fromkeys(value))

    @field_validator(*_CHOICES)
    @classmethod
    def _one_of(cls, value: str, info: ValidationInfo) -> str:
        allowed = _CHOICES[str(info.field_name)]
        if value not in allowed:
            raise ValueError(
                f"{info.field_name} must be {', '.join(allowed[:-1])} or {allowed[-1]}; "
                f"got {value!r}"
            )
        return value

    @field_validator("drop", "sensitive", mode="before")
    @classmethod
    def _drop(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(c.strip() for c in value.split(",") if c.strip())
        return value

    @field_validator("portfolio")
    @classmethod
    def _portfolio(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"portfolio must be 0 (off) or more; got {value}")
        return value

    @field_validator("warm_start")
    @classmethod
    def _warm(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        from forgeml.train._zoo import FAMILIES

        for i, item in enumerate(value):
            if set(item) - {"model", "params"} or not isinstance(item.get("params", {}), dict):
                raise ValueError(
                    f"warm_start[{i}] is {{'model': family, 'params': {{...}}}}; got {item!r:.80}"
                )
            if item.get("model") not in FAMILIES:
                raise ValueError(
                    f"warm_start[{i}] names model family {item.get('model')!r}; known "
                    f"families: {', '.join(FAMILIES)}"
                )
        return value

    @field_validator("split", "run_name", "experiment", "target", "time_column")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    # -- building and serialising ----------------------------------------------------------

    @classmethod
    def build(cls, values: Mapping[str, Any]) -> TrainConfig:
        """A config from plain values, every error an ``InputError`` naming the field.

        Raises:
            InputError: an unknown field or a value that does not fit its field.
        """
        if not isinstance(values, Mapping):
            raise InputError(f"A TrainConfig is built from a mapping; got {type(values).__name__}")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as e:
            raise _input_error(e) from None

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes`` applied.

        Raises:
            InputError: a change names an unknown field or does not fit its field.
        """
        return TrainConfig.build({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples as lists)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """The config ``to_dict`` gave (see ``build`` for errors)."""
        return cls.build(values)

    def to_json(self) -> str:
        """The config as a JSON object."""
        return dumps_text(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> TrainConfig:
        """The config ``to_json`` gave.

        Raises:
            InputError: not JSON, or a field that does not fit.
        """
        try:
            values = loads(text)
        except ValueError as e:
            raise InputError(f"A TrainConfig is a JSON object; the text is not JSON: {e}") from None
        return cls.build(values)


def _input_error(error: ValidationError) -> InputError:
    problem = error.errors()[0]
    field = ".".join(str(p) for p in problem["loc"]) or "config"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if message.startswith("TrainConfig"):  # a validator's own InputError names its field
        return InputError(message)
    if problem["type"] == "extra_forbidden":
        known = ", ".join(TrainConfig.model_fields)
        return InputError(f"TrainConfig has no field {field!r}; its fields are {known}")
    given = problem.get("input")
    own = problem["type"] == "value_error"  # our validators name the value themselves
    shown = "" if own or isinstance(given, Mapping) else f"; got {given!r}"
    return InputError(f"TrainConfig.{field}: {message}{shown}")
