"""Gating-ML 2.0 import and export (work in progress in this commit)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from immunorehab.errors import GatingMLError

if TYPE_CHECKING:
    from .strategy import GatingStrategy


def read_gatingml(path: str | Path) -> GatingStrategy:
    raise GatingMLError(f"{path}: Gating-ML import is being implemented")


def write_gatingml(strategy: GatingStrategy, path: str | Path, *, overwrite: bool = False) -> Path:
    raise GatingMLError(f"{path}: Gating-ML export is being implemented")


def gatingml_string(strategy: GatingStrategy) -> str:
    return repr([(g, dict(strategy.transforms), dict(strategy.spillovers)) for g in strategy.gates])
