"""The laboratory side of a simulated study: FCS files gated in a batch, cytokine plates fitted.

Both go through the lab's own path: FCS files and a manifest on disk, ``run_batch`` on local
worker processes storing results as ``lab1`` (a blinded role); plates written in a reader's
format, read back, fitted (:func:`~immunorehab.cytokines.process.process_plate`) and imported.
The truth of every file and sample is kept beside: the simulator's per-gate fractions (counted
on the events' true labels) and the true concentration in each tube.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from immunorehab.cytokines.assay import load_assay
from immunorehab.cytokines.io_plate import file_sha256, read_plate_map, read_readings
from immunorehab.cytokines.process import process_plate
from immunorehab.cytokines.service import import_plate
from immunorehab.cytometry.batch import BatchReport, run_batch
from immunorehab.cytometry.manifest import read_manifest
from immunorehab.cytometry.pipeline import GateOptions
from immunorehab.simulate._build import BloodDraw, Build
from immunorehab.simulate.fcs import BeadSpec, simulate_panel, write_panel_fcs
from immunorehab.simulate.plates import PlateFormat, SampleSpec, simulate_plate, write_plate
from immunorehab.study.export import atomic_write

__all__ = ["assay_path", "gate_files", "run_plates", "write_fcs_files"]

BEADS_PER_TUBE = 50_000.0
VOLUME_UL = 50.0
PER_PLATE = 37
FORMATS: tuple[PlateFormat, ...] = ("xponent", "long", "grid")
TRUTH_GATES = (
    "lymphocytes",
    "t_cells",
    "cd4",
    "cd8",
    *(f"{s}_{m}" for s in ("cd4", "cd8") for m in ("naive", "cm", "em", "temra", "activated", "senescent")),
    "nk",
)


def assay_path() -> Path:
    """The packaged long-COVID 8-plex assay the plates are fitted with."""
    from immunorehab.cytokines.demo import example_assay_path

    return example_assay_path()


def _fcs_truth(draw: BloodDraw, name: str, gates: pd.DataFrame) -> list[dict[str, Any]]:
    rows: dict[str, dict[Any, Any]] = {str(r["gate"]): r for r in gates.to_dict(orient="records")}
    return [
        {
            "file": name,
            "participant_id": draw.participant_id,
            "visit_id": draw.visit_id,
            "gate": gate,
            "parent": rows[gate]["parent"],
            "true_parent_count": int(rows[rows[gate]["parent"]]["count"])
            if rows[gate]["parent"] in rows
            else -1,
            "expected_pct_parent": round(float(rows[gate]["expected_pct_parent"]), 6),
            "true_pct_parent": round(float(rows[gate]["pct_parent"]), 6),
            "true_count": int(rows[gate]["count"]),
            "true_cells_per_ul": round(float(rows[gate]["cells_per_ul"]), 4),
        }
        for gate in TRUTH_GATES
    ]


def write_fcs_files(build: Build, draws: list[BloodDraw], n_events: int) -> Path:
    """One FCS file per blood draw (true fractions from the draw's immune state) and a manifest."""
    folder = build.out / "cytometry" / "fcs"
    folder.mkdir(parents=True, exist_ok=True)
    rng = build.rng("fcs")
    rows = []
    for k, draw in enumerate(draws, start=1):
        name = f"{draw.participant_id}_{draw.visit_id}.fcs"
        panel = simulate_panel(
            n_events,
            rng=rng,
            fractions=draw.state.panel_fractions(),
            beads=BeadSpec(BEADS_PER_TUBE, VOLUME_UL, draw.state.count("lymphocytes")),
            name=name.removesuffix(".fcs"),
        )
        write_panel_fcs(panel, folder / name, overwrite=True)
        build.fcs_truth += _fcs_truth(draw, name, panel.truth.gates)
        minutes = int(rng.integers(-45, 46))
        drawn = dt.datetime.combine(draw.drawn_on, dt.time(9, 0)) + dt.timedelta(minutes=minutes)
        rows.append(
            {
                "file": f"fcs/{name}",
                "participant_id": draw.participant_id,
                "visit_id": draw.visit_id,
                "tube": "1",
                "draw_time": drawn.isoformat(timespec="minutes"),
                "beads_per_tube": int(BEADS_PER_TUBE),
                "volume_ul": int(VOLUME_UL),
            }
        )
        build.progress("Simulating FCS files", k, len(draws))
    manifest = build.out / "cytometry" / "manifest.csv"
    frame = pd.DataFrame(rows)
    return atomic_write(manifest, lambda tmp: frame.to_csv(tmp, index=False), overwrite=True)


def gate_files(build: Build, manifest: Path, workers: int) -> BatchReport:
    """Gate every file of the manifest with the tcell-memory template and store the results as lab1."""
    return run_batch(
        read_manifest(manifest),
        out=build.out / "cytometry" / "batch",
        options=GateOptions.create(mfi_markers=()),
        workers=workers,
        store=build.store,
        user="lab1",
        on_progress=build.on_progress,
    )


def _plates(draws: list[BloodDraw]) -> list[list[BloodDraw]]:
    """Samples per plate: a participant's visits together on one plate where they fit."""
    by_person: dict[str, list[BloodDraw]] = {}
    for draw in draws:
        by_person.setdefault(draw.participant_id, []).append(draw)
    plates: list[list[BloodDraw]] = [[]]
    for samples in by_person.values():
        if len(plates[-1]) + len(samples) > PER_PLATE:
            plates.append([])
        plates[-1].extend(samples)
    return [p for p in plates if p]


def run_plates(build: Build, draws: list[BloodDraw], prefix: str) -> dict[str, Any]:
    """Simulate, write, read, fit and import the plates of every blood draw; return a summary."""
    rng = build.rng("plates")
    folder = build.out / "cytokines" / "plates"
    path = assay_path()
    assay, assay_sha = load_assay(path), file_sha256(path)
    chunks = _plates(draws)
    curves: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    for n, chunk in enumerate(chunks, start=1):
        specs = [SampleSpec(d.participant_id, d.visit_id, dict(d.concentrations)) for d in chunk]
        plate = simulate_plate(specs, rng=rng, plate_id=f"{prefix}-P{n:02d}", out_of_range_rate=0.01)
        map_path, readings_path = write_plate(plate, folder, FORMATS[(n - 1) % len(FORMATS)])
        readings = read_readings(readings_path)
        result = process_plate(read_plate_map(map_path), readings, assay, plate_id=plate.plate_id)
        import_plate(
            build.store,
            by="lab1",
            result=result,
            readings_file=readings_path.name,
            plate_map_file=map_path.name,
            assay_name=assay.assay.name,
            assay_sha256=assay_sha,
            metadata=readings.metadata,
        )
        curves.update("ok" if c.ok else "failed" for c in result.curves.values())
        samples = result.results[result.results["role"] == "sample"]
        flags.update(str(f) for f in samples["flag"])
        truth = plate.truth[plate.truth["control"].isna()].drop(columns=["control"])
        for row in truth.to_dict(orient="records"):
            build.cytokine_truth.append({"plate_id": plate.plate_id, **{str(k): v for k, v in row.items()}})
        build.progress("Fitting cytokine plates", n, len(chunks))
    return {"plates": len(chunks), "curves": dict(curves), "sample_flags": dict(flags)}
