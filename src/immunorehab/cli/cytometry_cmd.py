"""``cytometry``: gate FCS files with a panel template, batches into the study store, stored results;
and ``simulate fcs`` (synthetic panel files with ground truth)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from immunorehab.cli.common import (
    DbOpt,
    ReasonOpt,
    UserOpt,
    console,
    err_console,
    open_store,
    parse_assignments,
    require_user,
)
from immunorehab.errors import ConfigError

if TYPE_CHECKING:
    from immunorehab.cytometry.absolute import AbsoluteCounts
    from immunorehab.cytometry.batch import BatchReport
    from immunorehab.cytometry.pipeline import GateOptions, SampleAnalysis

__all__ = ["register"]

cytometry_app = typer.Typer(
    name="cytometry",
    help="Flow cytometry: gate FCS files with a panel template, batches into the study store, results.",
    no_args_is_help=True,
)

TemplateOpt = Annotated[
    str,
    typer.Option("--template", help="Template name (tcell-memory) or a Gating-ML file, e.g. an edited one."),
]
PanelOpt = Annotated[
    Path | None, typer.Option("--panel", help="Panel CSV (marker,channel); default: the template's panel.")
]
AutoOpt = Annotated[
    bool,
    typer.Option(
        "--auto/--no-auto", help="Place gates per sample from its densities (off: gates as written)."
    ),
]
MfiOpt = Annotated[
    str | None, typer.Option("--mfi", help="Markers for median intensities, comma-separated (default: all).")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (created).")]
KEY_GATES = ("lymphocytes", "live", "t_cells", "cd4", "cd8", "cd4_naive", "cd8_naive", "nk")


def _options(template: str, panel: Path | None, auto: bool, mfi: str | None) -> GateOptions:
    from immunorehab.cytometry.pipeline import GateOptions

    markers = None if mfi is None else tuple(m.strip() for m in mfi.split(",") if m.strip())
    return GateOptions.create(template=template, panel=panel, auto=auto, mfi_markers=markers)


def _absolute(
    beads_per_tube: float | None, volume_ul: float | None, lymph: float | None
) -> AbsoluteCounts | None:
    from immunorehab.cytometry.absolute import DualPlatform, SinglePlatform

    if (beads_per_tube is None) != (volume_ul is None):
        raise ConfigError("single-platform counts need both --beads-per-tube and --volume-ul")
    if beads_per_tube is not None and volume_ul is not None:
        if lymph is not None:
            raise ConfigError(
                "give bead inputs (single platform) or --lymphocytes-per-ul (dual platform), not both"
            )
        return SinglePlatform(beads_per_tube, volume_ul)
    return DualPlatform(lymph) if lymph is not None else None


def _summary_table(analyses: list[SampleAnalysis]) -> Table:
    table = Table("sample", "events", *(f"{g} %" for g in KEY_GATES), "QC flags", title="Gated (% of parent)")
    for a in analyses:
        pct = dict(zip(a.counts["gate"], a.counts["pct_parent"], strict=True))
        cells = [f"{pct[g]:.1f}" if g in pct else "-" for g in KEY_GATES]
        flags = ", ".join(sorted({f.code for f in a.flags})) or "-"
        table.add_row(a.sample.name, f"{a.sample.n_events:,}", *cells, flags)
    return table


@cytometry_app.command("gate")
def gate_command(
    files: Annotated[list[Path], typer.Argument(help="FCS files.", exists=True, dir_okay=False)],
    out: OutOpt,
    template: TemplateOpt = "tcell-memory",
    panel: PanelOpt = None,
    auto: AutoOpt = True,
    mfi: MfiOpt = None,
    membership: Annotated[
        bool, typer.Option("--membership", help="Per-event gate membership (Parquet).")
    ] = False,
    h5ad: Annotated[bool, typer.Option("--h5ad", help="AnnData (.h5ad) with events and membership.")] = False,
    export_gate: Annotated[
        list[str] | None,
        typer.Option("--export-gate", help="Write this population's events as FCS; repeatable."),
    ] = None,
    plot_format: Annotated[str, typer.Option("--plot-format", help="png, svg or none.")] = "png",
    beads_per_tube: Annotated[
        float | None, typer.Option("--beads-per-tube", help="Counting beads per tube.")
    ] = None,
    volume_ul: Annotated[
        float | None, typer.Option("--volume-ul", help="Blood volume in the bead tube (uL).")
    ] = None,
    lymphocytes_per_ul: Annotated[
        float | None, typer.Option("--lymphocytes-per-ul", help="Absolute lymphocyte count (dual platform).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")] = False,
) -> None:
    """Gate FCS files: counts.csv, gate moves, QC flags, per-sample Gating-ML and gate plots in --out."""
    from rich.progress import Progress

    from immunorehab.cytometry.export import sample_outputs
    from immunorehab.cytometry.io_fcs import read_fcs
    from immunorehab.cytometry.pipeline import analyse_sample, stack_frames
    from immunorehab.errors import ImmunorehabError
    from immunorehab.study.export import write_frame

    if plot_format not in ("png", "svg", "none"):
        raise ConfigError(f"--plot-format must be png, svg or none, got {plot_format!r}")
    options = _options(template, panel, auto, mfi)
    absolute = _absolute(beads_per_tube, volume_ul, lymphocytes_per_ul)
    strategy = options.strategy()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("counts.csv", "gate_moves.csv", "qc_flags.csv"):
        if (out / name).exists() and not overwrite:
            raise ConfigError(f"{out / name} exists: pass --overwrite to replace it")
    analyses, failed = [], 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Gating", total=len(files))
        for path in files:
            try:
                analysis = analyse_sample(read_fcs(path), options, strategy=strategy, absolute=absolute)
                sample_outputs(
                    analysis,
                    out,
                    plot_format=None if plot_format == "none" else plot_format,
                    membership=membership,
                    h5ad=h5ad,
                    export_gates=export_gate or (),
                    overwrite=overwrite,
                )
                analyses.append(analysis)
            except ImmunorehabError as exc:
                failed += 1
                err_console.print(f"[red]Failed:[/] {exc}", soft_wrap=True)
            progress.advance(task)
    if not analyses:
        raise ConfigError(f"no file could be gated ({failed} failed)")
    write_frame(stack_frames([a.counts for a in analyses]), out / "counts.csv", overwrite=True)
    write_frame(stack_frames([a.moves_frame() for a in analyses]), out / "gate_moves.csv", overwrite=True)
    write_frame(stack_frames([a.flags_frame() for a in analyses]), out / "qc_flags.csv", overwrite=True)
    console.print(_summary_table(analyses))
    n_files = f"{len(analyses)} file{'s' if len(analyses) != 1 else ''}"
    console.print(f"Wrote {out / 'counts.csv'} ({n_files}, strategy {options.sha256(strategy)[:12]})")
    if failed:
        raise typer.Exit(1)


def _print_batch(report: BatchReport, out: Path) -> None:
    console.print(
        f"Batch: {report.count('gated')} gated, {report.count('skipped')} skipped (already processed), "
        f"{report.count('failed')} failed, {report.stored} stored; {report.seconds:.1f} s"
    )
    flags = report.flag_counts()
    if flags:
        console.print("QC flags (files): " + ", ".join(f"{k} {v}" for k, v in flags.items()))
    for o in report.failures:
        err_console.print(f"[red]Failed[/] row {o.row.row} {o.row.file}: {o.error}", soft_wrap=True)
    console.print(f"Results in {out}: counts.csv, qc_flags.csv, gate_moves.csv, failures.csv")


@cytometry_app.command("batch")
def batch_command(
    manifest: Annotated[Path, typer.Argument(help="Manifest CSV: file, participant_id, visit_id, ...")],
    out: OutOpt,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Local worker processes.")] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask distributed scheduler address, e.g. tcp://host:8786."),
    ] = None,
    template: TemplateOpt = "tcell-memory",
    panel: PanelOpt = None,
    auto: AutoOpt = True,
    mfi: MfiOpt = None,
    plots: Annotated[
        str | None, typer.Option("--plots", help="Write gate plots per file: png or svg.")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Re-gate files already stored with this strategy (needs --reason)."),
    ] = False,
    reason: ReasonOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Gate every file of a manifest in parallel; resumable; results into the study store with --db."""
    from rich.progress import Progress, TaskID

    from immunorehab.cytometry.batch import run_batch
    from immunorehab.cytometry.manifest import read_manifest

    if plots not in (None, "png", "svg"):
        raise ConfigError(f"--plots must be png or svg, got {plots!r}")
    parsed = read_manifest(manifest)
    options = _options(template, panel, auto, mfi)
    store = open_store(db) if db else None
    by = require_user(user) if store is not None else user
    with Progress(console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done, total=total)

        report = run_batch(
            parsed,
            out=out,
            options=options,
            workers=workers,
            scheduler=scheduler,
            store=store,
            user=by,
            plots=plots,  # type: ignore[arg-type]
            replace_stored=replace,
            reason=reason,
            on_progress=on_progress,
        )
    _print_batch(report, out)
    if report.failures:
        raise typer.Exit(1)


@cytometry_app.command("results")
def results_command(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write all rows to this CSV/Parquet file.")
    ] = None,
    participant: Annotated[str | None, typer.Option("--participant", help="One participant only.")] = None,
    gate: Annotated[list[str] | None, typer.Option("--gate", help="Show these gates (repeatable).")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Stored gate results per participant and visit (pct of parent, cells/uL, QC flags)."""
    from immunorehab.cytometry.service import results_frame
    from immunorehab.study.export import write_frame

    frame = results_frame(open_store(db), by=require_user(user), participant_id=participant)
    if out is not None:
        write_frame(frame, out)
        console.print(f"Wrote {len(frame)} rows to {out}")
        return
    if frame.empty:
        console.print("No cytometry results stored yet.")
        return
    shown = gate or ["t_cells", "cd4", "cd8", "cd8_naive", "nk"]
    table = Table("participant", "visit", "tube", *(f"{g} %" for g in shown), "QC flags")
    for (pid, visit, tube), rows in frame.groupby(["participant_id", "visit_id", "tube"], sort=True):
        pct = dict(zip(rows["gate"], rows["pct_parent"], strict=True))
        table.add_row(
            str(pid),
            str(visit),
            str(tube),
            *(_fmt(pct.get(g)) for g in shown),
            rows["qc_flags"].iloc[0] or "-",
        )
    console.print(table)


def _fmt(value: Any) -> str:
    return "-" if value is None or value != value else f"{float(value):.1f}"


@cytometry_app.command("template")
def template_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the template and its panel into.")],
    name: Annotated[str, typer.Option("--name", help="Template name.")] = "tcell-memory",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
) -> None:
    """Copy a shipped template (Gating-ML) and its default panel (CSV) for editing."""
    from immunorehab.cytometry.template import TEMPLATES, template_path
    from immunorehab.study.export import atomic_write

    if name not in TEMPLATES:
        raise ConfigError(f"unknown template {name!r}; shipped: {', '.join(TEMPLATES)}")
    out.mkdir(parents=True, exist_ok=True)
    source = template_path(name)
    for filename in TEMPLATES[name]:
        path = atomic_write(out / filename, _copier(source.parent / filename), overwrite=overwrite)
        console.print(f"Wrote {path}")


def _copier(source: Path) -> Callable[[Path], None]:
    data = source.read_bytes()

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return write


def simulate_fcs_command(
    out: Annotated[Path, typer.Argument(help="FCS file to write.")],
    events: Annotated[int, typer.Option("--events", min=100, help="Number of events.")] = 50_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    fraction: Annotated[
        list[str] | None,
        typer.Option("--fraction", help="NAME=VALUE, e.g. cd8_naive=0.2 or nk=0.15; repeatable."),
    ] = None,
    beads: Annotated[
        bool, typer.Option("--beads", help="Add counting beads (50,000 per 50 uL tube).")
    ] = False,
    lymphocytes_per_ul: Annotated[
        float, typer.Option("--lymphocytes-per-ul", help="True live lymphocytes/uL (sets the bead ratio).")
    ] = 1800.0,
    no_spillover: Annotated[bool, typer.Option("--no-spillover", help="Do not apply spillover.")] = False,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Truth JSON (default: OUT.truth.json).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Per-event labels CSV/Parquet (default: OUT.labels.csv).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
) -> None:
    """Write a synthetic T-cell memory panel FCS file and its ground truth."""
    import numpy as np

    from immunorehab.simulate.fcs import (
        BeadSpec,
        PanelFractions,
        simulate_panel,
        write_panel_fcs,
        write_truth,
    )

    values = {k: float(v) for k, v in parse_assignments(fraction, option="--fraction").items()}
    fractions = PanelFractions().with_values(**values)
    bead_spec = BeadSpec(lymphocytes_per_ul=lymphocytes_per_ul) if beads else None
    panel = simulate_panel(
        events,
        rng=np.random.default_rng(seed),
        fractions=fractions,
        beads=bead_spec,
        spillover=not no_spillover,
        name=out.stem,
        seed=seed,
    )
    truth_path = truth or out.with_suffix(".truth.json")
    labels_path = labels or out.with_suffix(".labels.csv")
    write_panel_fcs(panel, out, overwrite=overwrite)
    write_truth(panel.truth, truth_path, labels_path=labels_path, overwrite=overwrite)
    kinds = Counter(panel.truth.labels["cell_type"].astype(str))
    console.print(f"Wrote {out} ({panel.n_events:,} events x {len(panel.channels)} channels, seed {seed})")
    console.print("Events: " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    console.print(f"Truth: {truth_path}; labels: {labels_path}")


def register(app: typer.Typer) -> None:
    from immunorehab.cli.simulate_cmd import simulate_app

    app.add_typer(cytometry_app, name="cytometry")
    simulate_app.command("fcs")(simulate_fcs_command)
