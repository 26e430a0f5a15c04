"""``analyse``: the protocol's prespecified analysis over the study store (issue 6).

``register(app)`` adds the command; other modules (the report) register their own commands
next to it from :mod:`immunorehab.cli.main`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from immunorehab.analysis.outputs import refuse_existing, write_study_analysis
from immunorehab.analysis.study import StudyAnalysis, run_study_analysis
from immunorehab.cli.common import (
    DbOpt,
    TodayOpt,
    UserOpt,
    console,
    err_console,
    open_store,
    parse_date,
    require_user,
)

__all__ = ["analyse", "register"]


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _num(value: object, digits: int = 2) -> str:
    number = _float(value)
    return "-" if not math.isfinite(number) else f"{number:.{digits}f}"


def _p(value: object) -> str:
    number = _float(value)
    if not math.isfinite(number):
        return "-"
    return "<0.001" if number < 0.001 else f"{number:.3f}"


def _primary_table(analysis: StudyAnalysis) -> Table:
    table = Table(title="Primary outcome(s)", title_justify="left")
    for column in (
        "outcome",
        "population",
        "contrast",
        "estimate (95% CI)",
        "scale",
        "p",
        "p adj.",
        "n",
        "missing",
    ):
        table.add_column(column, justify="right" if column in ("p", "p adj.", "n", "missing") else "left")
    primary = analysis.primary()
    for row in primary.itertuples(index=False):
        ci = f"{_num(row.estimate)} ({_num(row.ci_low)} to {_num(row.ci_high)})"
        table.add_row(
            str(row.label),
            str(row.population),
            str(row.contrast),
            ci,
            str(row.scale),
            _p(row.p_value),
            f"{_p(row.p_adjusted)} ({row.adjust_method})",
            str(row.n),
            str(row.n_missing),
        )
    return table


def _pooled_table(analysis: StudyAnalysis) -> Table:
    table = Table(title="Blinded pooled analysis (arms pooled, no contrasts)", title_justify="left")
    for column in ("outcome", "visit", "n", "mean", "sd", "median"):
        table.add_column(column, justify="left" if column in ("outcome", "visit") else "right")
    primary = {o["id"] for o in analysis.methods.get("outcomes", []) if o.get("role") == "primary"}
    rows = analysis.descriptives[analysis.descriptives["outcome"].isin(primary)]
    for row in rows.itertuples(index=False):
        table.add_row(
            str(row.outcome), str(row.visit), str(row.n), _num(row.mean), _num(row.sd), _num(row.median)
        )
    return table


def _report(analysis: StudyAnalysis, written: list[Path], out: Path) -> None:
    mode = "blinded pooled" if analysis.blinded else "unblinded"
    described = analysis.descriptives["outcome"].nunique() if not analysis.descriptives.empty else 0
    console.print(
        f"{analysis.design.capitalize()} analysis ({mode}): {len(analysis.results)} result row(s), "
        f"{described} outcome(s) described, "
        f"{len(analysis.cohort)} cohort table(s)."
    )
    if analysis.blinded:
        console.print(_pooled_table(analysis))
    elif not analysis.primary().empty:
        console.print(_primary_table(analysis))
    for skipped in analysis.methods.get("skipped", []):
        err_console.print(f"Skipped {skipped['outcome']}: {skipped['reason']}")
    for warning in analysis.methods.get("warnings", []):
        err_console.print(f"Warning: {warning}")
    console.print(f"Wrote {len(written)} files to {out} (results.csv, descriptives.csv, analysis.json, ...).")


def analyse(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for results.csv, descriptives.csv, analysis.json.")
    ],
    db: DbOpt = None,
    user: UserOpt = None,
    blinded: Annotated[
        bool, typer.Option("--blinded", help="Blinded pooled analysis (arms pooled, no contrasts).")
    ] = False,
    skip_unavailable: Annotated[
        bool,
        typer.Option(
            "--skip-unavailable",
            help="Leave out outcomes without data (listed in analysis.json) instead of failing.",
        ),
    ] = False,
    population: Annotated[
        list[str] | None,
        typer.Option("--population", help="Only this population (itt, per_protocol); repeatable."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files already in --out.")] = False,
    today: TodayOpt = None,
) -> None:
    """Run the protocol's prespecified analysis and write tidy results.

    Only statistician and admin users get the unblinded analysis (by arm, with contrasts);
    every other role gets the blinded pooled analysis.
    """
    who = require_user(user)
    refuse_existing(out, overwrite=overwrite)
    store = open_store(db)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("Study analysis", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=name, completed=done, total=total)

        analysis = run_study_analysis(
            store,
            by=who,
            blinded=True if blinded else None,
            populations=population,
            skip_unavailable=skip_unavailable,
            today=parse_date(today, option="--today"),
            on_progress=progress,
        )
    written = write_study_analysis(analysis, out, overwrite=overwrite)
    _report(analysis, written, out)


def register(app: typer.Typer) -> None:
    """Add ``analyse`` to the ``immunorehab`` command."""
    app.command("analyse")(analyse)
