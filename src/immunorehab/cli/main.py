"""The ``immunorehab`` command: one entry point, one error boundary.

Domain errors (:class:`~immunorehab.ImmunorehabError`) become one ``Error: ...`` line on
stderr and exit code 1; ``immunorehab --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from immunorehab import __version__
from immunorehab.cli import audit_cmd, demo_cmd, export_cmd, participant_cmd, randomise_cmd, study_cmd, visit_cmd
from immunorehab.errors import ImmunorehabError

__all__ = ["app", "main"]


class _Failure(click.ClickException):
    exit_code = 1


class ImmunorehabGroup(TyperGroup):
    """Translates domain errors into a clear message and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImmunorehabError as exc:
            if ctx.meta.get("immunorehab.debug") or os.environ.get("IMMUNOREHAB_DEBUG") == "1":
                raise
            raise _Failure(str(exc)) from None


app = typer.Typer(
    cls=ImmunorehabGroup,
    name="immunorehab",
    help="Exercise-rehabilitation trials for post-COVID syndrome with immune recovery as the outcome.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"immunorehab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.meta["immunorehab.debug"] = debug


study_cmd.register(app)
participant_cmd.register(app)
randomise_cmd.register(app)
visit_cmd.register(app)
audit_cmd.register(app)
export_cmd.register(app)
demo_cmd.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="immunorehab")
