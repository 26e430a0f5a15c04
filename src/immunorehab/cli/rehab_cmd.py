"""``rehab``: command group (commands are added as the capability lands)."""

from __future__ import annotations

import typer

__all__ = ["register"]

rehab_app = typer.Typer(name="rehab", help="rehab commands.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(rehab_app, name="rehab")
