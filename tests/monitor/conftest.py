from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def bike(shared_dataset) -> pd.DataFrame:
    """The bike sharing hourly table with a parsed date column ``_date`` for selecting months."""
    frame = pd.read_csv(shared_dataset("bike-sharing-hour.csv"))
    return frame


@pytest.fixture(scope="session")
def bike_months(bike) -> dict[tuple[int, int], pd.DataFrame]:
    dates = pd.to_datetime(bike["dteday"])
    return {
        (int(y), int(m)): part.reset_index(drop=True)
        for (y, m), part in bike.groupby([dates.dt.year, dates.dt.month])
    }


@pytest.fixture(scope="session")
def hotel(shared_dataset) -> pd.DataFrame:
    return pd.read_csv(shared_dataset("hotel-bookings.csv.gz"))
