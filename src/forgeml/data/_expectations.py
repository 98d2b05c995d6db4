"""User expectations from a YAML file, checked with pandera.

The file::

    severity: error              # default for every rule below: error, warning or info
    row_count: {min: 1000, max: 1000000}
    column_set:
      required: [age, income]    # these columns must be present
      # exact: [...]             # or: exactly these columns, in any order
    columns:
      age: {not_null: true, min: 17, max: 90}
      income: {allowed: ["<=50K", ">50K"]}
      native_country: {regex: "^[A-Za-z-]+$", severity: warning}
      fnlwgt: {unique: true, severity: warning}

Each rule becomes a pandera check (``Column(nullable=..., unique=...)``, ``Check.ge``,
``Check.le``, ``Check.isin``, ``Check.str_matches``, a table check for the row count and
``strict`` for an exact column set); the table is validated once, lazily, and every failure case
is traced back to the rule it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from forgeml.data._hash import value_family
from forgeml.data._quality import Severity
from forgeml.errors import InputError

__all__ = [
    "Expectation",
    "ExpectationResult",
    "check_expectations",
    "load_expectations",
]

_COLUMN_RULES = ("not_null", "unique", "min", "max", "allowed", "regex")
_TOP_KEYS = ("severity", "row_count", "column_set", "columns")
_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Expectation:
    """One rule: ``rule`` is ``not_null``, ``unique``, ``min``, ``max``, ``allowed``,
    ``regex``, ``row_count``, ``required_columns`` or ``exact_columns``."""

    rule: str
    column: str | None
    value: Any
    severity: Severity

    @property
    def label(self) -> str:
        """``column: rule`` (or the rule alone for table rules)."""
        return f"{self.column}: {self.rule}" if self.column else self.rule

    def describe(self) -> str:
        """What the rule asks, in words."""
        v = self.value
        if self.rule == "not_null":
            return "no missing values"
        if self.rule == "unique":
            return "no repeated values"
        if self.rule in ("min", "max"):
            return f"{'>=' if self.rule == 'min' else '<='} {v!r}"
        if self.rule == "allowed":
            return f"one of {list(v)!r}"[:120]
        if self.rule == "regex":
            return f"matches {v!r}"
        if self.rule == "row_count":
            bounds = [f"at least {v['min']:,}"] if "min" in v else []
            bounds += [f"at most {v['max']:,}"] if "max" in v else []
            return " and ".join(bounds) + " rows"
        if self.rule == "required_columns":
            return f"columns {', '.join(v)} present"
        return f"exactly the columns {', '.join(v)}"


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    """The outcome of one rule."""

    expectation: Expectation
    passed: bool
    failures: int = 0
    examples: tuple[Any, ...] = ()

    @property
    def message(self) -> str:
        """A plain sentence: what was expected and what was found."""
        e = self.expectation
        if self.passed:
            return f"{e.label}: {e.describe()} (passed)"
        shown = ", ".join(repr(x) for x in self.examples)
        found = f"; e.g. {shown}" if shown else ""
        unit = "value" if e.column else "failure"
        return f"{e.label}: expected {e.describe()}; {self.failures:,} {unit}(s) fail{found}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "rule": self.expectation.rule,
            "column": self.expectation.column,
            "value": self.expectation.value,
            "severity": self.expectation.severity.value,
            "passed": self.passed,
            "failures": self.failures,
            "examples": [str(x) for x in self.examples],
            "message": self.message,
        }


def _severity(value: Any, where: str) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        raise InputError(
            f"{where}: severity must be error, warning or info; got {value!r}"
        ) from None


def load_expectations(source: str | Path | Mapping[str, Any]) -> tuple[Expectation, ...]:
    """Read rules from a YAML file (or an already parsed mapping).

    Raises:
        InputError: the file is missing, is not YAML, or names an unknown rule or bad value.
    """
    if isinstance(source, Mapping):
        document: Any = source
        where = "the expectations"
    else:
        import yaml

        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise InputError(f"No expectations file at {path}")
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where_in = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or type(e).__name__
            raise InputError(f"{path} is not valid YAML{where_in}: {problem}") from e
    if not isinstance(document, Mapping):
        raise InputError(f"{where} must be a YAML mapping with keys {', '.join(_TOP_KEYS)}")
    unknown = sorted(set(map(str, document)) - set(_TOP_KEYS))
    if unknown:
        raise InputError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(_TOP_KEYS)}"
        )
    default = _severity(document.get("severity", "error"), where)
    rules: list[Expectation] = []
    if "row_count" in document:
        bounds = document["row_count"]
        if not isinstance(bounds, Mapping) or not bounds or set(bounds) - {"min", "max"}:
            raise InputError(f"{where}: row_count is a mapping with min and/or max")
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in bounds.values()):
            raise InputError(f"{where}: row_count bounds must be non-negative integers")
        rules.append(Expectation("row_count", None, dict(bounds), default))
    if "column_set" in document:
        spec = document["column_set"]
        if (
            not isinstance(spec, Mapping)
            or len(spec) != 1
            or next(iter(spec))
            not in (
                "required",
                "exact",
            )
        ):
            raise InputError(f"{where}: column_set is {{required: [...]}} or {{exact: [...]}}")
        kind, names = next(iter(spec.items()))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(f"{where}: column_set.{kind} must be a list of column names")
        rules.append(Expectation(f"{kind}_columns", None, tuple(names), default))
    columns = document.get("columns") or {}
    if not isinstance(columns, Mapping):
        raise InputError(f"{where}: columns maps column names to rules")
    for column, spec in columns.items():
        if not isinstance(spec, Mapping):
            raise InputError(f"{where}: the rules of column {column!r} must be a mapping")
        bad = sorted(set(spec) - {*_COLUMN_RULES, "severity"})
        if bad:
            raise InputError(
                f"{where}: unknown rule(s) {', '.join(map(str, bad))} for column {column!r}; "
                f"expected {', '.join(_COLUMN_RULES)}"
            )
        severity = _severity(spec.get("severity", default), f"{where}, column {column!r}")
        for rule in _COLUMN_RULES:
            if rule not in spec:
                continue
            value = spec[rule]
            if rule in ("not_null", "unique"):
                if not isinstance(value, bool):
                    raise InputError(f"{where}: {column}.{rule} must be true or false")
                if not value:
                    continue
            elif rule == "allowed":
                if not isinstance(value, list) or not value:
                    raise InputError(f"{where}: {column}.allowed must be a non-empty list")
                value = tuple(value)
            elif rule == "regex":
                import re

                try:
                    re.compile(str(value))
                except re.error as e:
                    raise InputError(f"{where}: {column}.regex does not compile: {e}") from e
            rules.append(Expectation(rule, str(column), value, severity))
    return tuple(rules)


def _check_applicable(frame: pd.DataFrame, e: Expectation) -> None:
    if e.column is None or e.column not in frame.columns:
        return
    family = value_family(frame[e.column].dtype)
    if e.rule in ("min", "max"):
        if family == "text":
            raise InputError(
                f"Expectation {e.label} needs numbers or dates; column {e.column!r} holds text"
            )
        if family == "number" and (
            isinstance(e.value, bool) or not isinstance(e.value, int | float)
        ):
            raise InputError(f"Expectation {e.label} must be a number; got {e.value!r}")
    if e.rule == "regex" and family != "text":
        raise InputError(f"Expectation {e.label} needs text; column {e.column!r} holds {family}s")


def check_expectations(
    frame: pd.DataFrame, expectations: tuple[Expectation, ...]
) -> tuple[ExpectationResult, ...]:
    """Validate a table against rules with pandera.

    Raises:
        InputError: a rule does not apply to its column (a range on text, a regex on numbers).
    """
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    for e in expectations:
        _check_applicable(frame, e)
    by_column: dict[str, list[Expectation]] = {}
    table_rules: list[Expectation] = []
    for e in expectations:
        if e.column is None:
            table_rules.append(e)
        else:
            by_column.setdefault(e.column, []).append(e)
    required = {n for e in table_rules if e.rule.endswith("_columns") for n in e.value}
    exact = next((e for e in table_rules if e.rule == "exact_columns"), None)

    element_rules: dict[tuple[str, int], Expectation] = {}
    schema_columns: dict[str, Any] = {}
    for column in sorted(set(by_column) | required):
        rules = by_column.get(column, [])
        checks: list[Any] = []
        for e in rules:
            check = _element_check(pa, e, frame[column] if column in frame.columns else None)
            if check is not None:
                element_rules[(column, len(checks))] = e
                checks.append(check)
        schema_columns[column] = pa.Column(
            checks=checks or None,
            nullable=not any(e.rule == "not_null" for e in rules),
            unique=any(e.rule == "unique" for e in rules),
            required=True,
            coerce=False,
        )
    table_checks: list[Any] = []
    row_rule = next((e for e in table_rules if e.rule == "row_count"), None)
    if row_rule is not None:
        low, high = row_rule.value.get("min", 0), row_rule.value.get("max")
        table_checks.append(
            pa.Check(
                lambda df: low <= len(df) and (high is None or len(df) <= high),
                name="row_count",
            )
        )
    schema = pa.DataFrameSchema(
        schema_columns, checks=table_checks or None, strict=exact is not None
    )
    failures: dict[int, list[Any]] = {}

    def fail(e: Expectation, case: Any) -> None:
        failures.setdefault(id(e), []).append(case)

    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        for case in errors.failure_cases.itertuples(index=False):
            column, check = case.column, str(case.check)
            value = case.failure_case
            rules = by_column.get(str(column), []) if column is not None else []
            if check == "not_nullable":
                target = next(e for e in rules if e.rule == "not_null")
                fail(target, None)
            elif check == "field_uniqueness":
                fail(next(e for e in rules if e.rule == "unique"), value)
            elif check == "column_in_dataframe":
                missing = str(value)
                owners = by_column.get(missing, []) + [
                    e for e in table_rules if e.rule.endswith("_columns") and missing in e.value
                ]
                for e in owners:
                    fail(e, f"column {missing!r} is missing")
            elif check == "column_in_schema" and exact is not None:
                fail(exact, f"unexpected column {value!r}")
            elif check == "row_count" and row_rule is not None:
                fail(row_rule, f"{len(frame):,} rows")
            elif column is not None and case.check_number is not None:
                key = (str(column), int(case.check_number))
                if key in element_rules:
                    fail(element_rules[key], value)
    results = []
    for e in expectations:
        cases = failures.get(id(e), [])
        shown: list[Any] = []
        for case in cases:
            if case is not None and case not in shown:
                shown.append(case)
            if len(shown) == _EXAMPLES:
                break
        results.append(ExpectationResult(e, not cases, len(cases), tuple(shown)))
    return tuple(results)


def _element_check(pa: Any, e: Expectation, series: pd.Series | None) -> Any:
    value = e.value
    if series is not None and pd.api.types.is_datetime64_any_dtype(series.dtype):
        value = pd.Timestamp(value) if e.rule in ("min", "max") else value
    if e.rule == "min":
        return pa.Check.ge(value)
    if e.rule == "max":
        return pa.Check.le(value)
    if e.rule == "allowed":
        return pa.Check.isin(list(value))
    if e.rule == "regex":
        return pa.Check.str_matches(str(value))
    return None  # not_null and unique are column properties
