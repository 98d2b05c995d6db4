"""forgeml's one JSON policy, for everything it writes as JSON: stored documents, bundles,
reports, server answers and ``--json`` output.

- NaN and infinities are written as ``null``: JSON has no token for them (Python's ``json``
  writes ``NaN``, which most parsers refuse). Where the difference matters, the writer keeps
  it beside the value (the run store records ``is_nan``); ``finite`` applies the same rule to
  a Python structure before it leaves forgeml as a dict.
- NumPy arrays and scalars are written as their values, pandas' missing values (``NA``,
  ``NaT``) as ``null``; dates and times as ISO 8601 text; ``Decimal`` as a number; paths and
  enums as their text; an object with ``to_dict()`` as that dict; keys that are not text
  (numbers, NumPy numbers) as their text.
- Anything else is a ``TypeError``, unless the caller asks for ``str()`` (``lenient``), as
  human-facing output does.

orjson does the writing (it is several times faster than ``json`` and already maps NaN and
infinities to ``null``).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

import orjson

__all__ = ["dumps", "dumps_text", "finite", "loads"]

_BASE = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _plain(value: Any) -> Any:
    """The JSON-ready form of a value orjson does not know, or ``NotImplemented``."""
    kind = type(value).__module__.split(".")[0]
    if kind == "numpy":
        if hasattr(value, "tolist"):  # arrays of objects, scalars orjson left over
            return value.tolist()
    elif kind == "pandas":
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if callable(getattr(value, "to_dict", None)):
        return value.to_dict()
    return NotImplemented


def _default_strict(value: Any) -> Any:
    plain = _plain(value)
    if plain is NotImplemented:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
    return plain


def _default_lenient(value: Any) -> Any:
    plain = _plain(value)
    return str(value) if plain is NotImplemented else plain


def _keys(value: Any) -> Any:
    """Dicts with NumPy keys as plain keys (orjson accepts only built-in key types)."""
    if isinstance(value, dict):
        return {
            (k.item() if hasattr(k, "item") and not isinstance(k, str) else k): _keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_keys(v) for v in value]
    return value


def dumps(
    value: Any, *, indent: bool = False, sort_keys: bool = False, lenient: bool = False
) -> bytes:
    """``value`` as UTF-8 JSON under forgeml's policy (see the module docstring).

    Args:
        value: what to write.
        indent: two-space indentation (for files people read).
        sort_keys: keys in sorted order (stable text for equal content).
        lenient: write ``str(x)`` for a value with no JSON form instead of failing.

    Raises:
        TypeError: a value has no JSON form and ``lenient`` is False.
    """
    option = _BASE
    if indent:
        option |= orjson.OPT_INDENT_2
    if sort_keys:
        option |= orjson.OPT_SORT_KEYS
    default = _default_lenient if lenient else _default_strict
    try:
        return orjson.dumps(value, default=default, option=option)
    except TypeError as e:
        if "Dict key" not in str(e):
            raise
        return orjson.dumps(_keys(value), default=default, option=option)


def dumps_text(
    value: Any, *, indent: bool = False, sort_keys: bool = False, lenient: bool = False
) -> str:
    """``dumps`` as text."""
    return dumps(value, indent=indent, sort_keys=sort_keys, lenient=lenient).decode()


def loads(data: bytes | str) -> Any:
    """Parse JSON text (strict JSON: no ``NaN`` tokens).

    Raises:
        orjson.JSONDecodeError: the text is not JSON (a ``ValueError``).
    """
    return orjson.loads(data)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None``, NumPy scalars as Python
    values and tuples as lists, recursively: what the JSON text of it would read back as."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return finite(value.item())
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
