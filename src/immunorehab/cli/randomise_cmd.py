"""``randomise``: allocate, verify the chain, show balance."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from immunorehab.cli.common import DbOpt, UserOpt, console, open_store, parse_date, require_user
from immunorehab.errors import ConfigError, IntegrityError
from immunorehab.study.allocation import BalanceReport, allocation_balance, randomise, verify_allocations


def randomise_command(
    participant_id: Annotated[
        str | None, typer.Argument(help="Participant to randomise, e.g. LEI-0007.")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check the allocation hash chain and sequence.")
    ] = False,
    balance: Annotated[
        bool, typer.Option("--balance", help="Print allocation balance per stratum and overall.")
    ] = False,
    date: Annotated[str | None, typer.Option("--date", help="Randomisation date (default today).")] = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Randomise a participant and print the allocated arm; or --verify / --balance."""
    who = require_user(user)
    store = open_store(db)
    if verify:
        report = verify_allocations(store, by=who)
        if not report.ok:
            raise IntegrityError(f"allocation chain BROKEN at {report.problem}")
        console.print(
            f"Allocation chain intact: {report.checked} allocations verified against the concealed sequence."
        )
    if balance:
        print_balance(allocation_balance(store, by=who))
    if participant_id is None:
        if not (verify or balance):
            raise ConfigError("give a PARTICIPANT_ID to randomise, or --verify / --balance")
        return
    result = randomise(store, by=who, participant_id=participant_id, on=parse_date(date, option="--date"))
    console.print(
        f"{result.participant_id} allocated to [bold]{result.arm}[/bold] ({result.arm_label}) "
        f"on {result.allocated_on}; "
        f"sequence {result.sequence}, stratum {result.stratum or '(none)'}"
    )


def print_balance(report: BalanceReport) -> None:
    factors = list(report.by_factor_level) or ["stratum"]
    table = Table(
        *factors, *report.arms, "total", title=f"Allocation balance per stratum ({report.total} randomised)"
    )
    for stratum, counts in report.by_stratum.items():
        levels = dict(part.split("=", 1) for part in stratum.split("|") if "=" in part)
        cells = [levels.get(f, stratum if f == "stratum" else "") for f in factors]
        table.add_row(*cells, *(str(counts[a]) for a in report.arms), str(sum(counts.values())))
    table.add_section()
    table.add_row(
        "overall",
        *([""] * (len(factors) - 1)),
        *(str(report.overall[a]) for a in report.arms),
        str(report.total),
        style="bold",
    )
    console.print(table)
    if report.by_factor_level:
        margins = Table(
            "factor", "level", *report.arms, "max diff", title="Balance by factor level (margins)"
        )
        for factor, by_level in report.by_factor_level.items():
            for level_name, level_counts in by_level.items():
                values = [level_counts[a] for a in report.arms]
                margins.add_row(factor, level_name, *map(str, values), str(max(values) - min(values)))
        console.print(margins)


def register(app: typer.Typer) -> None:
    app.command("randomise")(randomise_command)
