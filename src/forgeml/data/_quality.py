"""Quality checks: findings with a severity and a plain message, read off the profile.

Every check uses the statistics the profiling pass already computed (counts, distinct values,
the most frequent value's share, outliers, parse rates, association with the target), so the
report costs nothing beyond the profile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from forgeml.data._profile import ColumnProfile, Profile
from forgeml.data._schema import ColumnKind, Schema

__all__ = ["Finding", "QualityReport", "Severity", "check_quality", "leakage_findings"]

QUALITY_FORMAT = "forgeml.quality/1"
NEAR_CONSTANT_SHARE = 0.99
HIGH_CARDINALITY = 100
HIGH_MISSING_SHARE = 0.5
LEAKAGE_POWER = 0.98
IMBALANCE_WARNING = 0.05
IMBALANCE_INFO = 0.2
OUTLIER_MAX_SHARE = 0.05
DUPLICATE_ERROR_SHARE = 0.5


class Severity(StrEnum):
    """How serious a finding is. Errors fail ``forgeml data validate``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """2 for errors, 1 for warnings, 0 for information."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding: which check, how serious, about which column (``None``: the table)."""

    check: str
    severity: Severity
    message: str
    column: str | None = None
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "check": self.check,
            "severity": self.severity.value,
            "column": self.column,
            "message": self.message,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The finding described by ``to_dict``'s output."""
        return cls(
            check=str(data["check"]),
            severity=Severity(data["severity"]),
            message=str(data["message"]),
            column=data.get("column"),
            value=data.get("value"),
        )


@dataclass(frozen=True, slots=True)
class QualityReport:
    """The findings of the quality checks, most serious first."""

    findings: tuple[Finding, ...]

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def of(self, severity: Severity | str) -> tuple[Finding, ...]:
        """The findings of one severity."""
        wanted = Severity(severity)
        return tuple(f for f in self.findings if f.severity is wanted)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Error findings."""
        return self.of(Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Warning findings."""
        return self.of(Severity.WARNING)

    def by_check(self, check: str) -> tuple[Finding, ...]:
        """The findings of one check (``"duplicates"``, ``"constant"``, ``"leakage"``...)."""
        return tuple(f for f in self.findings if f.check == check)

    def counts(self) -> dict[str, int]:
        """Findings per severity."""
        return {s.value: len(self.of(s)) for s in Severity}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"format": QUALITY_FORMAT, "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityReport:
        """The report described by ``to_dict``'s output."""
        return cls(tuple(Finding.from_dict(f) for f in data.get("findings") or ()))


def _share(part: int, whole: int) -> str:
    return f"{part:,} of {whole:,} ({100 * part / whole:.1f}%)" if whole else f"{part:,}"


def check_quality(
    schema: Schema,
    profile: Profile,
    *,
    target: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    sensitive: Sequence[str] = (),
) -> QualityReport:
    """Run every quality check on a profiled table.

    Args:
        schema: the table's schema.
        profile: its profile (with ``duplicate_rows`` for the duplicate check).
        target: the target column: missing targets, class imbalance and leakage are checked.
        id_column: the declared identifier (not reported as identifier-like; must be unique).
        time_column: the declared time column (unparseable values are errors).
        sensitive: declared sensitive columns (reported for information).
    """
    findings: list[Finding] = []
    n = profile.n_rows
    if profile.duplicate_rows:
        share = profile.duplicate_rows / n
        severity = Severity.ERROR if share >= DUPLICATE_ERROR_SHARE else Severity.WARNING
        findings.append(
            Finding(
                "duplicates",
                severity,
                f"{_share(profile.duplicate_rows, n)} rows repeat an earlier row",
                value=float(profile.duplicate_rows),
            )
        )
    for column in profile:
        findings.extend(
            _column_findings(
                column,
                schema[column.name].kind,
                n,
                is_target=column.name == target,
                is_id=column.name == id_column,
                is_time=column.name == time_column,
            )
        )
    if target is not None and target in profile:
        findings.extend(_target_findings(profile, target))
        findings.extend(leakage_findings(schema, profile, target=target, id_column=id_column))
    for name in sensitive:
        findings.append(
            Finding(
                "sensitive",
                Severity.INFO,
                f"{name!r} is declared sensitive: it is audited for fairness and kept out of "
                "features unless asked for",
                column=name,
            )
        )
    findings.sort(key=lambda f: (-f.severity.rank, f.check, f.column or ""))
    return QualityReport(tuple(findings))


def _column_findings(
    c: ColumnProfile, kind: ColumnKind, n: int, *, is_target: bool, is_id: bool, is_time: bool
) -> Iterator[Finding]:
    name = c.name
    if c.count == 0:
        yield Finding("missing", Severity.WARNING, f"{name!r} has no values at all", name, 1.0)
        return
    if c.missing and not is_target:
        share = c.missing_share
        severity = Severity.WARNING if share >= HIGH_MISSING_SHARE else Severity.INFO
        yield Finding(
            "missing", severity, f"{name!r} is missing in {_share(c.missing, n)} rows", name, share
        )
    if c.distinct == 1:
        yield Finding(
            "constant",
            Severity.WARNING,
            f"{name!r} has one value ({_top_value(c)}) in every row that has one: it carries "
            "no information",
            name,
            1.0,
        )
    elif c.top_share >= NEAR_CONSTANT_SHARE and not is_target:
        yield Finding(
            "near_constant",
            Severity.INFO,
            f"{name!r} is {_top_value(c)} in {100 * c.top_share:.2f}% of rows",
            name,
            c.top_share,
        )
    if is_id:
        if c.distinct < c.count:
            yield Finding(
                "identifier",
                Severity.WARNING,
                f"the id column {name!r} repeats: {c.distinct:,} distinct values in "
                f"{c.count:,} rows (groups are kept together in splits)",
                name,
            )
    elif kind is ColumnKind.IDENTIFIER and not is_target:
        yield Finding(
            "identifier",
            Severity.INFO,
            f"{name!r} looks like an identifier ({c.distinct:,} distinct values): it is not "
            "used as a feature",
            name,
        )
    if kind is ColumnKind.CATEGORICAL and c.distinct > HIGH_CARDINALITY and not is_target:
        yield Finding(
            "high_cardinality",
            Severity.WARNING,
            f"{name!r} is categorical with {c.distinct:,} distinct values; consider grouping "
            "rare values or treating it as text",
            name,
            float(c.distinct),
        )
    if (
        c.numeric_share is not None
        and 0.0 < c.numeric_share < 1.0
        and kind
        in (
            ColumnKind.CATEGORICAL,
            ColumnKind.TEXT,
            ColumnKind.IDENTIFIER,
        )
    ):
        numbers = c.numeric_share * c.count
        others = c.count - numbers
        if min(numbers, others) >= 1:
            yield Finding(
                "mixed_types",
                Severity.WARNING,
                f"{name!r} mixes numbers ({100 * c.numeric_share:.1f}% of values) with text "
                f"(e.g. {_example_text(c)})",
                name,
                c.numeric_share,
            )
    if kind is ColumnKind.DATETIME and c.unparseable:
        severity = Severity.ERROR if is_time else Severity.WARNING
        yield Finding(
            "unparseable_dates",
            severity,
            f"{_share(c.unparseable, c.count)} values of {name!r} do not parse as dates",
            name,
            float(c.unparseable),
        )
    outlier_share = c.outliers / c.count
    # Outliers are rare by definition: when many values lie beyond the fences the distribution
    # is wide or lumpy (hours worked: most at 40), which the profile already shows.
    if (
        0 < outlier_share <= OUTLIER_MAX_SHARE
        and kind in (ColumnKind.NUMERIC, ColumnKind.INTEGER)
        and not is_target
    ):
        yield Finding(
            "outliers",
            Severity.INFO,
            f"{_share(c.outliers, c.count)} values of {name!r} lie beyond 3 interquartile "
            "ranges from the quartiles",
            name,
            float(c.outliers),
        )


def leakage_findings(
    schema: Schema,
    profile: Profile,
    *,
    target: str,
    id_column: str | None = None,
    rows: str | None = None,
) -> list[Finding]:
    """Columns that alone predict the target almost perfectly (predictive power at least
    ``LEAKAGE_POWER``; identifiers are checked by ``_leaks``).

    Args:
        schema: the table's schema.
        profile: its profile, with the target's association computed.
        target: the target column.
        id_column: the declared identifier.
        rows: the rows the profile was computed on, as the message should say (default: all
            of the profile's rows).
    """
    shown = rows or f"{profile.n_rows:,} rows"
    found = []
    for c in profile:
        if (
            c.name == target
            or c.name == id_column
            or schema[c.name].kind is ColumnKind.IDENTIFIER
            or c.predictive_power is None
            or c.predictive_power < LEAKAGE_POWER
        ):
            continue
        found.append(
            Finding(
                "leakage",
                Severity.ERROR,
                f"{c.name!r} alone predicts the target {target!r} almost perfectly (predictive "
                f"power {c.predictive_power:.3f} on {shown}): it is probably derived from the "
                f"target or known only after it; drop it (--drop {c.name})",
                c.name,
                c.predictive_power,
            )
        )
    return found


def _top_value(c: ColumnProfile) -> str:
    return repr(c.top[0][0]) if c.top else "the same value"


def _example_text(c: ColumnProfile) -> str:
    for value, _ in c.top:
        try:
            float(value)
        except (TypeError, ValueError):
            return repr(value)
    return "a non-numeric value"


def _target_findings(profile: Profile, target: str) -> Iterator[Finding]:
    c = profile[target]
    if c.missing:
        yield Finding(
            "target_missing",
            Severity.ERROR,
            f"the target {target!r} is missing in {_share(c.missing, profile.n_rows)} rows; "
            "drop or label them before training",
            target,
            float(c.missing),
        )
    if profile.task == "classification" and c.top and c.count:
        counts = [count for _, count in c.top]
        if c.distinct > len(counts):  # more classes than listed: the rarest is not shown
            return
        minority = min(counts) / c.count
        if c.distinct < 2:
            yield Finding(
                "class_imbalance",
                Severity.ERROR,
                f"the target {target!r} has a single class",
                target,
                1.0,
            )
            return
        rarest = min(c.top, key=lambda t: t[1])[0]
        if minority < IMBALANCE_WARNING:
            severity = Severity.WARNING
        elif minority < IMBALANCE_INFO:
            severity = Severity.INFO
        else:
            return
        yield Finding(
            "class_imbalance",
            severity,
            f"the target {target!r} is imbalanced: its rarest class {rarest!r} is "
            f"{100 * minority:.1f}% of rows",
            target,
            minority,
        )
