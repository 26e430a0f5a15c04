"""Demo step: cytokine plates for the demo participants' blood draws, fitted, stored, profiled."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from immunorehab.cytokines.assay import load_assay
from immunorehab.cytokines.io_plate import file_sha256, read_plate_map, read_readings
from immunorehab.cytokines.plots import plot_levey_jennings, plot_standard_curve
from immunorehab.cytokines.process import process_plate
from immunorehab.cytokines.profile import (
    composite_scores,
    inflammation_profile,
    load_reference,
    persistently_elevated,
)
from immunorehab.cytokines.qc import inter_plate_cv, levey_jennings
from immunorehab.cytokines.service import import_plate, stored_controls, stored_results
from immunorehab.simulate.plates import PlateFormat, simulate_levels, simulate_plate, write_plate
from immunorehab.study.demo import DemoContext
from immunorehab.study.models import VisitRecord

__all__ = ["BLOOD_VISITS", "demo_cytokines", "example_assay_path"]

BLOOD_VISITS = ("baseline", "week8", "month6", "month12", "month24")
FORMATS: tuple[PlateFormat, ...] = ("xponent", "long", "grid")
PER_PLATE = 37


def example_assay_path() -> Path:
    """The example long-COVID panel shipped with the package."""
    return Path(__file__).with_name("data") / "long_covid_panel.yaml"


def _draws(ctx: DemoContext) -> list[tuple[str, str]]:
    with ctx.store.read("lab1") as session:
        rows = session.execute(select(VisitRecord.participant_id, VisitRecord.visit_id)).tuples().all()
    order = {v: i for i, v in enumerate(BLOOD_VISITS)}
    return sorted(((p, v) for p, v in rows if v in order), key=lambda pv: (order[pv[1]], pv[0]))


def demo_cytokines(ctx: DemoContext) -> list[str]:
    """Simulate, fit, store and profile the demo study's cytokine plates (a few seconds)."""
    rng = np.random.default_rng(ctx.seed + 5)
    draws = _draws(ctx)
    people = sorted({p for p, _ in draws})
    persistent = set(rng.choice(people, size=max(1, len(people) // 6), replace=False)) if people else set()
    specs = simulate_levels(draws, rng=rng, elevated=dict.fromkeys(persistent, 6.0))
    folder = ctx.out / "cytokines"
    assay_path = example_assay_path()
    assay, assay_sha = load_assay(assay_path), file_sha256(assay_path)
    formats: Counter[str] = Counter()
    chunks = [specs[i : i + PER_PLATE] for i in range(0, len(specs), PER_PLATE)]
    for n, chunk in enumerate(chunks, start=1):
        plate = simulate_plate(chunk, rng=rng, plate_id=f"DEMO-P{n:02d}")
        fmt = FORMATS[(n - 1) % len(FORMATS)]
        map_path, readings_path = write_plate(plate, folder / "plates", fmt)
        readings = read_readings(readings_path)
        result = process_plate(read_plate_map(map_path), readings, assay, plate_id=plate.plate_id)
        import_plate(
            ctx.store,
            by="lab1",
            result=result,
            readings_file=readings_path.name,
            plate_map_file=map_path.name,
            assay_name=assay.assay.name,
            assay_sha256=assay_sha,
            metadata=readings.metadata,
        )
        if n == 1:
            for name in assay.names[:3]:
                plot_standard_curve(result, name, folder / f"curve_{plate.plate_id}_{name}.png")
        formats[fmt] += 1
        if ctx.on_progress is not None:
            ctx.on_progress("Cytokine plates", n, len(chunks))
    return _summary(ctx, folder, len(chunks), formats, persistent)


def _summary(
    ctx: DemoContext, folder: Path, n_plates: int, formats: Counter[str], truth: set[str]
) -> list[str]:
    results = stored_results(ctx.store, by="stats1")
    results.to_csv(folder / "concentrations.csv", index=False)
    controls = stored_controls(ctx.store, by="stats1")
    lj = levey_jennings(controls)
    if not lj.empty:
        plot_levey_jennings(lj, "CTRL-H", "IL-6", folder / "levey_jennings_CTRL-H_IL-6.png")
    cv = inter_plate_cv(controls)
    with ctx.store.read("lab1") as session:
        from immunorehab.cytokines.tables import CytokineCurve

        statuses = Counter(session.scalars(select(CytokineCurve.status)).all())
    profile = inflammation_profile(results, load_reference())
    scores = composite_scores(profile)
    days = {v.id: v.day for v in ctx.protocol.visits}
    persist = persistently_elevated(scores, days)
    late = persist[persist["late_visits"] != ""]
    flagged = persist[persist["persistently_elevated"]]
    hits = len(set(flagged["participant"]) & truth)
    flags = Counter(f for flag in results["flag"] for f in str(flag).split(";"))
    return [
        f"Cytokine plates: {n_plates} plates ({', '.join(f'{v} {k}' for k, v in sorted(formats.items()))}), "
        f"{len(results)} sample results for {results['participant'].nunique()} participants "
        f"({', '.join(sorted(results['visit'].unique()))}).",
        f"Standard curves: {statuses.get('ok', 0)} fitted, {statuses.get('failed', 0)} failed. "
        f"Flags: {', '.join(f'{k} {v}' for k, v in flags.most_common())}.",
        f"Controls: inter-plate CV median {pd.to_numeric(cv['cv']).median():.1%}; "
        f"Levey-Jennings rejections {int(lj['reject'].sum()) if not lj.empty else 0} "
        f"of {len(lj)} control results.",
        f"Persistently elevated (composite z >= 1.645 at every visit from 12 months): {len(flagged)} of "
        f"{len(late)} participants with 12/24-month draws "
        f"({hits} of them simulated as persistently inflamed).",
        f"Plots and concentrations in {folder}",
    ]
