"""Turning raw cell values (CSV text, Parquet scalars, CLI strings) into typed values.

Each function returns the typed value or raises ``ValueError`` with a message saying
what is expected; callers collect those into :class:`~immunorehab.errors.Problem` lists.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["is_missing", "to_bool", "to_choice", "to_date", "to_float", "to_int"]

_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def is_missing(value: Any) -> bool:
    """Empty string, None, NaN/NaT count as missing."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, float):
        return math.isnan(value)
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if as_float.is_integer():
            return int(as_float)
        raise ValueError(f"expected a whole number, got {value!r}") from None


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        result = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {value!r}")
    return result


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected yes/no (true/false, 1/0), got {value!r}")


def to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime().date()  # type: ignore[no-any-return]
    text = str(value).strip()
    try:
        return (
            dt.date.fromisoformat(text[:10])
            if len(text) >= 10 and text[10:11] in ("", "T", " ")
            else (dt.date.fromisoformat(text))
        )
    except ValueError:
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}") from None


def to_choice(value: Any, choices: Sequence[str]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
    return text
