"""Gate declarations (Gating-ML 2.0 section 5): plain frozen data, no evaluation code.

A gate names its ``id`` (unique in a strategy; for FlowJo workspaces the population name), its
``parent`` gate id (``None`` at the top) and the dimensions it is drawn on. A :class:`Dimension` says
which values a gate sees: a channel (``$PnN``), a compensation (``"uncompensated"``, ``"FCS"`` for the
file's own spillover matrix, or a spillover id of the strategy) and an optional transform id.

Boundary rules (Gating-ML 2.0, as the compliance suite's truth files fix them): rectangle minimums are
inclusive and maximums exclusive; polygons are evaluated by flowutils' crossing-number test (even-odd rule
for self-intersecting outlines such as the suite's Polygon3NS; like rectangles, points on the low edges of an
axis-aligned outline are inside and those on the high edges outside); ellipsoids contain points with
Mahalanobis distance squared ``<= distance_square``; quadrant dividers split each axis into half-open
intervals ``[v_i, v_i+1)``. Events with a NaN value (e.g. log of a negative) are outside every gate.
Evaluation lives in :mod:`immunorehab.cytometry.engine`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from immunorehab.errors import GateError

__all__ = [
    "FCS",
    "UNCOMPENSATED",
    "BooleanGate",
    "BooleanOp",
    "Dimension",
    "Divider",
    "EllipsoidGate",
    "Gate",
    "PolygonGate",
    "Quadrant",
    "QuadrantGate",
    "RectangleGate",
]

UNCOMPENSATED = "uncompensated"
FCS = "FCS"

BooleanOp = Literal["and", "or", "not"]
DimensionKind = Literal["fcs", "ratio"]


@dataclass(frozen=True, slots=True)
class Dimension:
    """The values a gate is drawn on.

    Parameters
    ----------
    channel : str
        ``$PnN`` channel name (or compensated fluorochrome name); for ``kind="ratio"`` the id of a
        :class:`~immunorehab.cytometry.transforms.RatioTransform` in the strategy.
    compensation : str
        ``"uncompensated"``, ``"FCS"`` (the sample's ``$SPILLOVER``) or a spillover id of the strategy.
    transform : str or None
        Id of a scale transform in the strategy, applied after compensation.
    kind : {"fcs", "ratio"}
        ``"fcs"`` for a channel, ``"ratio"`` for a Gating-ML ``new-dimension`` (fratio).
    """

    channel: str
    compensation: str = UNCOMPENSATED
    transform: str | None = None
    kind: DimensionKind = "fcs"

    def __post_init__(self) -> None:
        if not self.channel:
            raise GateError("Dimension: channel name is empty.")
        if not self.compensation:
            raise GateError(
                f"Dimension {self.channel!r}: compensation must be 'uncompensated', 'FCS' or an id."
            )
        if self.kind not in ("fcs", "ratio"):
            raise GateError(f"Dimension {self.channel!r}: kind must be 'fcs' or 'ratio', got {self.kind!r}.")

    def __str__(self) -> str:
        parts = [self.channel]
        if self.compensation != UNCOMPENSATED:
            parts.append(f"comp={self.compensation}")
        if self.transform:
            parts.append(f"xform={self.transform}")
        return "[" + ", ".join(parts) + "]"


def _check_id(kind: str, gate_id: str, parent: str | None) -> None:
    if not isinstance(gate_id, str) or not gate_id:
        raise GateError(f"{kind}: gate id must be a non-empty string, got {gate_id!r}.")
    if parent is not None and (not isinstance(parent, str) or not parent):
        raise GateError(f"{kind} {gate_id!r}: parent must be a gate id or None, got {parent!r}.")
    if parent == gate_id:
        raise GateError(f"{kind} {gate_id!r}: a gate cannot be its own parent.")


def _finite(kind: str, gate_id: str, what: str, values: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise GateError(f"{kind} {gate_id!r}: {what} must be finite numbers, got {bad}.")
    return out


@dataclass(frozen=True, slots=True)
class RectangleGate:
    """Rectangle (or 1-D range) gate: ``min <= x < max`` on every dimension; ``None`` = open end."""

    id: str
    parent: str | None
    dimensions: tuple[Dimension, ...]
    minimums: tuple[float | None, ...]
    maximums: tuple[float | None, ...]

    def __post_init__(self) -> None:
        _check_id("RectangleGate", self.id, self.parent)
        n = len(self.dimensions)
        if n == 0 or len(self.minimums) != n or len(self.maximums) != n:
            raise GateError(
                f"RectangleGate {self.id!r}: needs one minimum and one maximum (or None) per dimension; got "
                f"{n} dimensions, {len(self.minimums)} minimums, {len(self.maximums)} maximums."
            )
        mins = tuple(None if v is None else float(v) for v in self.minimums)
        maxs = tuple(None if v is None else float(v) for v in self.maximums)
        for dim, lo, hi in zip(self.dimensions, mins, maxs, strict=True):
            if lo is None and hi is None:
                raise GateError(
                    f"RectangleGate {self.id!r}: dimension {dim} has neither minimum nor maximum."
                )
            if lo is not None and hi is not None and not lo <= hi:
                raise GateError(
                    f"RectangleGate {self.id!r}: dimension {dim} has minimum {lo} > maximum {hi}."
                )
            for v in (lo, hi):
                if v is not None and math.isnan(v):
                    raise GateError(f"RectangleGate {self.id!r}: dimension {dim} has a NaN bound.")
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        object.__setattr__(self, "minimums", mins)
        object.__setattr__(self, "maximums", maxs)


@dataclass(frozen=True, slots=True)
class PolygonGate:
    """Polygon gate on two dimensions (even-odd rule for non-simple outlines; see the module notes)."""

    id: str
    parent: str | None
    dimensions: tuple[Dimension, Dimension]
    vertices: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        _check_id("PolygonGate", self.id, self.parent)
        if len(self.dimensions) != 2:
            raise GateError(
                f"PolygonGate {self.id!r}: needs exactly 2 dimensions, got {len(self.dimensions)}."
            )
        verts = tuple(tuple(_finite("PolygonGate", self.id, "vertices", v)) for v in self.vertices)
        if len(verts) < 3 or any(len(v) != 2 for v in verts):
            raise GateError(f"PolygonGate {self.id!r}: needs at least 3 vertices of 2 coordinates each.")
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        object.__setattr__(self, "vertices", verts)


@dataclass(frozen=True, slots=True)
class EllipsoidGate:
    """Ellipsoid gate: ``(x - mean) C^-1 (x - mean)^T <= distance_square`` (2-D ellipse or n-D)."""

    id: str
    parent: str | None
    dimensions: tuple[Dimension, ...]
    mean: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    distance_square: float

    def __post_init__(self) -> None:
        _check_id("EllipsoidGate", self.id, self.parent)
        n = len(self.dimensions)
        mean = _finite("EllipsoidGate", self.id, "mean", self.mean)
        cov = tuple(_finite("EllipsoidGate", self.id, "covariance", row) for row in self.covariance)
        if n < 2 or len(mean) != n or len(cov) != n or any(len(r) != n for r in cov):
            raise GateError(
                f"EllipsoidGate {self.id!r}: {n} dimensions need {n} mean values and a {n}x{n} covariance."
            )
        if not (math.isfinite(self.distance_square) and self.distance_square > 0):
            raise GateError(
                f"EllipsoidGate {self.id!r}: distance_square must be > 0, got {self.distance_square}."
            )
        if abs(float(np.linalg.det(np.array(cov)))) == 0.0:
            raise GateError(f"EllipsoidGate {self.id!r}: the covariance matrix is singular.")
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "covariance", cov)
        object.__setattr__(self, "distance_square", float(self.distance_square))


@dataclass(frozen=True, slots=True)
class Divider:
    """A quadrant-gate divider: cut points on one dimension (``QuadrantGate.dimensions[i]``)."""

    id: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        vals = _finite("Divider", self.id, "values", self.values)
        if not vals or list(vals) != sorted(vals):
            raise GateError(
                f"Divider {self.id!r}: needs at least one value, in increasing order; got {vals}."
            )
        object.__setattr__(self, "values", vals)

    def interval(self, location: float) -> int:
        """Index of the half-open interval ``[v_i, v_i+1)`` holding ``location`` (0 = below the first)."""
        return int(np.searchsorted(np.asarray(self.values), location, side="right"))


@dataclass(frozen=True, slots=True)
class Quadrant:
    """One region of a quadrant gate; ``positions`` are ``(divider id, a location inside the region)``.

    A divider not listed leaves that dimension unrestricted (Gating-ML allows this).
    """

    id: str
    positions: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if not self.id:
            raise GateError("Quadrant: id must be a non-empty string.")
        if not self.positions:
            raise GateError(f"Quadrant {self.id!r}: needs at least one (divider, location) position.")
        object.__setattr__(self, "positions", tuple((str(d), float(v)) for d, v in self.positions))


@dataclass(frozen=True, slots=True)
class QuadrantGate:
    """Quadrant gate: dividers cut dimensions into intervals; each :class:`Quadrant` is a gate id."""

    id: str
    parent: str | None
    dimensions: tuple[Dimension, ...]
    dividers: tuple[Divider, ...]
    quadrants: tuple[Quadrant, ...]

    def __post_init__(self) -> None:
        _check_id("QuadrantGate", self.id, self.parent)
        if not self.dimensions or len(self.dividers) != len(self.dimensions):
            raise GateError(
                f"QuadrantGate {self.id!r}: needs one divider per dimension; got {len(self.dimensions)} "
                f"dimensions and {len(self.dividers)} dividers."
            )
        ids = [d.id for d in self.dividers]
        if len(set(ids)) != len(ids):
            raise GateError(f"QuadrantGate {self.id!r}: duplicate divider ids {ids}.")
        if not self.quadrants:
            raise GateError(f"QuadrantGate {self.id!r}: needs at least one quadrant.")
        for q in self.quadrants:
            unknown = [d for d, _ in q.positions if d not in ids]
            if unknown:
                raise GateError(
                    f"QuadrantGate {self.id!r}, quadrant {q.id!r}: unknown dividers {unknown}; known: {ids}."
                )
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        object.__setattr__(self, "dividers", tuple(self.dividers))
        object.__setattr__(self, "quadrants", tuple(self.quadrants))

    @property
    def quadrant_ids(self) -> tuple[str, ...]:
        """Ids of the quadrants (each is a population / gate id)."""
        return tuple(q.id for q in self.quadrants)

    def divider_index(self, divider_id: str) -> int:
        """Position of a divider (and of its dimension)."""
        return [d.id for d in self.dividers].index(divider_id)


@dataclass(frozen=True, slots=True)
class BooleanGate:
    """Boolean combination of other gates; operands are ``(gate id, use as complement)``."""

    id: str
    parent: str | None
    op: BooleanOp
    operands: tuple[tuple[str, bool], ...]

    def __post_init__(self) -> None:
        _check_id("BooleanGate", self.id, self.parent)
        ops = tuple((str(g), bool(c)) for g, c in self.operands)
        if self.op not in ("and", "or", "not"):
            raise GateError(f"BooleanGate {self.id!r}: op must be 'and', 'or' or 'not', got {self.op!r}.")
        if self.op == "not" and len(ops) != 1:
            raise GateError(f"BooleanGate {self.id!r}: 'not' takes exactly one operand, got {len(ops)}.")
        if self.op != "not" and len(ops) < 2:
            raise GateError(
                f"BooleanGate {self.id!r}: '{self.op}' needs at least two operands, got {len(ops)}."
            )
        if any(g == self.id for g, _ in ops):
            raise GateError(f"BooleanGate {self.id!r}: cannot refer to itself.")
        object.__setattr__(self, "operands", ops)

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        """Boolean gates have no dimensions."""
        return ()


Gate = RectangleGate | PolygonGate | EllipsoidGate | QuadrantGate | BooleanGate
