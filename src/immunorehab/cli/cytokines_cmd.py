"""``cytokines``: plates to concentrations (fit, import), QC across plates, inflammation profile;
and ``simulate plate`` (synthetic plates with ground truth)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from immunorehab.cli.common import DbOpt, ReasonOpt, UserOpt, console, open_store, require_user
from immunorehab.errors import ConfigError

if TYPE_CHECKING:
    from immunorehab.cytokines.assay import AssayConfig
    from immunorehab.cytokines.process import PlateResult

__all__ = ["register"]

cytokines_app = typer.Typer(
    name="cytokines",
    help="Cytokine plates: standard curves, concentrations, QC across plates, inflammation profile.",
    no_args_is_help=True,
)

PlateMapArg = Annotated[Path, typer.Argument(help="Plate map CSV/XLSX (well, role, concentration, ...).")]
ReadingsArg = Annotated[
    Path,
    typer.Argument(
        help="Readings: plate-reader grid (CSV/XLSX), tidy long CSV, Luminex xPONENT CSV or Gen5 text export."
    ),
]
AssayOpt = Annotated[Path, typer.Option("--assay", help="Assay configuration YAML (analytes, units, rules).")]
FormatOpt = Annotated[
    str, typer.Option("--format", help="Readings format: auto, grid, long, xponent or gen5.")
]
AnalyteOpt = Annotated[
    str | None,
    typer.Option("--analyte", help="Analyte of a single unnamed grid or of a Gen5 plate."),
]
ReadOpt = Annotated[
    str | None,
    typer.Option("--read", help="Gen5 export: the read to use (default: the raw one, e.g. 450nm:450)."),
]
PlateIdOpt = Annotated[
    str | None, typer.Option("--plate-id", help="Plate id (default: the export's batch name).")
]


def _process(
    plate_map: Path,
    readings: Path,
    assay_path: Path,
    fmt: str,
    analyte: str | None,
    plate_id: str | None,
    read: str | None = None,
) -> tuple[AssayConfig, PlateResult, dict[str, str]]:
    from rich.progress import Progress

    from immunorehab.cytokines.assay import load_assay
    from immunorehab.cytokines.io_plate import READING_FORMATS, read_plate_map, read_readings
    from immunorehab.cytokines.process import process_plate

    if fmt not in READING_FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(READING_FORMATS)}, got {fmt!r}")
    assay = load_assay(assay_path)
    pmap = read_plate_map(plate_map)
    reads = read_readings(readings, format=fmt, analyte=analyte, read=read)  # type: ignore[arg-type]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Fitting standard curves", total=len(assay.names))
        result = process_plate(
            pmap,
            reads,
            assay,
            plate_id=plate_id or reads.metadata.get("Batch") or readings.stem,
            on_progress=lambda _t, done, total: progress.update(task, completed=done, total=total),
        )
    return assay, result, reads.metadata


def _num(value: object) -> str:
    number = float(str(value))
    return "-" if number != number else f"{number:.4g}"


def _print_plate(result: PlateResult) -> None:
    table = Table(
        "analyte",
        "model",
        "status",
        "R²",
        "LLOQ",
        "ULOQ",
        "LOD",
        "unit",
        "reason",
        title=f"Plate {result.plate_id}: standard curves",
    )
    for row in result.curve_table().to_dict("records"):
        style = "green" if row["status"] == "ok" else "red"
        table.add_row(
            str(row["analyte"]),
            str(row["model"]),
            f"[{style}]{row['status']}[/]",
            *(_num(row[k]) for k in ("r_squared", "lloq", "uloq", "lod")),
            str(row["unit"]),
            str(row["reason"]),
        )
    console.print(table)
    flags = Counter(f for flag in result.results["flag"] for f in str(flag).split(";"))
    console.print("Results by flag: " + ", ".join(f"{k} {v}" for k, v in flags.most_common()))
    for note in result.notes:
        console.print(f"  note: {note}", soft_wrap=True)


@cytokines_app.command("fit")
def fit_command(
    plate_map: PlateMapArg,
    readings: ReadingsArg,
    assay: AssayOpt,
    out: Annotated[Path, typer.Option("--out", help="Output folder (created if needed).")],
    fmt: FormatOpt = "auto",
    analyte: AnalyteOpt = None,
    read: ReadOpt = None,
    plate_id: PlateIdOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
) -> None:
    """Fit every analyte's standard curve; write concentrations.csv, curves.csv, standards.csv and plots."""
    from immunorehab.cytokines.plots import plot_standard_curve
    from immunorehab.study.export import write_frame

    cfg, result, _ = _process(plate_map, readings, assay, fmt, analyte, plate_id, read)
    out.mkdir(parents=True, exist_ok=True)
    write_frame(result.concentrations(), out / "concentrations.csv", overwrite=overwrite)
    write_frame(result.curve_table(), out / "curves.csv", overwrite=overwrite)
    write_frame(result.standards, out / "standards.csv", overwrite=overwrite)
    controls = result.results[result.results["role"] == "control"]
    write_frame(controls, out / "controls.csv", overwrite=overwrite)
    for name in cfg.names:
        plot_standard_curve(result, name, out / f"curve_{_safe(name)}.png")
    _print_plate(result)
    console.print(f"Wrote {out / 'concentrations.csv'} and {len(cfg.names)} curve plots in {out}")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


@cytokines_app.command("import")
def import_command(
    plate_map: PlateMapArg,
    readings: ReadingsArg,
    assay: AssayOpt,
    fmt: FormatOpt = "auto",
    analyte: AnalyteOpt = None,
    read: ReadOpt = None,
    plate_id: PlateIdOpt = None,
    reason: ReasonOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Fit a plate and store its results against participants and visits (all or nothing)."""
    from immunorehab.cytokines.io_plate import file_sha256
    from immunorehab.cytokines.service import import_plate

    by = require_user(user)
    store = open_store(db)
    cfg, result, meta = _process(plate_map, readings, assay, fmt, analyte, plate_id, read)
    summary = import_plate(
        store,
        by=by,
        result=result,
        readings_file=str(readings),
        plate_map_file=str(plate_map),
        assay_name=cfg.assay.name,
        assay_sha256=file_sha256(assay),
        metadata=meta,
        reason=reason,
    )
    _print_plate(result)
    verb = "Replaced" if summary.replaced else "Imported"
    console.print(
        f"{verb} plate {summary.plate_id} (run {summary.run_order}): {summary.curves_ok} curves fitted, "
        f"{summary.curves_failed} failed, {summary.results} results ({summary.flagged} flagged)."
    )


@cytokines_app.command("qc")
def qc_command(
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for Levey-Jennings charts and tables.")
    ] = None,
    baseline: Annotated[
        int | None, typer.Option("--baseline", help="First N plates define the target.")
    ] = None,
    linear: Annotated[bool, typer.Option("--linear", help="Chart concentrations, not log10.")] = False,
    normalise: Annotated[
        bool, typer.Option("--normalise", help="Also write bridged sample concentrations.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Controls across plates: Levey-Jennings with Westgard rules, inter-plate CV, bridging."""
    from immunorehab.cytokines.plots import plot_levey_jennings
    from immunorehab.cytokines.qc import bridge_normalise, bridging_factors, inter_plate_cv, levey_jennings
    from immunorehab.cytokines.service import stored_controls, stored_results
    from immunorehab.study.export import write_frame

    by = require_user(user)
    store = open_store(db)
    controls = stored_controls(store, by=by)
    if controls.empty:
        raise ConfigError("no control results stored yet: import plates with `immunorehab cytokines import`")
    lj = levey_jennings(controls, log=not linear, baseline=baseline)
    cv = inter_plate_cv(controls)
    table = Table(
        "control", "analyte", "plates", "inter-plate CV", "rejected runs", title="Controls across plates"
    )
    for row in cv.itertuples(index=False):
        bad = lj[(lj["control"] == row.control) & (lj["analyte"] == row.analyte) & lj["reject"]]
        runs = ", ".join(f"{p} ({r})" for p, r in zip(bad["plate_id"], bad["rules"], strict=True)) or "-"
        table.add_row(str(row.control), str(row.analyte), str(row.n_plates), f"{row.cv:.1%}", runs)
    console.print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_frame(lj, out / "levey_jennings.csv", overwrite=overwrite)
        write_frame(cv, out / "inter_plate_cv.csv", overwrite=overwrite)
        for (control, analyte), _ in lj.groupby(["control", "analyte"]):
            plot_levey_jennings(
                lj, str(control), str(analyte), out / f"lj_{_safe(str(control))}_{_safe(str(analyte))}.png"
            )
        if normalise:
            bridged = bridge_normalise(stored_results(store, by=by), bridging_factors(controls))
            write_frame(bridged, out / "concentrations_bridged.csv", overwrite=overwrite)
        console.print(f"Wrote Levey-Jennings charts and tables in {out}")


@cytokines_app.command("profile")
def profile_command(
    reference: Annotated[
        Path | None, typer.Option("--reference", help="Healthy reference CSV (default: shipped).")
    ] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Composite z for 'elevated'.")] = 1.645,
    from_day: Annotated[
        int, typer.Option("--from-day", help="Persistence judged from this protocol day.")
    ] = 365,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for profile.csv, scores.csv, persistence.csv.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Inflammation profile: log-scale z vs healthy reference, composite score, persistent elevation."""
    from immunorehab.cytokines.profile import (
        composite_scores,
        inflammation_profile,
        load_reference,
        persistently_elevated,
    )
    from immunorehab.cytokines.service import stored_results
    from immunorehab.study.export import write_frame
    from immunorehab.study.service import get_protocol

    by = require_user(user)
    store = open_store(db)
    with store.read(by) as session:
        days = {v.id: v.day for v in get_protocol(session).visits}
    ref = load_reference(reference)
    results = stored_results(store, by=by)
    prof = inflammation_profile(results, ref, threshold=threshold)
    scores = composite_scores(prof, threshold=threshold)
    persist = persistently_elevated(scores, days, from_day=from_day)
    scored = sorted(ref.frame.loc[ref.frame["has_range"], "analyte"])
    unscored = sorted(set(results["analyte"]) - set(scored))
    console.print(
        f"Scored against {ref.source}: {', '.join(scored)}; no published range: {', '.join(unscored) or '-'}"
    )
    table = Table(
        "visit", "participant-visits", "elevated", "median composite z", title="Composite inflammation score"
    )
    for visit, g in scores.groupby("visit", sort=False):
        table.add_row(
            str(visit), str(len(g)), str(int(g["elevated"].sum())), f"{g['composite'].median():.2f}"
        )
    console.print(table)
    flagged = persist[persist["persistently_elevated"]]
    n_late = int((persist["late_visits"] != "").sum())
    console.print(
        f"Persistently elevated from day {from_day}: {len(flagged)} of {n_late} "
        f"participants with late visits: {', '.join(flagged['participant']) or '-'}"
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_frame(prof, out / "profile.csv", overwrite=overwrite)
        write_frame(scores, out / "scores.csv", overwrite=overwrite)
        write_frame(persist, out / "persistence.csv", overwrite=overwrite)


def simulate_plate_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="long, grid, grid-xlsx, xponent or all (8-plex bead panel); gen5 (one-analyte IL-6 ELISA).",
        ),
    ] = "all",
    samples: Annotated[int, typer.Option("--samples", min=1, max=37, help="Samples in duplicate.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    plate_id: Annotated[str, typer.Option("--plate-id", help="Plate id.")] = "SIM-P01",
) -> None:
    """A synthetic 96-well cytokine plate with ground truth (plate map, readings, truth.csv)."""
    import numpy as np

    from immunorehab.simulate.plates import (
        DEFAULT_PANEL,
        ELISA_IL6,
        simulate_levels,
        simulate_plate,
        write_plate,
    )

    formats = ["long", "grid", "grid-xlsx", "xponent"] if fmt == "all" else [fmt]
    if any(f not in ("long", "grid", "grid-xlsx", "xponent", "gen5") for f in formats):
        raise ConfigError(f"--format must be long, grid, grid-xlsx, xponent, all or gen5, got {fmt!r}")
    panel = (ELISA_IL6,) if fmt == "gen5" else DEFAULT_PANEL
    rng = np.random.default_rng(seed)
    people = [(f"SIM-{i + 1:04d}", "baseline") for i in range(samples)]
    specs = simulate_levels(people, panel, rng=rng)
    plate = simulate_plate(specs, rng=rng, plate_id=plate_id, panel=panel)
    out.mkdir(parents=True, exist_ok=True)
    for f in formats:
        map_path, path = write_plate(plate, out, f)  # type: ignore[arg-type]
        console.print(f"Wrote {path} ({f})")
    plate.truth.to_csv(out / f"{plate_id}_truth.csv", index=False)
    console.print(f"Wrote {map_path} and {out / f'{plate_id}_truth.csv'}")


def register(app: typer.Typer) -> None:
    from immunorehab.cli.simulate_cmd import simulate_app

    app.add_typer(cytokines_app, name="cytokines")
    simulate_app.command("plate")(simulate_plate_command)
