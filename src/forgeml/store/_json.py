"""How the stores write JSON documents: NumPy, pandas and decimal values included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

__all__ = ["dumps_json"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _json_default(value: Any) -> Any:
    """Values orjson leaves to the caller: object arrays, NumPy scalars, pandas' missing values."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps_json(value: Any) -> str:
    """``value`` as compact JSON text.

    Raises:
        TypeError: a value has no JSON form.
    """
    return orjson.dumps(value, default=_json_default, option=_OPTIONS).decode()
