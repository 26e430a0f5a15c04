"""``cytokines``: command group (commands are added as the capability lands)."""

from __future__ import annotations

import typer

__all__ = ["register"]

cytokines_app = typer.Typer(name="cytokines", help="cytokines commands.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cytokines_app, name="cytokines")
