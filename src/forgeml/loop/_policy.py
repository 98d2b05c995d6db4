"""``LoopPolicy``: what a model's retraining loop watches, how it retrains, what a challenger
must pass and how it is rolled out. One YAML file per model, validated in full before the loop
acts: unknown fields are refused and every error names its field
(``LoopPolicy.triggers.drift.share: ...``).

Example (every section but ``model`` is optional; these are the defaults where one exists)::

    model: elec2
    champion: production          # the alias the loop improves
    schedule: "*/10 * * * *"      # how often `forgeml loop watch` runs a pass (cron)
    seed: 0
    triggers:                     # any one firing starts a retraining
      performance: {drop: 0.05, window_rows: 200}   # true metric below the champion's by 0.05
      drift: {share: 0.3, window_rows: 1000}         # share of drifted columns (forgeml.monitor)
      schedule: "0 3 * * 0"       # also retrain every Sunday at 03:00
      new_labels: 300             # also retrain after this many new labelled rows
    recipe:
      dataset: null               # reference data (default: the champion's training dataset)
      window: {kind: recency_weighted, half_life_days: 14}   # or all | last_rows | last_days
      eval_rows: 200              # most recent labelled rows: the comparison window
      refit: true                 # a passing challenger is refit with the comparison window
    budget: {time_budget: 30, max_trials: 1, warm_start: true}
    gates:
      metric: {margin: 0.0, tolerance: 0.02, confidence: 0.95}
      fairness: {max_disparity_increase: 0.05}
      latency_ms: null            # mean ms per predicted row on the comparison window
      max_size_mb: null
      data_quality: {min_rows: 100, max_missing_share: 0.5}
    rollout:
      mode: canary                # canary | shadow | direct
      share: 10                   # percent of requests (canary) or shadowed (shadow)
      min_requests: 200
      min_labelled: 100
      window_minutes: 0
      rollback: {max_error_rate_increase: 0.01, max_latency_ratio: 2.0, min_latency_increase_ms: 5,
                 max_metric_drop: 0.02}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgeml._json import dumps_text
from forgeml.errors import InputError

__all__ = [
    "Budget",
    "DataQualityGate",
    "DriftTrigger",
    "FairnessGate",
    "Gates",
    "LoopPolicy",
    "MetricGate",
    "PerformanceTrigger",
    "Recipe",
    "Rollback",
    "Rollout",
    "Triggers",
    "Window",
    "check_cron",
    "load_policy",
]


def check_cron(value: str) -> str:
    """``value`` if it is a five-field cron expression croniter accepts.

    Raises:
        ValueError: it is not.
    """
    from croniter import croniter

    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"must be a five-field cron expression like '0 3 * * *'; got {value!r}")
    return value


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


def _positive(value: float, what: str = "must be positive") -> float:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what}; got {value!r}")
    return value


class DriftTrigger(_Part):
    """Fires when the recent inputs drifted from the champion's reference sample."""

    share: float | None = Field(
        default=0.3, description="Fire when at least this share of columns drifted."
    )
    multivariate_auc: float | None = Field(
        default=None, description="Fire when the domain classifier's AUC reaches this."
    )
    window_rows: int = Field(default=1000, description="The most recent logged rows compared.")

    @field_validator("share")
    @classmethod
    def _share(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v <= 1:
            raise ValueError(f"must be above 0 and at most 1; got {v}")
        return v

    @field_validator("multivariate_auc")
    @classmethod
    def _auc(cls, v: float | None) -> float | None:
        if v is not None and not 0.5 < v <= 1:
            raise ValueError(f"must be above 0.5 and at most 1; got {v}")
        return v

    @field_validator("window_rows")
    @classmethod
    def _rows(cls, v: int) -> int:
        if v < 20:
            raise ValueError(f"must be at least 20; got {v}")
        return v


class PerformanceTrigger(_Part):
    """Fires when the served model's metric fell below its baseline by ``drop``.

    The baseline is what the champion scored on the loop's comparison window when it was
    chosen (rows it had not trained on); for a champion the loop did not choose, its first
    live window of ``window_rows`` labelled rows. The live value is computed on the most
    recent ``window_rows`` labelled rows it answered (``estimated``: on the most recent rows
    with or without labels, from the model's own confidence; its baseline is always the first
    live window, as the estimate and the metric are not on one scale).
    """

    metric: str | None = Field(default=None, description="Default: the champion's metric.")
    drop: float = Field(default=0.05, description="How far below the baseline fires.")
    window_rows: int = Field(default=200, description="Labelled rows the live value is on.")
    estimated: bool = Field(
        default=False,
        description="Use the confidence-based estimate (no labels needed; classification).",
    )

    @field_validator("drop")
    @classmethod
    def _drop(cls, v: float) -> float:
        return _positive(v)

    @field_validator("window_rows")
    @classmethod
    def _rows(cls, v: int) -> int:
        if v < 20:
            raise ValueError(f"must be at least 20; got {v}")
        return v


class Triggers(_Part):
    """What starts a retraining (any one that fires)."""

    performance: PerformanceTrigger | None = Field(default_factory=PerformanceTrigger)
    drift: DriftTrigger | None = None
    schedule: str | None = Field(default=None, description="A cron schedule of retrainings.")
    new_labels: int | None = Field(
        default=300,
        description="Retrain after this many new labelled rows (default: as many as a "
        "retraining needs, data_quality.min_rows plus recipe.eval_rows by default).",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        return None if v is None else check_cron(v)

    @field_validator("new_labels")
    @classmethod
    def _labels(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be at least 1; got {v}")
        return v

    @model_validator(mode="after")
    def _one(self) -> Triggers:
        if not (self.performance or self.drift or self.schedule or self.new_labels):
            raise ValueError("name at least one trigger: performance, drift, schedule, new_labels")
        return self


class Window(_Part):
    """Which reference and labelled rows a retraining learns from.

    The default favours recent rows (``recency_weighted``, half-life 14 days): a loop retrains
    because the data changed, so the newest rows say most about what comes next. Rows answered
    more than ten half-lives before the newest logged request (kept with a probability under
    0.1%) are not read.
    """

    kind: Literal["all", "last_rows", "last_days", "recency_weighted"] = "recency_weighted"
    rows: int | None = Field(default=None, description="last_rows: how many.")
    days: float | None = Field(default=None, description="last_days: how many days.")
    half_life_days: float | None = Field(
        default=14.0, description="recency_weighted: a row this many days old counts half."
    )

    @model_validator(mode="after")
    def _needs(self) -> Window:
        need = {"last_rows": "rows", "last_days": "days", "recency_weighted": "half_life_days"}
        field = need.get(self.kind)
        if field is not None and getattr(self, field) is None:
            raise ValueError(f"window kind {self.kind!r} needs '{field}'")
        for name in ("rows", "days", "half_life_days"):
            value = getattr(self, name)
            if value is not None:
                _positive(value, f"window '{name}' must be positive")
        return self


class Recipe(_Part):
    """How a challenger is trained: the champion's recipe on this data."""

    dataset: str | None = Field(
        default=None, description="Reference dataset (default: the champion's training data)."
    )
    window: Window = Field(default_factory=Window)
    time_column: str | None = Field(
        default=None, description="Orders rows for windows (default: the dataset's time role)."
    )
    eval_rows: int = Field(
        default=200, description="The most recent labelled rows, held out to compare on."
    )
    refit: bool = Field(
        default=True,
        description="Refit a challenger that passed every gate on its rows plus the comparison "
        "window (its best configuration, one trial), so the newest rows are not lost to it; "
        "the refit is what the rollout serves and compares live.",
    )

    @field_validator("eval_rows")
    @classmethod
    def _eval(cls, v: int) -> int:
        if v < 20:
            raise ValueError(f"must be at least 20; got {v}")
        return v


class Budget(_Part):
    """What a retraining may spend."""

    time_budget: float = Field(default=30.0, description="Seconds of training.")
    max_trials: int | None = Field(
        default=1,
        description="A fixed number of trials (by default one: the champion's best "
        "configuration on the new data, a fraction of the first training's cost); null: as "
        "many as time_budget allows, the champion's best configurations first.",
    )
    warm_start: bool = Field(
        default=True, description="Try the champion's best configurations first."
    )
    min_hours_between: float = Field(
        default=0.0, description="Do not retrain again sooner than this."
    )

    @field_validator("time_budget")
    @classmethod
    def _budget(cls, v: float) -> float:
        return _positive(v)

    @field_validator("max_trials")
    @classmethod
    def _trials(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be at least 1; got {v}")
        return v

    @field_validator("min_hours_between")
    @classmethod
    def _gap(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"must be zero or more hours; got {v}")
        return v


class MetricGate(_Part):
    """The challenger must beat the champion by ``margin`` on the comparison window: the lower
    end of the bootstrap interval of (challenger - champion) must reach it (for a metric where
    lower is better, the difference is taken the other way round).

    When the champion has measurably decayed (the retraining was started by the performance
    trigger, which measured its live metric ``drop`` below its baseline, or by the drift
    trigger, or the champion scores below its baseline on the comparison window itself),
    keeping it is no longer the safe default, and a non-inferiority test decides instead:
    the challenger passes when its lead reaches ``margin`` and the interval's lower end
    reaches ``margin - tolerance`` (at the interval's confidence, it is worse by less than
    ``tolerance``). ``tolerance: 0`` keeps the superiority rule in every case.
    """

    metric: str | None = Field(default=None, description="Default: the champion's metric.")
    margin: float = Field(default=0.0, description="Required lead, in the metric's units.")
    tolerance: float = Field(
        default=0.02,
        description="After a measured decay: how much worse the challenger may be, at most, "
        "with the interval's confidence (its lead must still be 0 or more).",
    )
    confidence: float = Field(default=0.95, description="Of the bootstrap interval.")
    n_bootstrap: int = Field(default=1000, description="Bootstrap replicates.")

    @field_validator("confidence")
    @classmethod
    def _conf(cls, v: float) -> float:
        if not 0.5 <= v < 1:
            raise ValueError(f"must be at least 0.5 and below 1; got {v}")
        return v

    @field_validator("n_bootstrap")
    @classmethod
    def _boot(cls, v: int) -> int:
        if v < 100:
            raise ValueError(f"must be at least 100; got {v}")
        return v

    @field_validator("margin")
    @classmethod
    def _margin(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number; got {v}")
        return v

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"must be zero or more; got {v}")
        return v


class FairnessGate(_Part):
    """The challenger's largest between-group gap may exceed the champion's by at most this."""

    max_disparity_increase: float = 0.05

    @field_validator("max_disparity_increase")
    @classmethod
    def _inc(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"must be zero or more; got {v}")
        return v


class DataQualityGate(_Part):
    """Checks on the newly labelled rows before they are trained on."""

    min_rows: int = Field(default=100, description="New labelled rows needed to retrain.")
    max_missing_share: float = Field(
        default=0.5, description="Largest share of missing values in any input column."
    )

    @field_validator("max_missing_share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError(f"must be between 0 and 1; got {v}")
        return v

    @field_validator("min_rows")
    @classmethod
    def _rows(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must be zero or more; got {v}")
        return v


class Gates(_Part):
    """What a challenger must pass before it serves any traffic."""

    metric: MetricGate = Field(default_factory=MetricGate)
    fairness: FairnessGate | None = Field(default_factory=FairnessGate)
    latency_ms: float | None = Field(
        default=None, description="Largest mean milliseconds per predicted row."
    )
    max_size_mb: float | None = Field(default=None, description="Largest bundle size.")
    data_quality: DataQualityGate = Field(default_factory=DataQualityGate)

    @field_validator("latency_ms", "max_size_mb")
    @classmethod
    def _pos(cls, v: float | None) -> float | None:
        return None if v is None else _positive(v)


class Rollback(_Part):
    """When a candidate in rollout is rolled back: it does worse than the champion live."""

    max_error_rate_increase: float = Field(default=0.01, description="Failed-request share.")
    max_latency_ratio: float = Field(
        default=2.0, description="Median request latency vs the champion's."
    )
    min_latency_increase_ms: float = Field(
        default=5.0,
        description="A latency rollback also needs the median to be this many ms above the "
        "champion's (below it, a ratio is timer noise of no consequence to callers).",
    )
    max_metric_drop: float = Field(default=0.02, description="Live metric on labelled rows.")

    @field_validator("max_error_rate_increase", "max_metric_drop", "min_latency_increase_ms")
    @classmethod
    def _nonneg(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"must be zero or more; got {v}")
        return v

    @field_validator("max_latency_ratio")
    @classmethod
    def _ratio(cls, v: float) -> float:
        if not math.isfinite(v) or v < 1:
            raise ValueError(f"must be at least 1; got {v}")
        return v


class Rollout(_Part):
    """How a passing challenger reaches production."""

    mode: Literal["canary", "shadow", "direct"] = Field(
        default="canary",
        description="canary: a share of requests; shadow: a copy of a share of requests; "
        "direct: promoted at once (no live comparison).",
    )
    share: float = Field(default=10.0, description="Percent of requests.")
    min_requests: int = Field(default=200, description="Candidate requests before deciding.")
    min_labelled: int = Field(default=100, description="Candidate labelled rows before deciding.")
    window_minutes: float = Field(default=0.0, description="Least time in rollout.")
    rollback: Rollback = Field(default_factory=Rollback)

    @field_validator("share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0 < v < 100:
            raise ValueError(f"must be above 0 and below 100 (percent); got {v}")
        return v

    @field_validator("min_requests", "min_labelled")
    @classmethod
    def _count(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be at least 1; got {v}")
        return v

    @field_validator("window_minutes")
    @classmethod
    def _minutes(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"must be zero or more minutes; got {v}")
        return v


class LoopPolicy(_Part):
    """A model's retraining policy (see the module docstring for the file format)."""

    model: str = Field(description="The registered model the loop improves.")
    champion: str = Field(default="production", description="The alias it improves.")
    schedule: str = Field(default="*/10 * * * *", description="How often `loop watch` runs.")
    seed: int = Field(default=0, description="Seeds training, bootstrap intervals and samples.")
    triggers: Triggers = Field(default_factory=Triggers)
    recipe: Recipe = Field(default_factory=Recipe)
    budget: Budget = Field(default_factory=Budget)
    gates: Gates = Field(default_factory=Gates)
    rollout: Rollout = Field(default_factory=Rollout)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise _input_error(e) from None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v)

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if isinstance(v, bool) or v < 0:
            raise ValueError(f"must be a non-negative integer; got {v!r}")
        return v

    @field_validator("model", "champion")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("champion")
    @classmethod
    def _not_candidate(cls, v: str) -> str:
        if v == "candidate":
            raise ValueError("'candidate' is the alias the loop gives challengers in rollout")
        return v

    @classmethod
    def build(cls, values: Mapping[str, Any]) -> LoopPolicy:
        """A policy from plain values; every error an ``InputError`` naming the field."""
        if not isinstance(values, Mapping):
            raise InputError(f"A loop policy is a mapping; got {type(values).__name__}")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as e:
            raise _input_error(e) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """The policy as a JSON object (sorted keys: equal policies, equal text)."""
        return dumps_text(self.to_dict(), sort_keys=True)


def load_policy(path: str | Path) -> LoopPolicy:
    """Read a policy from a YAML file.

    Raises:
        InputError: no such file, not YAML, or a field that does not fit (the message names
            the file and the field).
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise InputError(f"No loop policy file at {file}")
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InputError(f"{file}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(values, Mapping):
        raise InputError(f"{file}: a loop policy is a mapping of fields; got {values!r:.60}")
    try:
        return LoopPolicy.build(values)
    except InputError as e:
        raise InputError(f"{file}: {e.message}") from None


def _input_error(error: ValidationError) -> InputError:
    problem = error.errors()[0]
    raised = (problem.get("ctx") or {}).get("error")
    if isinstance(raised, InputError):  # already worded (pydantic calls our __init__ too)
        return raised
    field = ".".join(str(p) for p in problem["loc"] if not isinstance(p, int))
    message = str(problem["msg"]).removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        parent, _, name = field.rpartition(".")
        return InputError(
            f"LoopPolicy{'.' + parent if parent else ''} has no field {name!r}{_known(parent)}"
        )
    given = problem.get("input")
    own = problem["type"] == "value_error"
    shown = "" if own or isinstance(given, Mapping) else f"; got {given!r}"
    where = f"LoopPolicy.{field}" if field else "LoopPolicy"
    return InputError(f"{where}: {message}{shown}")


def _known(parent: str) -> str:
    model: type[BaseModel] = LoopPolicy
    for part in [p for p in parent.split(".") if p]:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        found = None
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found = candidate
        if found is None:
            return ""
        model = found
    return f"; its fields are {', '.join(model.model_fields)}"
