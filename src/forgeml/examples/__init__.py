"""Real datasets that ship with forgeml for the quickstart and the examples.

``adult.csv.gz``: UCI Adult (Kohavi & Becker, 1994 census extract; Kohavi 1996), CC BY 4.0,
48,842 rows, target ``income`` (``>50K`` 23.9%), train and test concatenated with a ``split``
column, missing values written as empty fields.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["adult_path", "load_adult"]


def adult_path() -> Path:
    """The path of the shipped ``adult.csv.gz``."""
    return Path(str(resources.files(__package__).joinpath("adult.csv.gz")))


def load_adult() -> pd.DataFrame:
    """UCI Adult as a DataFrame (48,842 rows x 16 columns)."""
    return pd.read_csv(adult_path())
