"""Schema inference and profile statistics, checked against pandas and NumPy on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml import data
from forgeml.data import ColumnKind, Schema


def test_kinds_are_inferred_from_values(compas):
    schema = data.infer_schema(compas)
    assert schema["id"].kind is ColumnKind.IDENTIFIER  # unique integers named id
    assert schema["c_case_number"].kind is ColumnKind.IDENTIFIER  # unique codes
    assert schema["compas_screening_date"].kind is ColumnKind.DATETIME  # dates kept as text
    assert schema["age"].kind is ColumnKind.INTEGER
    assert schema["race"].kind is ColumnKind.CATEGORICAL
    assert set(schema["race"].categories) == set(compas["race"].unique())
    assert schema["days_b_screening_arrest"].nullable
    assert not schema["age"].nullable
    assert (schema["age"].min, schema["age"].max) == (compas["age"].min(), compas["age"].max())
    frame = pd.DataFrame(
        {
            "flag": [True, False] * 30,
            "ratio": np.linspace(0, 1, 60),
            "note": [f"free text number {i} with words" for i in range(60)],
        }
    )
    kinds = {c.name: c.kind for c in data.infer_schema(frame)}
    assert kinds == {
        "flag": ColumnKind.BOOLEAN,
        "ratio": ColumnKind.NUMERIC,
        "note": ColumnKind.TEXT,
    }


def test_schema_round_trips_through_json(compas):
    schema = data.infer_schema(compas)
    assert Schema.from_dict(schema.to_dict()) == schema


def test_type_override_is_stored_and_marked(ws, compas):
    version = data.add(compas, name="compas", types={"priors_count": "categorical"}, workspace=ws)
    column = version.schema["priors_count"]
    assert column.kind is ColumnKind.CATEGORICAL and column.overridden
    assert not version.schema["age"].overridden


def test_profile_statistics_match_pandas(compas):
    profile = data.profile(compas, target="two_year_recid")
    for name in ("age", "priors_count", "days_b_screening_arrest", "decile_score"):
        column, values = profile[name], compas[name]
        assert column.count == values.count()
        assert column.missing == values.isna().sum()
        assert column.distinct == values.nunique()
        assert column.mean == pytest.approx(values.mean())
        assert column.std == pytest.approx(values.std())
        present = values.dropna().to_numpy(dtype=float)
        for key, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95)):
            assert column.quantiles[key] == pytest.approx(np.quantile(present, q))
        assert sum(column.histogram.counts) == column.count
        expected, _ = np.histogram(present, bins=np.array(column.histogram.edges))
        assert list(column.histogram.counts) == list(expected)
    race = profile["race"]
    counts = compas["race"].value_counts()
    assert race.top[0] == (counts.index[0], counts.iloc[0])
    assert dict(race.top) == {k: v for k, v in counts.items() if k in dict(race.top)}
    assert race.top_share == pytest.approx(counts.iloc[0] / len(compas))


def test_association_ranks_label_derived_columns_first(compas, bike):
    profile = data.profile(compas, target="two_year_recid")
    assert profile.task == "classification"
    strongest = max((c for c in profile if c.association is not None), key=lambda c: c.association)
    # is_recid and r_* columns are written after the outcome (README): they leak the label
    assert strongest.name == "is_recid" or strongest.name.startswith("r_")
    assert profile["sex"].association < 0.2
    regression = data.profile(bike, target="cnt")
    assert regression.task == "regression"
    assert regression["registered"].association > regression["windspeed"].association


def test_profile_round_trips_through_json(compas):
    profile = data.profile(compas, target="two_year_recid")
    assert data.Profile.from_dict(profile.to_dict()).to_dict() == profile.to_dict()


def test_profile_is_stored_with_the_version(ws, compas):
    version = data.add(compas, name="compas", target="two_year_recid", workspace=ws)
    stored = data.get("compas", workspace=ws).profile
    assert stored is not None and stored.n_rows == len(compas)
    assert stored["age"].digest is not None
    assert stored.to_dict()["columns"] == version.profile.to_dict()["columns"]
