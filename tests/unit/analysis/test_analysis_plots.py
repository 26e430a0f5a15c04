"""Figures are written atomically and never overwrite silently."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from immunorehab.analysis import ancova, forest_plot, kaplan_meier, km_plot
from immunorehab.errors import AnalysisDataError


def test_forest_and_km_plots(tmp_path: Path, anorexia: pd.DataFrame, aml: pd.DataFrame) -> None:
    r = ancova(anorexia, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont", log=True)
    out = forest_plot(r.table, tmp_path / "forest.png", ratio=True, title="Weight")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    svg = km_plot(kaplan_meier(aml, time="time", event="status", group="x"), tmp_path / "km.svg")
    assert "<svg" in svg.read_text()[:500]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forest.png", "km.svg"]  # no temp files left


def test_refuses_overwrite_and_unknown_format(tmp_path: Path, anorexia: pd.DataFrame) -> None:
    r = ancova(anorexia, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont")
    target = tmp_path / "f.png"
    target.write_bytes(b"keep")
    with pytest.raises(AnalysisDataError, match="exists; pass overwrite=True"):
        forest_plot(r.table, target)
    assert target.read_bytes() == b"keep"
    forest_plot(r.table, target, overwrite=True)
    assert target.read_bytes() != b"keep"
    with pytest.raises(AnalysisDataError, match="must end in one of"):
        forest_plot(r.table, tmp_path / "f.gif")
