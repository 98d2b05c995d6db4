"""Datasets: versioned, profiled and validated tabular data.

    import forgeml as fm

    v = fm.data.add("adult.csv", name="adult", target="income", sensitive=["sex", "race"])
    v.schema["age"].kind            # ColumnKind.INTEGER
    v.profile["income"].top         # (("<=50K", 37155), (">50K", 11687))
    fm.data.validate("adult@1", expectations="rules.yaml").failed()
    fm.data.diff("adult@1", "adult@2").changed_columns
    fm.data.split("adult", seed=0)  # stratified by income, recorded with the version
    train = fm.data.load("adult", part="train")

A version is identified by the content hash of its table: every column is hashed with pandas'
``hash_pandas_object`` (vectorised, independent of the file format the table came from), and
the table digest is the sha256 of the row count and the column digests. The data is stored as
Parquet in the content-addressed artifact store; schema, profile and quality report are stored
with the version in the metadata store.

Heavy modules (pandas, pandera, matplotlib) load on first use, so ``import forgeml`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from forgeml.data._analyze import infer_schema, profile
    from forgeml.data._api import (
        ValidationReport,
        add,
        diff,
        get,
        list_datasets,
        list_versions,
        load,
        record_split,
        report,
        split,
        split_parts,
        validate,
    )
    from forgeml.data._diff import ColumnDiff, DatasetDiff
    from forgeml.data._expectations import Expectation, ExpectationResult, load_expectations
    from forgeml.data._finite import NON_FINITE_POLICIES, refuse_infinite
    from forgeml.data._leaks import find_leaks, leak_gate, leak_summary
    from forgeml.data._profile import ColumnProfile, Histogram, Profile
    from forgeml.data._quality import Finding, QualityReport, Severity
    from forgeml.data._schema import (
        ColumnKind,
        ColumnSchema,
        Schema,
        bin_values,
        sensitive_values,
    )
    from forgeml.data._version import DatasetVersion, SplitInfo, parse_ref

__all__ = [
    "NON_FINITE_POLICIES",
    "ColumnDiff",
    "ColumnKind",
    "ColumnProfile",
    "ColumnSchema",
    "DatasetDiff",
    "DatasetVersion",
    "Expectation",
    "ExpectationResult",
    "Finding",
    "Histogram",
    "Profile",
    "QualityReport",
    "Schema",
    "Severity",
    "SplitInfo",
    "ValidationReport",
    "add",
    "bin_values",
    "diff",
    "find_leaks",
    "get",
    "infer_schema",
    "leak_gate",
    "leak_summary",
    "list_datasets",
    "list_versions",
    "load",
    "load_expectations",
    "parse_ref",
    "profile",
    "record_split",
    "refuse_infinite",
    "report",
    "sensitive_values",
    "split",
    "split_parts",
    "validate",
]

_HOMES = {
    "_analyze": ("infer_schema", "profile"),
    "_api": (
        "ValidationReport",
        "add",
        "diff",
        "get",
        "list_datasets",
        "list_versions",
        "load",
        "record_split",
        "report",
        "split",
        "split_parts",
        "validate",
    ),
    "_diff": ("ColumnDiff", "DatasetDiff"),
    "_expectations": ("Expectation", "ExpectationResult", "load_expectations"),
    "_finite": ("NON_FINITE_POLICIES", "refuse_infinite"),
    "_leaks": ("find_leaks", "leak_gate", "leak_summary"),
    "_profile": ("ColumnProfile", "Histogram", "Profile"),
    "_quality": ("Finding", "QualityReport", "Severity"),
    "_schema": ("ColumnKind", "ColumnSchema", "Schema", "bin_values", "sensitive_values"),
    "_version": ("DatasetVersion", "SplitInfo", "parse_ref"),
}
__getattr__, _, _ = lazy_loader.attach(
    __name__, submod_attrs={module: list(names) for module, names in _HOMES.items()}
)


def __dir__() -> list[str]:
    return sorted(__all__)
