"""``demo``: a synthetic study through every step that exists so far."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from immunorehab.cli.common import console
from immunorehab.cli.randomise_cmd import print_balance

if TYPE_CHECKING:
    from immunorehab.study.demo import DemoResult


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo database and exports.")] = Path(
        "demo-output"
    ),
    participants: Annotated[int, typer.Option("--participants", min=2, help="Number to enrol.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic study.")] = 2025,
    protocol: Annotated[
        Path | None,
        typer.Option("--protocol", help="Protocol YAML (default: the shipped PHOSP-R immune protocol)."),
    ] = None,
) -> None:
    """Create a demo study in a fresh SQLite file, enrol, randomise and show the balance."""
    from rich.progress import Progress, TaskID

    from immunorehab.study.demo import run_demo

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Randomising", total=participants)
        tasks: dict[str, TaskID] = {}

        def step_progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done, total=total)

        result = run_demo(
            out,
            n=participants,
            seed=seed,
            protocol_path=protocol,
            on_progress=lambda: progress.advance(task),
            on_step_progress=step_progress,
        )
    _report(result)


def _report(result: DemoResult) -> None:
    console.print(f"Demo study '{result.study}' in {result.db_path}")
    console.print(
        f"Enrolled {result.enrolled} synthetic participants from {result.import_file.name}; "
        f"{result.ineligible} failed screening ({', '.join(result.failures) or 'none'}), "
        f"{result.randomised} randomised, {result.withdrawn} withdrawn."
    )
    print_balance(result.balance)
    console.print(f"Allocation chain: {result.allocation_check}. Audit chain: {result.audit_check}.")
    console.print(
        f"Visits as of {result.today}: " + ", ".join(f"{v} {k}" for k, v in result.visit_counts.items())
    )
    for path in result.exports:
        console.print(f"Exported {path}")
    for name, lines in result.steps:
        console.rule(name.rpartition(":")[2].replace("_", " "))
        for line in lines:
            console.print(line, soft_wrap=True)
    console.print(
        f"Try: immunorehab participant list --db sqlite:///{result.db_path} --user coord", soft_wrap=True
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
