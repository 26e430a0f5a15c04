"""The ``immunorehab`` command: one entry point, one error boundary.

Domain errors (:class:`~immunorehab.ImmunorehabError`) become ``Error: ...`` on stderr
and exit code 1, without a traceback; ``immunorehab --debug ...`` (or
``IMMUNOREHAB_DEBUG=1``) re-raises them so the traceback shows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from immunorehab import __version__
from immunorehab.cli import (
    analysis_cmd,
    audit_cmd,
    cytokines_cmd,
    cytometry_cmd,
    demo_cmd,
    export_cmd,
    participant_cmd,
    power_cmd,
    randomise_cmd,
    rehab_cmd,
    report_cmd,
    simulate_cmd,
    simulate_study_cmd,
    study_cmd,
    visit_cmd,
)
from immunorehab.cli.common import close_stores
from immunorehab.errors import ImmunorehabError

__all__ = ["app", "main", "run"]

app = typer.Typer(
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
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Exercise-rehabilitation trials for post-COVID syndrome with immune recovery as the outcome."""


study_cmd.register(app)
participant_cmd.register(app)
randomise_cmd.register(app)
visit_cmd.register(app)
audit_cmd.register(app)
export_cmd.register(app)
demo_cmd.register(app)
rehab_cmd.register(app)
cytometry_cmd.register(app)
cytokines_cmd.register(app)
analysis_cmd.register(app)
simulate_cmd.register(app)
simulate_study_cmd.register(app)
report_cmd.register(app)
power_cmd.register(app)


def _debug(argv: Sequence[str]) -> bool:
    if os.environ.get("IMMUNOREHAB_DEBUG") == "1":
        return True
    for arg in argv:
        if arg == "--debug":
            return True
        if not arg.startswith("-"):
            return False
    return False


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="immunorehab")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except ImmunorehabError as exc:
        if _debug(args):
            raise
        sys.stderr.write(f"Error: {exc}\n")
        sys.stderr.flush()
        return 1
    finally:
        close_stores()
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
