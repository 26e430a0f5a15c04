"""``visits`` (schedule status) and ``visit record``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from immunorehab.cli.common import (
    DbOpt,
    ReasonOpt,
    TodayOpt,
    UserOpt,
    console,
    open_store,
    parse_assignments,
    parse_date,
    require_user,
)
from immunorehab.errors import ConfigError
from immunorehab.study.visits import VisitStatus, record_visit, visit_statuses

visits_app = typer.Typer(help="Visit schedule: due, overdue, out-of-window.", no_args_is_help=True)
visit_app = typer.Typer(help="Record a visit's data.", no_args_is_help=True)

_STYLE = {"due": "yellow", "overdue": "red", "out_of_window": "magenta", "completed": "green"}


def _table(rows: list[VisitStatus], title: str) -> Table:
    table = Table("participant", "visit", "target", "window", "status", "visit date", title=title)
    for r in rows:
        window = f"{r.window_start} .. {r.window_end}" if r.window_start else "-"
        table.add_row(
            r.participant_id,
            r.visit_id,
            str(r.target or "-"),
            window,
            f"[{_STYLE.get(r.status, 'white')}]{r.status}[/]",
            str(r.visit_date or "-"),
        )
    return table


@visits_app.command("due")
def visits_due(
    today: TodayOpt = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also list upcoming and completed visits.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Visits due now, overdue (window passed, no data) and recorded out of window."""
    day = parse_date(today, option="--today") or dt.date.today()
    rows = visit_statuses(open_store(db), by=require_user(user), today=day)
    shown = rows if show_all else [r for r in rows if r.status in ("due", "overdue", "out_of_window")]
    counts = {s: sum(r.status == s for r in rows) for s in ("due", "overdue", "out_of_window")}
    console.print(
        _table(
            shown,
            f"Visits as of {day}: {counts['due']} due, {counts['overdue']} overdue, "
            f"{counts['out_of_window']} out of window",
        )
    )


@visits_app.command("schedule")
def visits_schedule(
    participant_id: Annotated[str, typer.Argument()],
    today: TodayOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """One participant's schedule with windows and status."""
    day = parse_date(today, option="--today") or dt.date.today()
    rows = visit_statuses(open_store(db), by=require_user(user), today=day, participant_id=participant_id)
    console.print(_table(rows, f"Schedule of {participant_id.upper()} as of {day}"))


@visit_app.command("record")
def visit_record(
    participant_id: Annotated[str, typer.Argument()],
    visit_id: Annotated[str, typer.Argument(help="Visit id from the protocol, e.g. baseline, week8.")],
    date: Annotated[str, typer.Option("--date", help="Date the visit took place (YYYY-MM-DD).")],
    value: Annotated[list[str], typer.Option("--value", help="MEASURE=VALUE, repeatable.")],
    reason: ReasonOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Record a visit's values; all are validated against the protocol, nothing stored if any is bad."""
    visit_date = parse_date(date, option="--date")
    if visit_date is None:
        raise ConfigError("--date is required")
    status = record_visit(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        visit_id=visit_id,
        visit_date=visit_date,
        values=parse_assignments(value, option="--value"),
        reason=reason,
    )
    console.print(
        f"Recorded {status.participant_id} {status.visit_id} on {status.visit_date}: {status.status}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(visits_app, name="visits")
    app.add_typer(visit_app, name="visit")
