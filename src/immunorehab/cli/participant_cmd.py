"""``participant`` commands: add, import, list, update, withdraw."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from immunorehab.cli.common import (
    DbOpt,
    ReasonOpt,
    UserOpt,
    console,
    open_store,
    parse_assignments,
    parse_date,
    require_user,
)
from immunorehab.errors import ConfigError
from immunorehab.study.participants import (
    add_participant,
    import_participants,
    list_participants,
    update_participant,
    withdraw_participant,
)
from immunorehab.study.service import get_protocol

participant_app = typer.Typer(help="Enrol and manage pseudonymous participants.", no_args_is_help=True)

Opt = Annotated[str | None, typer.Option()]


@participant_app.command("add")
def participant_add(
    site: Annotated[str, typer.Option("--site", help="Site code, e.g. LEI.")],
    consent_date: Annotated[
        str | None, typer.Option("--consent-date", help="YYYY-MM-DD (empty while screening).")
    ] = None,
    age_years: Annotated[str | None, typer.Option("--age-years")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="female, male or other.")] = None,
    who_severity: Annotated[
        str | None, typer.Option("--who-severity", help="WHO clinical progression scale 0-10.")
    ] = None,
    hospitalised: Annotated[str | None, typer.Option("--hospitalised", help="yes/no.")] = None,
    icu_admitted: Annotated[str | None, typer.Option("--icu-admitted", help="yes/no.")] = None,
    invasive_ventilation: Annotated[
        str | None, typer.Option("--invasive-ventilation", help="yes/no.")
    ] = None,
    vaccination_doses: Annotated[str | None, typer.Option("--vaccination-doses")] = None,
    cmv_serostatus: Annotated[
        str | None, typer.Option("--cmv-serostatus", help="positive, negative, unknown.")
    ] = None,
    days_since_infection: Annotated[str | None, typer.Option("--days-since-infection")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Enrol one participant; prints the assigned pseudonymous ID and eligibility."""
    values: dict[str, Any] = {
        "site": site,
        "consent_date": consent_date,
        "age_years": age_years,
        "sex": sex,
        "who_severity": who_severity,
        "hospitalised": hospitalised,
        "icu_admitted": icu_admitted,
        "invasive_ventilation": invasive_ventilation,
        "vaccination_doses": vaccination_doses,
        "cmv_serostatus": cmv_serostatus,
        "days_since_infection": days_since_infection,
    }
    row = add_participant(open_store(db), by=require_user(user), values=values)
    status = "eligible" if row.eligible else f"NOT eligible (fails {row.failed_criteria})"
    console.print(f"Enrolled {row.participant_id}: {status}")


@participant_app.command("import")
def participant_import(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet, one row per participant.")],
    redcap: Annotated[
        bool, typer.Option("--redcap", help="File is a REDCap raw export of our data dictionary.")
    ] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Import participants: every row, or none (all problems are listed)."""
    store = open_store(db)
    who = require_user(user)
    ignore: set[str] = set()
    maps: dict[str, dict[str, Any]] = {}
    if redcap:
        from immunorehab.study.participants import read_table
        from immunorehab.study.redcap import redcap_choice_codes

        with store.read(who) as session:
            protocol = get_protocol(session)
        maps = {k: dict(v) for k, v in redcap_choice_codes(protocol).items()}
        columns = [c for row in read_table(file)[:1] for c in row] if file.exists() else []
        ignore = {c for c in columns if c.startswith("redcap_") or c.endswith("_complete")}
        ignore |= {f"{v.id}_{m.id}" for v in protocol.visits for m in v.measures}
    ids = import_participants(store, by=who, path=file, ignore_columns=ignore, value_maps=maps)
    console.print(f"Imported {len(ids)} participants ({ids[0]} .. {ids[-1]}).")


@participant_app.command("list")
def participant_list(
    db: DbOpt = None,
    user: UserOpt = None,
    site: Annotated[str | None, typer.Option("--site", help="Only this site.")] = None,
) -> None:
    """List participants (allocation hidden from blinded roles)."""
    people = list_participants(open_store(db), by=require_user(user), site=site)
    blinded = all(p.arm is None for p in people)
    table = Table(
        "participant",
        "consent",
        "age",
        "sex",
        "WHO",
        "eligible",
        "randomised",
        "arm",
        "status",
        title=f"{len(people)} participants",
    )
    for p in people:
        c = p.covariates
        table.add_row(
            p.participant_id,
            str(c["consent_date"] or "-"),
            str(c["age_years"]),
            str(c["sex"]),
            str(c["who_severity"]),
            "yes" if p.eligible else "no: " + ",".join(p.failed_criteria),
            str(p.randomised_on or "-"),
            p.arm or ("(blinded)" if blinded and p.randomised_on else "-"),
            f"withdrawn {p.withdrawn_on}" if p.withdrawn_on else "active",
        )
    console.print(table)


@participant_app.command("update")
def participant_update(
    participant_id: Annotated[str, typer.Argument()],
    set_: Annotated[list[str], typer.Option("--set", help="FIELD=VALUE, repeatable.")],
    reason: ReasonOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Correct baseline data (a reason is required; kept in the audit trail)."""
    if not reason:
        raise ConfigError("a reason is required to change existing data: pass --reason TEXT")
    changes = update_participant(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        changes=parse_assignments(set_, option="--set"),
        reason=reason,
    )
    if not changes:
        console.print("Nothing changed.")
    for key, (old, new) in changes.items():
        console.print(f"{participant_id} {key}: {old} -> {new}")


@participant_app.command("withdraw")
def participant_withdraw(
    participant_id: Annotated[str, typer.Argument()],
    reason: ReasonOpt = None,
    date: Annotated[str | None, typer.Option("--date", help="Withdrawal date, default today.")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Withdraw a participant (data kept and flagged)."""
    withdraw_participant(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        reason=reason or "",
        on=parse_date(date, option="--date"),
    )
    console.print(f"{participant_id.upper()} withdrawn.")


def register(app: typer.Typer) -> None:
    app.add_typer(participant_app, name="participant")
