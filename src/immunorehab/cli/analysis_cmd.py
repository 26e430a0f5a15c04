"""``analyse`` and ``report``: the prespecified analysis and the traceable report (issue 6)."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Commands are added as the analysis capability lands."""
