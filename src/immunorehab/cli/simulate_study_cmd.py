"""``simulate study``: a whole synthetic study built with the platform's own capabilities."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from immunorehab.cli.common import console, err_console

__all__ = ["progress_bars", "register", "simulate_study_command"]


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display; yields ``on_progress(task, done, total)`` (one bar per task)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield update


def simulate_study_command(
    preset: Annotated[str, typer.Option("--preset", help="seed-trial or seed-cohort.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (new or empty).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random stream.")] = 2025,
    effect: Annotated[
        list[str] | None,
        typer.Option(
            "--effect",
            help="Trial arm effect for completers, NAME=VALUE, repeatable: a count ratio per subset "
            "(cd4_naive, cd4_cm, cd4_em, cd8_naive, cd8_cm, cd8_em, or all), iswt=METRES, eswt=SECONDS, "
            "sts=REPS, or none.",
        ),
    ] = None,
    events: Annotated[
        int | None, typer.Option("--events", min=1000, help="FCS events per file (default: the preset's).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes gating FCS files.")] = 2,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier simulated study in --out.")
    ] = False,
) -> None:
    """Build a whole synthetic study (seed-trial or seed-cohort) and its ground truth.

    Participants are imported, randomised, visited, rehabilitated, bled, gated and assayed through
    the platform's own services; truth.json and truth_*.csv hold what the simulator knows.
    """
    from immunorehab.simulate.presets import parse_effects
    from immunorehab.simulate.study import simulate_study

    effects = parse_effects(effect or [])
    with progress_bars() as on_progress:
        result = simulate_study(
            preset,
            out,
            seed=seed,
            effects=effects,
            events_per_file=events,
            workers=workers,
            overwrite=overwrite,
            on_progress=on_progress,
        )
    for line in result.describe():
        console.print(line, soft_wrap=True)
    console.print(
        f"Try: immunorehab analyse --db {result.db_url} --user stats1 --out {result.out / 'analysis'} "
        f"--today {result.today}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``simulate study`` to the shared ``simulate`` command group."""
    from immunorehab.cli.simulate_cmd import simulate_app

    simulate_app.command("study")(simulate_study_command)
