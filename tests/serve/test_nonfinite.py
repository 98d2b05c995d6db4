"""The one non-finite policy, at the server's check: an infinity is refused with 422 naming the
column; NaN is a missing value (accepted where the model saw missing values, refused elsewhere)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from forgeml.registry._signature import infer_signature
from forgeml.serve import Rows
from forgeml.serve._types import RequestError
from forgeml.serve._validate import Validator


@pytest.fixture(scope="module")
def housing(shared_dataset) -> pd.DataFrame:
    frame = pd.read_csv(shared_dataset("california-housing.csv"), nrows=500)
    frame.loc[frame.index[:20], "total_bedrooms"] = float("nan")  # a column that may be missing
    return frame.drop(columns=["median_house_value"])


def _rows(frame: pd.DataFrame, **changes: object) -> Rows:
    columns = {c: frame[c].head(3).tolist() for c in frame.columns}
    for column, value in changes.items():
        columns[column][1] = value
    return Rows(columns=columns, n=3)


@pytest.mark.parametrize("value", [math.inf, -math.inf, "inf", "-Infinity", "1e999"])
def test_an_infinity_is_refused_naming_the_column(housing, value) -> None:
    validator = Validator(infer_signature(housing))
    for column in ("median_income", "total_bedrooms"):
        with pytest.raises(RequestError) as caught:
            validator.check(_rows(housing, **{column: value}))
        assert (caught.value.status, caught.value.field) == (422, column)
        assert "row 1" in caught.value.message and "finite" in caught.value.message


def test_nan_is_missing_where_the_model_saw_missing_values(housing) -> None:
    validator = Validator(infer_signature(housing))
    checked = validator.check(_rows(housing, total_bedrooms=math.nan))
    assert checked["total_bedrooms"][1] is None  # missing, logged as missing
    with pytest.raises(RequestError) as caught:
        validator.check(_rows(housing, median_income=math.nan))
    assert (caught.value.status, caught.value.field) == (422, "median_income")
