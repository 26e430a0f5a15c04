"""``simulate``: synthetic data with known ground truth (FCS files, plates, whole studies).

Each capability adds its command to :data:`simulate_app` from its own CLI module
(``simulate fcs`` from cytometry, ``simulate plate`` from cytokines, ``simulate study``
from analysis).
"""

from __future__ import annotations

import typer

__all__ = ["register", "simulate_app"]

simulate_app = typer.Typer(
    name="simulate",
    help="Synthetic data with known ground truth: FCS files, cytokine plates, whole studies.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
