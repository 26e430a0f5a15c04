"""One plate from signals to concentrations: curves, standards recovery, LLOQ/ULOQ, LOD, flags.

For each analyte of the assay: fit the standard curve to the standard wells (saturated wells,
wells without signal and wells under the bead minimum are left out and reported), back-calculate
every standard (recovery = back-calculated / nominal), take LLOQ/ULOQ as the lowest/highest
standard of the longest run of consecutive levels that recover within the window with
replicate CV within the limit (MILLIPLEX rule, domain.md D3), and the LOD as the concentration
at blank mean + k SD. Samples and controls are averaged per replicate group, back-calculated,
multiplied by their dilution and flagged; values below LLOQ / above ULOQ follow the assay's
rule, never silently. A failed curve flags its analyte's wells; the other analytes go on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.cytokines.assay import AssayConfig
from immunorehab.cytokines.curves import StandardCurve, fit_standard_curve
from immunorehab.cytokines.plate import PlateMap, Readings, WellRole, cv
from immunorehab.errors import PlateError, Problem

__all__ = ["AnalyteLimits", "PlateResult", "match_analytes", "process_plate"]

ProgressCallback = Callable[[str, int, int], None]
_REGION = re.compile(r"\s*\(\s*\d+\s*\)\s*$")


@dataclass(frozen=True, slots=True)
class AnalyteLimits:
    """Quantification limits of one analyte on one plate (in-well concentrations, assay units)."""

    analyte: str
    unit: str
    lloq: float
    uloq: float
    lod: float
    standards_used: int
    standards_passing: int


@dataclass(frozen=True, slots=True)
class PlateResult:
    """Everything one plate gave: curves, limits, per-well values and per-group results.

    ``results`` has one row per replicate group (samples and controls) and analyte with
    ``role, participant, visit, control, analyte, concentration, unit, flag, cv, n_wells,
    dilution, signal``; ``standards`` has every standard well with its recovery.
    """

    plate_id: str
    assay_id: str
    curves: dict[str, StandardCurve]
    limits: dict[str, AnalyteLimits]
    standards: pd.DataFrame
    wells: pd.DataFrame
    results: pd.DataFrame
    notes: tuple[str, ...] = ()
    provenance: dict[str, str] = field(default_factory=dict)

    def concentrations(self) -> pd.DataFrame:
        """Sample results as ``participant, visit, analyte, concentration, unit, flag``."""
        cols = ["participant", "visit", "analyte", "concentration", "unit", "flag"]
        return self.results.loc[self.results["role"] == WellRole.SAMPLE.value, cols].reset_index(drop=True)

    def curve_table(self) -> pd.DataFrame:
        """One row per analyte: status, reason, parameters, RSE, R^2, LLOQ/ULOQ/LOD."""
        rows = []
        for name, curve in self.curves.items():
            lim = self.limits[name]
            row: dict[str, Any] = {"analyte": name, "model": curve.model, "status": curve.status.value}
            row.update(reason=curve.reason or curve.note, rse=curve.rse, r_squared=curve.r_squared)
            row.update({f"param_{k}": v for k, v in curve.params.items()})
            row.update({f"se_{k}": v for k, v in curve.se.items()})
            row.update(lloq=lim.lloq, uloq=lim.uloq, lod=lim.lod, unit=lim.unit)
            rows.append(row)
        return pd.DataFrame(rows)


def match_analytes(readings: Readings, assay: AssayConfig) -> tuple[dict[str, str], list[str]]:
    """Map reading names to assay names (aliases and xPONENT ``Name (region)`` suffixes).

    Returns (reading name -> assay name, reading names not in the assay).
    """
    mapping: dict[str, str] = {}
    extra: list[str] = []
    for name in readings.analytes:
        canon = assay.canonical(name) or assay.canonical(_REGION.sub("", name))
        if canon is None:
            extra.append(name)
        else:
            mapping[name] = canon
    return mapping, extra


def _check_complete(plate_map: PlateMap, frame: pd.DataFrame, assay: AssayConfig, source: str) -> None:
    problems: list[Problem] = []
    present = set(frame["analyte"])
    for name in assay.names:
        if name not in present:
            problems.append(Problem(source, f"has no readings for analyte {name} (assay {assay.assay.id})"))
    have = set(zip(frame["well"], frame["analyte"], strict=True))
    for rec in plate_map.wells.itertuples(index=False):
        missing = [a for a in assay.names if a in present and (rec.well, a) not in have]
        if missing:
            what = f"{rec.role!s} {(rec.participant or rec.control or rec.replicate_group)!s}"
            problems.append(
                Problem(f"{source} well {rec.well!s}", f"({what}) has no reading for {', '.join(missing)}")
            )
    if problems:
        raise PlateError(f"{source}: readings do not cover the plate map; nothing imported", problems)


def process_plate(
    plate_map: PlateMap,
    readings: Readings,
    assay: AssayConfig,
    *,
    plate_id: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> PlateResult:
    """Fit every analyte's curve and turn the plate's signals into flagged concentrations.

    Raises
    ------
    PlateError
        The readings miss an analyte of the assay or a well of the plate map (all listed).
    """
    mapping, extra = match_analytes(readings, assay)
    frame = readings.frame[readings.frame["analyte"].isin(list(mapping))].copy()
    frame["analyte"] = frame["analyte"].map(mapping)
    _check_complete(plate_map, frame, assay, readings.source)
    wells = plate_map.wells.merge(frame, on="well", how="inner")
    unmapped = sorted(set(frame["well"]) - set(plate_map.wells["well"]))
    notes = [f"analyte {e} in the readings is not in the assay: ignored" for e in extra]
    if unmapped:
        notes.append(f"{len(unmapped)} read wells are not in the plate map (empty wells): ignored")
    curves: dict[str, StandardCurve] = {}
    limits: dict[str, AnalyteLimits] = {}
    standards, per_well, results = [], [], []
    for i, name in enumerate(assay.names):
        w = wells[wells["analyte"] == name].copy()
        curve, std, lim, msgs = _analyte_curve(plate_map, w, assay, name)
        curves[name], limits[name] = curve, lim
        notes.extend(msgs)
        w["concentration_in_well"] = curve.back_calculate(w["signal"]) if curve.ok else math.nan
        standards.append(std)
        per_well.append(w)
        results.append(_group_results(w, curve, lim, assay))
        if on_progress is not None:
            on_progress("analytes", i + 1, len(assay.names))
    provenance = {
        "plate_map_sha256": plate_map.sha256,
        "readings_sha256": readings.sha256,
        "format": readings.format,
    }
    return PlateResult(
        plate_id=plate_id or readings.metadata.get("Batch") or plate_map.source,
        assay_id=assay.assay.id,
        curves=curves,
        limits=limits,
        standards=pd.concat(standards, ignore_index=True),
        wells=pd.concat(per_well, ignore_index=True),
        results=pd.concat(results, ignore_index=True),
        notes=tuple(notes),
        provenance=provenance,
    )


def _usable(w: pd.DataFrame, min_beads: int) -> pd.Series:
    beads_ok = w["bead_count"].isna() | (w["bead_count"] >= min_beads)
    return w["signal"].notna() & ~w["saturated"] & beads_ok


def _analyte_curve(
    plate_map: PlateMap, w: pd.DataFrame, assay: AssayConfig, name: str
) -> tuple[StandardCurve, pd.DataFrame, AnalyteLimits, list[str]]:
    cfg = assay.analyte(name)
    conc = plate_map.standard_concentration(name, tuple(cfg.aliases))
    conc_by_well = dict(zip(plate_map.wells["well"], conc, strict=True))
    std = w[w["role"] == WellRole.STANDARD.value].copy()
    std["nominal"] = std["well"].map(conc_by_well)
    std = std[std["nominal"].notna()]
    use = _usable(std, assay.rules.min_beads)
    msgs = [
        f"{name}: standard well {r.well} left out of the fit ({_why_unusable(r, assay.rules.min_beads)})"
        for r in std[~use].itertuples(index=False)
    ]
    curve = fit_standard_curve(
        std.loc[use, "nominal"],
        std.loc[use, "signal"],
        model=assay.model_for(name),
        weights=assay.weights_for(name),
        se_method=assay.defaults.se_method,
    )
    if curve.note:
        msgs.append(f"{name}: {curve.note}")
    if not curve.ok:
        msgs.append(f"{name}: standard curve failed: {curve.reason}")
    elif curve.r_squared < assay.rules.r_squared_min:
        msgs.append(f"{name}: R^2 {curve.r_squared:.4f} below {assay.rules.r_squared_min}")
    std["used"] = use
    std["back_calculated"] = curve.back_calculate(std["signal"]) if curve.ok else math.nan
    std["recovery"] = std["back_calculated"] / std["nominal"]
    lloq, uloq, passing = _limits(std[use], assay)
    lod = _lod(w, curve, assay.rules.lod_k_sd)
    lim = AnalyteLimits(name, cfg.unit, lloq, uloq, lod, int(use.sum()), passing)
    return curve, std, lim, msgs


def _why_unusable(r: Any, min_beads: int) -> str:
    if r.saturated:
        return "saturated"
    if r.signal != r.signal:
        return "no signal"
    return f"{int(r.bead_count)} beads < {min_beads}"


def _limits(std: pd.DataFrame, assay: AssayConfig) -> tuple[float, float, int]:
    """LLOQ/ULOQ: ends of the longest run of consecutive passing standard levels."""
    if std.empty or std["back_calculated"].isna().all():
        return math.nan, math.nan, 0
    levels = std[std["nominal"] > 0].groupby("nominal")
    table = pd.DataFrame(
        {"recovery": levels["recovery"].mean(), "cv": levels["signal"].agg(lambda s: cv(s.to_numpy()))}
    ).sort_index()
    lo, hi = assay.rules.recovery
    edge_lo, edge_hi = assay.rules.recovery_at_limits or assay.rules.recovery
    cv_ok = table["cv"].isna() | (table["cv"] <= assay.rules.cv_max)
    inner = (table["recovery"] >= lo) & (table["recovery"] <= hi) & cv_ok
    edge = (table["recovery"] >= edge_lo) & (table["recovery"] <= edge_hi) & cv_ok
    # the two ends may use the edge window; every level between them must meet the strict one
    ends, mid = list(edge.to_numpy()), list(inner.to_numpy())
    best: tuple[int, int] | None = None
    for first in range(len(ends)):
        for last in range(len(ends) - 1, first - 1, -1):
            if ends[first] and ends[last] and all(mid[first + 1 : last]):
                if best is None or last - first > best[1] - best[0]:
                    best = (first, last)
                break
    if best is None:
        return math.nan, math.nan, int(inner.sum())
    return float(table.index[best[0]]), float(table.index[best[1]]), int(inner.sum())


def _lod(w: pd.DataFrame, curve: StandardCurve, k: float) -> float:
    blanks = w.loc[(w["role"] == WellRole.BLANK.value) & w["signal"].notna(), "signal"].to_numpy(dtype=float)
    if not curve.ok or blanks.size < 2:
        return math.nan
    sd = float(np.std(blanks, ddof=1))
    signal = blanks.mean() + (k * sd if curve.rising else -k * sd)
    return float(curve.back_calculate(signal))


def _side(signal: float, curve: StandardCurve, lim: AnalyteLimits) -> str:
    """'below', 'above' or 'in' relative to the LLOQ..ULOQ signal range."""
    lo_sig, hi_sig = (float(v) for v in curve.predict(np.array([lim.lloq, lim.uloq])))
    if curve.rising:
        return "below" if signal < lo_sig else ("above" if signal > hi_sig else "in")
    return "below" if signal > lo_sig else ("above" if signal < hi_sig else "in")


def _group_results(
    w: pd.DataFrame, curve: StandardCurve, lim: AnalyteLimits, assay: AssayConfig
) -> pd.DataFrame:
    rows = []
    targets = w[w["role"].isin([WellRole.SAMPLE.value, WellRole.CONTROL.value])]
    for _, g in targets.groupby("replicate_group", sort=False):
        rows.append(_one_group(g, curve, lim, assay))
    cols = ["role", "participant", "visit", "control", "replicate_group", "analyte", "concentration"]
    cols += ["unit", "flag", "cv", "n_wells", "dilution", "signal", "concentration_in_well", "wells"]
    return pd.DataFrame(rows, columns=cols)


def _one_group(
    g: pd.DataFrame, curve: StandardCurve, lim: AnalyteLimits, assay: AssayConfig
) -> dict[str, Any]:
    rules = assay.rules
    first = g.iloc[0]
    usable = g[_usable(g, 0)]
    flags: list[str] = []
    group_cv = cv(usable["signal"].to_numpy())
    if group_cv == group_cv and group_cv > rules.cv_max:
        flags.append("high_cv")
    if (g["bead_count"] < rules.min_beads).any():
        flags.append("low_beads")
    dilution = float(first["dilution"])
    signal = float(usable["signal"].mean()) if not usable.empty else math.nan
    value, main = _value_and_flag(signal, bool(g["saturated"].all()), curve, lim, rules, dilution)
    in_well = float(curve.back_calculate(signal)) if curve.ok and signal == signal else math.nan
    if main == "ok" and lim.lod == lim.lod and in_well < lim.lod:
        flags.append("below_lod")
    return {
        "role": first["role"],
        "participant": first["participant"],
        "visit": first["visit"],
        "control": first["control"],
        "replicate_group": first["replicate_group"],
        "analyte": first["analyte"],
        "concentration": value,
        "unit": lim.unit,
        "flag": ";".join([main, *flags]) if main != "ok" or not flags else ";".join(flags),
        "cv": group_cv,
        "n_wells": int(len(g)),
        "dilution": dilution,
        "signal": signal,
        "concentration_in_well": in_well,
        "wells": ",".join(g["well"]),
    }


def _value_and_flag(
    signal: float, saturated: bool, curve: StandardCurve, lim: AnalyteLimits, rules: Any, dilution: float
) -> tuple[float, str]:
    if not curve.ok:
        return math.nan, "curve_failed"
    if saturated:
        side = "above"
    elif signal != signal:
        return math.nan, "no_signal"
    elif lim.lloq != lim.lloq:
        return math.nan, "no_quantifiable_range"
    else:
        side = _side(signal, curve, lim)
    if side == "below":
        sub = {"censored": math.nan, "lloq_half": lim.lloq / 2, "lloq_sqrt2": lim.lloq / math.sqrt(2)}
        return sub.get(rules.below_lloq, lim.lloq) * dilution, "<LLOQ"
    if side == "above":
        return (lim.uloq * dilution if rules.above_uloq == "uloq" else math.nan), ">ULOQ"
    return float(curve.back_calculate(signal)) * dilution, "ok"
