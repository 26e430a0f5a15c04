"""``study``, ``protocol`` and ``user`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from immunorehab.cli.common import DbOpt, UserOpt, console, open_store, require_user
from immunorehab.study.models import ROLES
from immunorehab.study.protocol import load_protocol
from immunorehab.study.service import actor_of, add_user, create_study, get_protocol, get_study, list_users

study_app = typer.Typer(help="Create and inspect the study.", no_args_is_help=True)
protocol_app = typer.Typer(help="Validate protocol files.", no_args_is_help=True)
user_app = typer.Typer(help="Users and roles (admin only).", no_args_is_help=True)


@protocol_app.command("check")
def protocol_check(file: Annotated[Path, typer.Argument(help="Protocol YAML file.")]) -> None:
    """Validate a protocol file; report every problem with its key path."""
    protocol = load_protocol(file)
    console.print(
        f"[green]OK[/green] {file}: study '{protocol.study.id}' v{protocol.study.version}, "
        f"{len(protocol.arms)} arms ({':'.join(str(a.ratio) for a in protocol.arms)}), "
        f"{len(protocol.stratification)} stratification factor(s), "
        f"randomisation {protocol.randomisation.method}, "
        f"{len(protocol.eligibility)} eligibility criteria, {len(protocol.visits)} visits, "
        f"sha256 {protocol.sha256()[:12]}"
    )


@study_app.command("create")
def study_create(
    protocol: Annotated[Path, typer.Argument(help="Protocol YAML file.")],
    admin: Annotated[str, typer.Option("--admin", help="User name of the study's first admin.")],
    db: DbOpt = None,
    seed: Annotated[
        int | None, typer.Option("--seed", hidden=True, help="Fixed seed (tests/demo only).")
    ] = None,
) -> None:
    """Create the study in a new database from a protocol file (seed drawn and concealed)."""
    store, info = create_study(db, protocol, admin=admin, seed=seed)
    store.dispose()
    console.print(
        f"Created study '{info.slug}' ({info.title}) in "
        f"{store.engine.url.render_as_string(hide_password=True)}; "
        f"admin user '{admin}'. Randomisation seed stored concealed."
    )


@study_app.command("show")
def study_show(
    db: DbOpt = None,
    user: UserOpt = None,
    reveal_seed: Annotated[
        bool, typer.Option("--reveal-seed", help="Show the concealed seed (admin only).")
    ] = False,
) -> None:
    """Show the study, its protocol hash and arms."""
    store = open_store(db)
    with store.read(require_user(user)) as session:
        actor = actor_of(session)
        study = get_study(session)
        protocol = get_protocol(session)
        console.print(f"Study '{study.slug}': {study.title}")
        console.print(f"Protocol version {protocol.study.version}, sha256 {study.protocol_sha256}")
        console.print(f"Created {study.created_at:%Y-%m-%d %H:%M} by {study.created_by}")
        console.print("Arms: " + ", ".join(f"{a.id} ({a.label}, ratio {a.ratio})" for a in protocol.arms))
        if reveal_seed:
            actor.require("admin", action="see the randomisation seed")
            console.print(f"Randomisation seed: {study.seed}")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Login name (no real names or e-mails).")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Add a user with a role."""
    add_user(open_store(db), by=require_user(user), username=name, role=role)
    console.print(f"Added user '{name}' with role {role}.")


@user_app.command("list")
def user_list(db: DbOpt = None, user: UserOpt = None) -> None:
    """List users and roles."""
    table = Table("user", "role", "active")
    for name, role, active in list_users(open_store(db), by=require_user(user)):
        table.add_row(name, role, "yes" if active else "no")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
    app.add_typer(protocol_app, name="protocol")
    app.add_typer(user_app, name="user")
