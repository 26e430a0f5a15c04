"""Plate maps and plate readings: validated, immutable, keyed by well (``A01`` .. ``P24``).

A plate map says what each well holds (one row per well)::

    well,role,concentration,participant,visit,dilution,replicate_group,control
    A01,standard,10000,,,,S1,
    A03,blank,,,,,B,
    C01,control,,,,,CTRL-L,CTRL-L
    D01,sample,,LEI-0001,baseline,2,LEI-0001/baseline,

``role`` is ``standard``, ``control``, ``blank`` or ``sample``. Standards give a
``concentration`` that applies to every analyte, or per-analyte columns ``conc:IL-6`` (the
usual case: each analyte has its own top standard). Samples need ``participant`` and
``visit``; ``dilution`` (default 1) multiplies the back-calculated concentration.
Replicate wells share a ``replicate_group`` (default: one group per well).

Readings are one row per well and analyte: ``well, analyte, signal, bead_count, saturated``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.errors import PlateError, Problem
from immunorehab.study import coerce

__all__ = ["PlateMap", "Readings", "WellRole", "cv", "normalise_well", "plate_shape"]

_WELL = re.compile(r"^\s*([A-Pa-p])\s*0*(\d{1,2})\s*$")
MAP_COLUMNS = (
    "well",
    "role",
    "concentration",
    "participant",
    "visit",
    "dilution",
    "replicate_group",
    "control",
)
CONC_PREFIX = "conc:"


class WellRole(StrEnum):
    STANDARD = "standard"
    CONTROL = "control"
    BLANK = "blank"
    SAMPLE = "sample"


def normalise_well(value: Any) -> str:
    """``"a1"``, ``"A1"``, ``"A01"`` -> ``"A01"``; raises ValueError otherwise."""
    m = _WELL.match(str(value))
    if not m or not 1 <= int(m.group(2)) <= 24:
        raise ValueError(f"expected a well such as A1 or A01 (rows A-P, columns 1-24), got {value!r}")
    return f"{m.group(1).upper()}{int(m.group(2)):02d}"


def plate_shape(wells: pd.Series | list[str]) -> tuple[int, int]:
    """(rows, columns) of the smallest standard plate (96 or 384) holding ``wells``."""
    rows = max((ord(w[0]) - 64 for w in wells), default=1)
    cols = max((int(w[1:]) for w in wells), default=1)
    return (8, 12) if rows <= 8 and cols <= 12 else (16, 24)


@dataclass(frozen=True, slots=True)
class PlateMap:
    """What every well holds. ``wells`` has :data:`MAP_COLUMNS`; ``standard_conc`` has one column
    per analyte named in ``conc:`` columns (NaN where the plain ``concentration`` applies)."""

    wells: pd.DataFrame
    standard_conc: pd.DataFrame = field(repr=False)
    source: str = "<plate map>"
    sha256: str = ""

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, source: str = "<plate map>", sha256: str = "") -> PlateMap:
        """Validate a raw plate-map table (all problems collected, then raised once).

        Raises
        ------
        PlateError
            Unknown/duplicate wells, unknown roles, standards without concentration, samples
            without participant/visit, dilutions that are not positive numbers, ...
        """
        raw = frame.rename(columns=lambda c: str(c).strip())
        lower = {c.lower(): c for c in raw.columns}
        problems: list[Problem] = []
        for needed in ("well", "role"):
            if needed not in lower:
                problems.append(
                    Problem(
                        source, f"has no '{needed}' column; columns found: {', '.join(map(str, raw.columns))}"
                    )
                )
        if problems:
            raise PlateError(f"{source}: not a plate map", problems)
        conc_cols = {
            c[len(CONC_PREFIX) :].strip(): c for c in raw.columns if c.lower().startswith(CONC_PREFIX)
        }
        rows: list[dict[str, Any]] = []
        per_analyte: list[dict[str, float]] = []
        seen: dict[str, int] = {}
        for i, rec in enumerate(raw.to_dict("records")):
            where = f"{source} row {i + 2}"
            row, std, probs = _map_row({str(k): v for k, v in rec.items()}, lower, conc_cols, where)
            problems.extend(probs)
            if row is None:
                continue
            if row["well"] in seen:
                problems.append(
                    Problem(where, f"well {row['well']} is listed twice (also row {seen[row['well']]})")
                )
            seen[row["well"]] = i + 2
            rows.append(row)
            per_analyte.append(std)
        if problems:
            raise PlateError(
                f"{source}: plate map not read ({len(problems)} problems); nothing imported", problems
            )
        wells = pd.DataFrame(rows, columns=list(MAP_COLUMNS))
        conc = pd.DataFrame(per_analyte, columns=list(conc_cols), index=wells.index, dtype=float)
        return cls(wells.reset_index(drop=True), conc.reset_index(drop=True), source, sha256)

    def standard_concentration(self, analyte: str, aliases: tuple[str, ...] = ()) -> pd.Series:
        """Concentration of each well for ``analyte``: its ``conc:`` column, else ``concentration``."""
        base = self.wells["concentration"].astype(float)
        for label in (analyte, *aliases):
            for col in self.standard_conc.columns:
                if col.casefold() == label.casefold():
                    return self.standard_conc[col].where(self.standard_conc[col].notna(), base)
        return base

    @property
    def shape(self) -> tuple[int, int]:
        return plate_shape(list(self.wells["well"]))


def _text(rec: dict[str, Any], lower: dict[str, str], key: str) -> str | None:
    col = lower.get(key)
    if col is None or coerce.is_missing(rec.get(col)):
        return None
    return str(rec[col]).strip()


def _number(rec: dict[str, Any], col: str | None, where: str, name: str, probs: list[Problem]) -> float:
    if col is None or coerce.is_missing(rec.get(col)):
        return math.nan
    try:
        value = coerce.to_float(rec[col])
    except ValueError as exc:
        probs.append(Problem(f"{where}, field {name}", str(exc)))
        return math.nan
    if not math.isfinite(value) or value < 0:
        probs.append(Problem(f"{where}, field {name}", f"expected a number >= 0, got {rec[col]!r}"))
        return math.nan
    return value


def _map_row(
    rec: dict[str, Any], lower: dict[str, str], conc_cols: dict[str, str], where: str
) -> tuple[dict[str, Any] | None, dict[str, float], list[Problem]]:
    probs: list[Problem] = []
    try:
        well = normalise_well(rec[lower["well"]])
    except ValueError as exc:
        return None, {}, [Problem(f"{where}, field well", str(exc))]
    role_text = (_text(rec, lower, "role") or "").lower()
    try:
        role = WellRole(role_text)
    except ValueError:
        allowed = ", ".join(r.value for r in WellRole)
        return (
            None,
            {},
            [Problem(f"{where} ({well}), field role", f"expected one of {allowed}, got {role_text!r}")],
        )
    conc = _number(rec, lower.get("concentration"), where, "concentration", probs)
    std = {name: _number(rec, col, where, col, probs) for name, col in conc_cols.items()}
    dilution = _number(rec, lower.get("dilution"), where, "dilution", probs)
    if dilution == 0:
        probs.append(Problem(f"{where} ({well}), field dilution", "must be > 0 (1 = undiluted), got 0"))
    participant, visit = _text(rec, lower, "participant"), _text(rec, lower, "visit")
    if role is WellRole.STANDARD and math.isnan(conc) and all(math.isnan(v) for v in std.values()):
        probs.append(
            Problem(f"{where} ({well})", "a standard needs a concentration (or conc:ANALYTE columns)")
        )
    if role is WellRole.SAMPLE and (participant is None or visit is None):
        probs.append(Problem(f"{where} ({well})", "a sample needs both participant and visit"))
    if role is not WellRole.SAMPLE and participant is not None:
        probs.append(
            Problem(f"{where} ({well})", f"a {role.value} well cannot name a participant ({participant})")
        )
    control = _text(rec, lower, "control")
    if role is WellRole.CONTROL and control is None:
        control = _text(rec, lower, "replicate_group")
        if control is None:
            probs.append(Problem(f"{where} ({well})", "a control needs a control name (column control)"))
    group = _text(rec, lower, "replicate_group") or well
    row = {
        "well": well,
        "role": role.value,
        "concentration": conc,
        "participant": participant.upper() if participant else None,
        "visit": visit,
        "dilution": 1.0 if math.isnan(dilution) else dilution,
        "replicate_group": group,
        "control": control,
    }
    return row, std, probs


@dataclass(frozen=True, slots=True)
class Readings:
    """Signals per well and analyte: ``frame`` has ``well, analyte, signal, bead_count, saturated``.

    ``format`` names the reader (``grid``, ``long``, ``xponent``); ``metadata`` holds what the
    export said about the run (instrument, batch, operator, dates), ``sha256`` the file hash.
    """

    frame: pd.DataFrame
    source: str
    format: str
    sha256: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def analytes(self) -> list[str]:
        return list(dict.fromkeys(self.frame["analyte"]))

    @staticmethod
    def build(rows: list[dict[str, Any]]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["well", "analyte", "signal", "bead_count", "saturated"])
        frame["signal"] = frame["signal"].astype(float)
        frame["bead_count"] = frame["bead_count"].astype(float)
        frame["saturated"] = frame["saturated"].astype(bool)
        return frame

    def for_analyte(self, analyte: str) -> pd.DataFrame:
        return self.frame[self.frame["analyte"] == analyte]


def cv(values: np.ndarray) -> float:
    """Coefficient of variation (SD with n-1 over mean) of replicate values; NaN for < 2."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2 or v.mean() == 0:
        return math.nan
    return float(np.std(v, ddof=1) / abs(v.mean()))
