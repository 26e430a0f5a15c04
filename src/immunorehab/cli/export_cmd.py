"""``export``: participants, visit data (CSV/Parquet) and the REDCap data dictionary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from immunorehab.cli.common import DbOpt, UserOpt, console, open_store, require_user
from immunorehab.study.service import get_protocol

export_app = typer.Typer(help="Export study data.", no_args_is_help=True)

OutArg = Annotated[Path, typer.Argument(help="Output file (.csv or .parquet).")]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="csv or parquet (default: from the file name).")
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")]


@export_app.command("participants")
def export_participants(
    out: OutArg,
    fmt: FormatOpt = None,
    overwrite: OverwriteOpt = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """One row per participant (allocation columns omitted for blinded roles)."""
    from immunorehab.study.export import participants_frame, write_frame

    frame = participants_frame(open_store(db), by=require_user(user))
    write_frame(frame, out, fmt=fmt, overwrite=overwrite)
    console.print(f"Wrote {len(frame)} participants to {out}")


@export_app.command("visits")
def export_visits(
    out: OutArg,
    fmt: FormatOpt = None,
    overwrite: OverwriteOpt = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Tidy visit data: one row per participant-visit-measure."""
    from immunorehab.study.export import visits_frame, write_frame

    frame = visits_frame(open_store(db), by=require_user(user))
    write_frame(frame, out, fmt=fmt, overwrite=overwrite)
    console.print(f"Wrote {len(frame)} visit values to {out}")


@export_app.command("redcap-dictionary")
def export_redcap(
    out: Annotated[Path, typer.Argument(help="Output CSV.")],
    overwrite: OverwriteOpt = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """The REDCap data dictionary built from the study's protocol."""
    from immunorehab.study.redcap import write_redcap_data_dictionary

    with open_store(db).read(require_user(user)) as session:
        protocol = get_protocol(session)
    write_redcap_data_dictionary(protocol, out, overwrite=overwrite)
    console.print(f"Wrote REDCap data dictionary to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
