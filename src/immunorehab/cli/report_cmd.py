"""``report``: the study report (self-contained HTML and an A4 PDF, with a provenance appendix)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from immunorehab.cli.common import DbOpt, TodayOpt, UserOpt, console, open_store, parse_date, require_user

__all__ = ["register"]


def report_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write report.html, report.pdf and provenance.json into.")
    ],
    db: DbOpt = None,
    user: UserOpt = None,
    blinded: Annotated[
        bool,
        typer.Option(
            "--blinded",
            help="Blinded report (arms pooled) even for a statistician or admin; every other role always "
            "gets the blinded report.",
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing report folder.")] = (
        False
    ),
    no_pdf: Annotated[bool, typer.Option("--no-pdf", help="Write the HTML and provenance only.")] = False,
    today: TodayOpt = None,
) -> None:
    """Render the study report: CONSORT flow, baseline, adherence, safety, outcomes, methods, provenance."""
    from rich.progress import Progress

    from immunorehab.report.service import build_report

    by = require_user(user)
    store = open_store(db)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Report", total=5)

        def on_progress(label: str, done: int, total: int) -> None:
            progress.update(task, description=label, completed=done, total=total)

        result = build_report(
            store,
            by=by,
            out=out,
            blinded=blinded,
            overwrite=overwrite,
            today=parse_date(today, option="--today"),
            pdf=not no_pdf,
            on_progress=on_progress,
        )
    pages = f", {result.pages} PDF pages" if result.pages is not None else ""
    console.print(f"{result.mode}. Written for {by} (role {result.role}) in {result.seconds:.1f} s{pages}:")
    for path in result.files:
        console.print(f"  {path}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
