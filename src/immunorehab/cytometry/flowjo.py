"""FlowJo 10 workspaces (work in progress in this commit)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from immunorehab.errors import FlowJoError

if TYPE_CHECKING:
    from .strategy import GatingStrategy


def read_flowjo_strategy(path: str | Path, sample: str, *, group: str | None = None) -> GatingStrategy:
    raise FlowJoError(f"{path}: FlowJo import is being implemented")
