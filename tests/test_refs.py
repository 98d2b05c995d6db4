"""One parser for NAME@VERSION|ALIAS|latest: round trips (Hypothesis) and clear refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forgeml.data import parse_ref as parse_dataset_ref
from forgeml.errors import InputError
from forgeml.refs import Ref, parse_ref
from forgeml.registry import parse_model_ref

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", fullmatch=True)
aliases = st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True).filter(lambda a: a != "latest")
refs = st.builds(Ref, names, st.none() | st.integers(1, 10**6)) | st.builds(
    lambda n, a: Ref(n, alias=a), names, aliases
)


@given(refs)
def test_a_reference_round_trips_through_its_text(ref):
    assert parse_ref(str(ref)) == ref
    assert parse_model_ref(str(ref)) == (ref.name, ref.selector)
    if ref.alias is None:
        assert parse_dataset_ref(str(ref)) == (ref.name, ref.version)


@given(names)
def test_a_bare_name_is_the_latest_version(name):
    assert parse_ref(name) == Ref(name) == parse_ref(f" {name}@latest ")
    assert parse_ref(name).latest and parse_ref(name).selector == "latest"


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("churn@@1", {}, "A model reference is NAME, NAME@VERSION, NAME@ALIAS or NAME@latest"),
        ("", {}, "A model reference is"),
        (None, {}, "A model reference is"),
        ("bad name@1", {}, "A model name is 1 to 256 letters"),
        ("churn@0", {}, "must be a positive number, an alias"),
        ("churn@Prod", {}, "must be a positive number, an alias"),
        ("churn@", {}, "must be a positive number, an alias"),
        ("adult@production", {"kind": "dataset", "aliases": False}, "positive number or 'latest'"),
        ("adult@x@1", {"kind": "dataset", "aliases": False}, "A dataset reference is NAME, NAME@"),
        ("a" * 129, {"kind": "dataset", "max_name_length": 128}, "A dataset name is 1 to 128"),
    ],
)
def test_bad_references_name_what_was_expected(text, kwargs, message):
    with pytest.raises(InputError, match=message):
        parse_ref(text, **kwargs)


def test_every_interface_uses_the_same_parser():
    from forgeml.serve import ServeOptions

    with pytest.raises(ValueError, match="must be a positive number, an alias"):
        ServeOptions(models=("churn@Prod",))
    assert ServeOptions(models=("churn@production", "other")).models == (
        "churn@production",
        "other",
    )
    with pytest.raises(InputError, match="positive number or 'latest'"):
        parse_dataset_ref("adult@production")


@pytest.mark.parametrize("text", ["churn@99999999999999999999", "churn@2147483648", "churn@²"])
def test_a_version_beyond_the_columns_range_is_bad_input(text):
    with pytest.raises(InputError, match="must be a positive number"):
        parse_ref(text)
    assert parse_ref("churn@2147483647").version == 2147483647
