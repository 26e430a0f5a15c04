"""Synthetic multiplex cytokine plates with known ground truth.

Each plate has an 8-level standard series in duplicate (4-fold dilutions from each analyte's
top standard), two blanks, two control materials in duplicate and samples in duplicate. Signals
follow a 5PL curve per analyte with multiplicative noise, a plate-to-plate gain, Poisson bead
counts (occasionally under the minimum) and occasional out-of-range samples (far above the top
standard, which saturate, or below the bottom one). Plates are written in every supported
reading format: tidy long CSV, plate-reader grids (Tecan-style CSV and XLSX), the Luminex
xPONENT CSV export and, for a one-analyte plate such as :data:`ELISA_IL6`, the BioTek/Agilent
Gen5 text export; each with its plate-map CSV.

The healthy medians below are *simulation settings*, not reference values; the reference table
with sources is :mod:`immunorehab.cytokines.profile`.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_PANEL",
    "ELISA_IL6",
    "AnalyteSim",
    "PlateFormat",
    "SampleSpec",
    "SyntheticPlate",
    "simulate_levels",
    "simulate_plate",
    "well_order",
    "write_plate",
]

PlateFormat = Literal["long", "grid", "grid-xlsx", "xponent", "gen5"]
LEVELS = 8
DILUTION_STEP = 4.0
CONTROLS = {"CTRL-L": 0.02, "CTRL-H": 0.2}  # fraction of the top standard


@dataclass(frozen=True, slots=True)
class AnalyteSim:
    """Curve and level settings of one simulated analyte (concentrations in pg/mL)."""

    name: str
    top_standard: float
    a: float  # background signal (MFI at zero concentration)
    d: float  # saturation signal
    b: float
    g: float
    healthy_median: float
    healthy_log_sd: float = 0.6
    bead_region: int = 0
    decimals: int = 1  # signal as the reader prints it: MFI to 0.1, optical density to 0.001

    @property
    def c(self) -> float:
        """Inflection concentration: about 1/6 of the top standard."""
        return self.top_standard / 6.0

    def signal(self, conc: np.ndarray) -> np.ndarray:
        x = np.asarray(conc, dtype=float)
        with np.errstate(divide="ignore"):
            return self.d + (self.a - self.d) / (1.0 + (x / self.c) ** self.b) ** self.g


#: A long-COVID panel (domain.md D1); medians are simulation settings (see module docstring).
DEFAULT_PANEL: tuple[AnalyteSim, ...] = (
    AnalyteSim("IL-6", 10000, 25, 26000, 1.05, 0.9, 1.5, bead_region=19),
    AnalyteSim("TNF-a", 10000, 30, 24000, 1.1, 1.0, 2.9, bead_region=21),
    AnalyteSim("IL-1b", 10000, 20, 22000, 1.0, 1.1, 1.2, 0.8, bead_region=28),
    AnalyteSim("IP-10", 20000, 40, 25000, 0.95, 0.85, 150.0, bead_region=48),
    AnalyteSim("MCP-1", 20000, 45, 27000, 1.0, 0.95, 200.0, bead_region=53),
    AnalyteSim("MIP-1b", 10000, 35, 23000, 1.05, 1.0, 60.0, bead_region=55),
    AnalyteSim("IFN-g", 10000, 25, 21000, 1.1, 0.9, 5.0, bead_region=43),
    AnalyteSim("IL-10", 10000, 20, 20000, 1.0, 1.0, 2.0, bead_region=27),
)


#: A high-sensitivity IL-6 ELISA read at 450 nm (optical density; standards from 50 pg/mL down 4-fold).
ELISA_IL6 = AnalyteSim("IL-6", 50.0, 0.05, 3.3, 1.1, 1.0, 1.5, decimals=3)


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """A sample to put on a plate: who, when, dilution and its true neat concentrations."""

    participant: str
    visit: str
    truth: Mapping[str, float]
    dilution: float = 2.0


@dataclass(frozen=True, slots=True)
class SyntheticPlate:
    """A simulated plate: its map, its long readings and the ground truth.

    ``truth`` has ``participant, visit, analyte, true_concentration`` (neat sample) for
    samples and ``control, analyte, true_concentration`` rows for the controls.
    """

    plate_id: str
    plate_map: pd.DataFrame
    readings: pd.DataFrame
    truth: pd.DataFrame
    panel: tuple[AnalyteSim, ...]
    gain: float = 1.0
    metadata: dict[str, str] = field(default_factory=dict)


def well_order(rows: int = 8, cols: int = 12) -> list[str]:
    """Wells column by column (A01, B01, ..., H01, A02, ...), the order plates are loaded."""
    return [f"{chr(65 + r)}{c + 1:02d}" for c in range(cols) for r in range(rows)]


def simulate_levels(
    visits: Sequence[tuple[str, str]],
    panel: Sequence[AnalyteSim] = DEFAULT_PANEL,
    *,
    rng: np.random.Generator,
    elevated: Mapping[str, float] | None = None,
) -> list[SampleSpec]:
    """True concentrations for ``(participant, visit)`` pairs: log-normal around the healthy
    medians, with a participant effect, multiplied by ``elevated[participant]`` (e.g. 4.0 for a
    persistently inflamed participant)."""
    people = {p for p, _ in visits}
    person_effect = {p: rng.normal(0.0, 0.3, size=len(panel)) for p in sorted(people)}
    out = []
    for participant, visit in visits:
        factor = (elevated or {}).get(participant, 1.0)
        logs = person_effect[participant] + rng.normal(0.0, 0.35, size=len(panel))
        truth = {
            a.name: float(a.healthy_median * factor * np.exp(z * a.healthy_log_sd))
            for a, z in zip(panel, logs, strict=True)
        }
        out.append(SampleSpec(participant, visit, truth))
    return out


def _layout(n_samples: int) -> list[tuple[str, str]]:
    """(kind, id) per well in load order: standards S1..S8 x2, 2 blanks, controls x2, samples x2."""
    slots = [("standard", f"S{i}") for i in range(1, LEVELS + 1) for _ in range(2)]
    slots += [("blank", "B"), ("blank", "B")]
    slots += [("control", name) for name in CONTROLS for _ in range(2)]
    slots += [("sample", str(i)) for i in range(n_samples) for _ in range(2)]
    if len(slots) > 96:
        raise ValueError(f"{n_samples} samples in duplicate do not fit a 96-well plate (max 37)")
    return slots


def simulate_plate(
    samples: Sequence[SampleSpec],
    *,
    rng: np.random.Generator,
    plate_id: str = "PLATE-01",
    panel: Sequence[AnalyteSim] = DEFAULT_PANEL,
    noise_cv: float = 0.05,
    gain_sd: float = 0.06,
    out_of_range_rate: float = 0.03,
    low_bead_rate: float = 0.01,
) -> SyntheticPlate:
    """One 96-well plate holding up to 37 samples in duplicate (see module docstring)."""
    wells = well_order()
    gain = float(np.exp(rng.normal(0.0, gain_sd)))
    slots = _layout(len(samples))
    odd = {i: rng.choice([60.0, 0.002]) for i in range(len(samples)) if rng.random() < out_of_range_rate}
    map_rows, reading_rows, truth_rows = [], [], []
    for well, (kind, ident) in zip(wells, slots, strict=False):
        map_rows.append(_map_row(well, kind, ident, samples, panel))
        for a in panel:
            conc = _true_in_well(kind, ident, a, samples, odd)
            signal = float(a.signal(np.array([conc]))[0]) * gain * float(np.exp(rng.normal(0.0, noise_cv)))
            beads = float(rng.integers(8, 30) if rng.random() < low_bead_rate else rng.poisson(80))
            saturated = signal >= a.d * 0.985
            reading_rows.append(
                {
                    "well": well,
                    "analyte": a.name,
                    "signal": round(signal, a.decimals),
                    "bead_count": beads,
                    "saturated": saturated,
                }
            )
    for i, s in enumerate(samples):
        for a in panel:
            truth_rows.append(
                {
                    "participant": s.participant,
                    "visit": s.visit,
                    "control": None,
                    "analyte": a.name,
                    "true_concentration": s.truth[a.name] * odd.get(i, 1.0),
                }
            )
    for name, frac in CONTROLS.items():
        for a in panel:
            truth_rows.append(
                {
                    "participant": None,
                    "visit": None,
                    "control": name,
                    "analyte": a.name,
                    "true_concentration": a.top_standard * frac,
                }
            )
    meta = {"Batch": plate_id, "Program": "xPONENT (simulated)", "gain": f"{gain:.4f}"}
    return SyntheticPlate(
        plate_id,
        pd.DataFrame(map_rows),
        pd.DataFrame(reading_rows),
        pd.DataFrame(truth_rows),
        tuple(panel),
        gain,
        meta,
    )


def _map_row(
    well: str, kind: str, ident: str, samples: Sequence[SampleSpec], panel: Sequence[AnalyteSim]
) -> dict[str, object]:
    row: dict[str, object] = {
        "well": well,
        "role": kind,
        "participant": "",
        "visit": "",
        "dilution": "",
        "replicate_group": ident,
        "control": "",
    }
    if kind == "standard":
        level = int(ident[1:]) - 1
        for a in panel:
            row[f"conc:{a.name}"] = a.top_standard / DILUTION_STEP**level
    elif kind == "control":
        row["control"] = ident
    elif kind == "sample":
        s = samples[int(ident)]
        row.update(
            participant=s.participant,
            visit=s.visit,
            dilution=s.dilution,
            replicate_group=f"{s.participant}/{s.visit}",
        )
    return row


def _true_in_well(
    kind: str, ident: str, a: AnalyteSim, samples: Sequence[SampleSpec], odd: Mapping[int, float]
) -> float:
    if kind == "standard":
        return a.top_standard / DILUTION_STEP ** (int(ident[1:]) - 1)
    if kind == "blank":
        return 0.0
    if kind == "control":
        return a.top_standard * CONTROLS[ident]
    i = int(ident)
    return samples[i].truth[a.name] * odd.get(i, 1.0) / samples[i].dilution


def write_plate(
    plate: SyntheticPlate, folder: str | os.PathLike[str], fmt: PlateFormat = "long"
) -> tuple[Path, Path]:
    """Write the plate map and the readings in format ``fmt``; return (map path, readings path)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    map_path = out / f"{plate.plate_id}_map.csv"
    plate.plate_map.to_csv(map_path, index=False)
    stem = out / f"{plate.plate_id}_{fmt.replace('-', '_')}"
    if fmt == "long":
        path = stem.with_suffix(".csv")
        plate.readings[["well", "analyte", "signal", "bead_count"]].to_csv(path, index=False)
    elif fmt in ("grid", "grid-xlsx"):
        rows = _grid_rows(plate)
        path = stem.with_suffix(".xlsx" if fmt == "grid-xlsx" else ".csv")
        frame = pd.DataFrame(rows)
        if fmt == "grid-xlsx":
            frame.to_excel(path, header=False, index=False)
        else:
            frame.to_csv(path, header=False, index=False)
    elif fmt == "gen5":
        path = stem.with_suffix(".txt")
        path.write_text(_gen5_text(plate), encoding="utf-8")
    else:
        path = stem.with_suffix(".csv")
        path.write_text(_xponent_text(plate), encoding="utf-8")
    return map_path, path


def _cell(r: pd.Series | pd.DataFrame) -> str:
    return "Overflow" if bool(r["saturated"]) else f"{float(str(r['signal'])):.1f}"


def _grid_rows(plate: SyntheticPlate) -> list[list[str]]:
    rows: list[list[str]] = [["Plate", plate.plate_id], ["Time [s]", "0"], ["Temp. [°C]", "22.5"], []]
    for a in plate.panel:
        sub = plate.readings[plate.readings["analyte"] == a.name].set_index("well")
        rows.append([a.name])
        rows.append(["<>", *[str(c) for c in range(1, 13)]])
        for r in range(8):
            letter = chr(65 + r)
            cells = [
                _cell(sub.loc[f"{letter}{c:02d}"]) if f"{letter}{c:02d}" in sub.index else ""
                for c in range(1, 13)
            ]
            rows.append([letter, *cells])
        rows.append([])
    return rows


def _xponent_text(plate: SyntheticPlate) -> str:
    names = [a.name for a in plate.panel]
    order = [w for w in well_order() if w in set(plate.readings["well"])]
    sample_names = dict(zip(plate.plate_map["well"], plate.plate_map["replicate_group"], strict=True))
    lines = [
        "Program,xPONENT,,MAGPIX",
        "Build,4.3.229.0",
        "Date,01/01/2026,9:00 AM",
        "",
        "SN,SIM00000000",
        f"Batch,{plate.plate_id}",
        "Version,1",
        "Operator,lab1",
        "ProtocolName,immunorehab-sim",
        "",
        f"Samples,{len(order)},Min Events,50,Per Bead",
        "",
        "Results",
        "",
    ]
    for block, key in (("Median", "signal"), ("Count", "bead_count")):
        lines.append(f'"DataType:","{block}"')
        lines.append(",".join(["Location", "Sample", *names, "Total Events"]))
        table = plate.readings.pivot(index="well", columns="analyte", values=key)
        for i, well in enumerate(order, start=1):
            loc = f'"{i}(1,{well[0]}{int(well[1:])})"'
            fmt = "{:g}" if key == "signal" else "{:.0f}"
            vals = [fmt.format(table.loc[well, n]) for n in names]
            total = int(plate.readings.loc[plate.readings["well"] == well, "bead_count"].sum())
            lines.append(",".join([loc, sample_names[well], *vals, str(total)]))
        lines.append("")
    return "\n".join(lines) + "\n"


def _gen5_text(plate: SyntheticPlate) -> str:
    """The plate as Gen5 3.x exports a 450 nm absorbance endpoint read to text (one analyte)."""
    if len(plate.panel) != 1:
        raise ValueError(f"a Gen5 export holds one analyte per plate; this plate has {len(plate.panel)}")
    a = plate.panel[0]
    pmap = plate.plate_map.set_index("well")
    cells: dict[str, dict[Hashable, Any]] = {str(r["well"]): r for r in plate.readings.to_dict("records")}
    spots: dict[str, dict[Hashable, Any]] = {str(r["well"]): r for r in plate.plate_map.to_dict("records")}
    blanks = [float(cells[w]["signal"]) for w, r in spots.items() if r["role"] == "blank" and w in cells]
    blank = float(np.mean(blanks)) if blanks else 0.0
    ids = _gen5_well_ids(pmap)

    def conc_or_dilution(well: str) -> str:
        r = spots[well]
        if r["role"] == "standard":
            return f"{float(r[f'conc:{a.name}']):.5g}"
        return f"{1.0 / float(r['dilution']):.5g}" if r["role"] == "sample" else ""

    def od(well: str, minus: float = 0.0) -> str:
        if well not in cells:
            return ""
        r = cells[well]
        return "OVRFLW" if bool(r["saturated"]) else f"{float(r['signal']) - minus:.3f}"

    head = "\t" + "\t".join(str(c) for c in range(1, 13))
    lines = ["", "", "Software Version\t3.12.08", "", "", ""]
    lines += [f"Experiment File Path:\t{plate.plate_id}.xpt", "Protocol File Path:\tIL6_ELISA.prt"]
    lines += ["", "", ""]
    lines += ["Plate Number\tPlate 1", "Date\t1/1/2026", "Time\t9:00:00 AM", "Reader Type:\tSynergy H1"]
    lines += ["Reader Serial Number:\tSIM0000", "Reading Type\tReader", "", "Procedure Details", ""]
    lines += ["Plate Type\t96 WELL PLATE (Use plate lid)", "Read\t450nm", "\tAbsorbance Endpoint"]
    lines += ["\tFull Plate", "\tWavelengths:  450", "", "Layout", head]
    rows = [[f"{chr(65 + r)}{c:02d}" for c in range(1, 13)] for r in range(8)]
    for wells in rows:
        lines.append("\t".join([wells[0][0], *(ids.get(w, "") for w in wells), "Well ID"]))
        lines.append("\t".join(["", *(conc_or_dilution(w) if w in ids else "" for w in wells), "Conc/Dil"]))
    lines += ["", "Results", head]
    for wells in rows:
        lines.append("\t".join([wells[0][0], *(od(w) for w in wells), "450nm:450"]))
        lines.append("\t".join(["", *(od(w, blank) for w in wells), "Blank 450nm:450"]))
        unknown = ("?????" if w in cells else "" for w in wells)
        lines.append("\t".join(["", *unknown, "[Concentration]"]))
    lines += ["", "StdCurve Fitting Results", "", "Curve Name\tCurve Formula\tA\tB\tC\tD\tR2"]
    lines.append("StdCurve\t4-P Fit: y = (A - D)/(1 + (x/C)^B) + D\t?????\t?????\t?????\t?????\t?????")
    return "\n".join(lines) + "\n"


def _gen5_well_ids(pmap: pd.DataFrame) -> dict[str, str]:
    """Gen5's well IDs: STD1.., BLK, CTL1.. and SPL1.. (one number per replicate group)."""
    ids: dict[str, str] = {}
    numbers: dict[tuple[str, str], int] = {}
    for well, r in pmap.iterrows():
        kind, group = str(r["role"]), str(r["replicate_group"])
        if kind == "standard":
            ids[str(well)] = f"STD{group.lstrip('S')}"
        elif kind == "blank":
            ids[str(well)] = "BLK"
        else:
            prefix = "CTL" if kind == "control" else "SPL"
            key = (prefix, group)
            if key not in numbers:
                numbers[key] = 1 + sum(1 for k in numbers if k[0] == prefix)
            ids[str(well)] = f"{prefix}{numbers[key]}"
    return ids
