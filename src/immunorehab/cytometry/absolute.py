"""Absolute counts (cells per microlitre of blood) from gated counts.

Two methods (domain.md section C3):

**Single platform** (counting-bead tubes, e.g. BD Trucount): a known number of beads is in
the tube with a known volume of blood, so for every population

    cells/uL = (cell events / bead events) x (beads per tube / sample volume uL)

**Dual platform**: the haematology analyser's absolute lymphocyte count (ALC, lymphocytes/uL,
= WBC x lymphocyte %) is assigned to the reference population (default ``live``: live single
lymphocytes) and multiplied down the gating tree:

    cells/uL(child) = cells/uL(parent) x count(child) / count(parent)

so e.g. naive CD8/uL = ALC x %T of lymphocytes x %CD8 of T x %naive of CD8. Populations
outside the reference's subtree (beads, QC, scatter gates) get NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from immunorehab.errors import CytometryError

__all__ = [
    "AbsoluteCounts",
    "DualPlatform",
    "SinglePlatform",
    "absolute_counts",
    "dual_platform_per_ul",
    "lymphocytes_per_ul",
    "single_platform_per_ul",
]


@dataclass(frozen=True, slots=True)
class SinglePlatform:
    """Bead-based absolute counts: beads per tube (lot-specific), blood volume in the tube (uL)."""

    beads_per_tube: float
    volume_ul: float
    bead_gate: str = "beads"

    def __post_init__(self) -> None:
        for name in ("beads_per_tube", "volume_ul"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise CytometryError(
                    f"single-platform counts: {name} must be a positive number, got {value!r}"
                )


@dataclass(frozen=True, slots=True)
class DualPlatform:
    """Absolute lymphocyte count (cells/uL) from a haematology analyser, put on ``reference_gate``."""

    lymphocytes_per_ul: float
    reference_gate: str = "live"

    def __post_init__(self) -> None:
        value = self.lymphocytes_per_ul
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise CytometryError(
                f"dual-platform counts: lymphocytes_per_ul must be a positive number, got {value!r}"
            )


AbsoluteCounts = SinglePlatform | DualPlatform


def lymphocytes_per_ul(wbc_10e9_per_l: float, lymphocyte_pct: float) -> float:
    """Absolute lymphocyte count in cells/uL from a blood count (WBC in 10^9/L, lymphocytes in %).

    10^9 cells/L is 1,000 cells/uL, so ALC = WBC x 1000 x lymphocyte % / 100.

    Examples
    --------
    >>> lymphocytes_per_ul(6.0, 30.0)
    1800.0
    """
    if not (wbc_10e9_per_l > 0 and 0 < lymphocyte_pct <= 100):
        raise CytometryError(
            "blood count: WBC must be > 0 (10^9/L) and lymphocytes 0-100 %, "
            f"got {wbc_10e9_per_l}, {lymphocyte_pct}"
        )
    return float(wbc_10e9_per_l) * 1000.0 * float(lymphocyte_pct) / 100.0


def single_platform_per_ul(
    cell_events: np.ndarray | float, bead_events: float, beads_per_tube: float, volume_ul: float
) -> np.ndarray:
    """``cell_events / bead_events x beads_per_tube / volume_ul`` (NaN when no bead events)."""
    cells = np.asarray(cell_events, dtype=np.float64)
    if bead_events <= 0:
        return np.full(cells.shape, np.nan)
    return cells / float(bead_events) * float(beads_per_tube) / float(volume_ul)


def dual_platform_per_ul(counts: pd.DataFrame, lymphocytes_per_ul: float, reference_gate: str) -> np.ndarray:
    """Cells/uL of every row of ``counts`` (columns ``gate, parent, count``) multiplied down the tree."""
    parents = dict(zip(counts["gate"], counts["parent"], strict=True))
    count = dict(zip(counts["gate"], counts["count"].astype(float), strict=True))
    if reference_gate not in count:
        raise CytometryError(
            f"dual-platform counts: reference population {reference_gate!r} is not among the gates "
            f"({', '.join(map(str, counts['gate']))})"
        )
    out: dict[str, float] = {reference_gate: float(lymphocytes_per_ul)}

    def per_ul(gate: str) -> float:
        if gate in out:
            return out[gate]
        parent = parents.get(gate)
        if parent is None or (isinstance(parent, float) and math.isnan(parent)):
            value = math.nan  # not below the reference
        else:
            above = per_ul(str(parent))
            value = above * count[gate] / count[str(parent)] if count[str(parent)] > 0 else math.nan
            if math.isnan(above):
                value = math.nan
        out[gate] = value
        return value

    return np.array([per_ul(str(g)) for g in counts["gate"]], dtype=np.float64)


def absolute_counts(counts: pd.DataFrame, method: AbsoluteCounts | None) -> np.ndarray:
    """Cells/uL for every row of a counts table (NaN throughout when ``method`` is None).

    Raises
    ------
    CytometryError
        The bead gate or reference population is not in the table.
    """
    if method is None:
        return np.full(len(counts), np.nan)
    if isinstance(method, SinglePlatform):
        beads = counts.loc[counts["gate"] == method.bead_gate, "count"]
        if beads.empty:
            raise CytometryError(
                f"single-platform counts: bead gate {method.bead_gate!r} is not among the gates "
                f"({', '.join(map(str, counts['gate']))})"
            )
        return single_platform_per_ul(
            counts["count"].to_numpy(), float(beads.iloc[0]), method.beads_per_tube, method.volume_ul
        )
    return dual_platform_per_ul(counts, method.lymphocytes_per_ul, method.reference_gate)
