"""``cytometry``: command group (commands are added as the capability lands)."""

from __future__ import annotations

import typer

__all__ = ["register"]

cytometry_app = typer.Typer(name="cytometry", help="cytometry commands.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cytometry_app, name="cytometry")
