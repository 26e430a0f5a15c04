"""Gate plots: a density panel per parent and dimension pair, gates drawn, PNG and SVG written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from immunorehab.cytometry.pipeline import GateOptions, SampleAnalysis, analyse_sample
from immunorehab.cytometry.plots import gate_panels, plot_gates, write_gate_plot
from immunorehab.errors import ConfigError
from immunorehab.simulate.fcs import simulate_panel_sample


@pytest.fixture(scope="module")
def analysis() -> SampleAnalysis:
    sample, _ = simulate_panel_sample(8_000, rng=np.random.default_rng(41))
    return analyse_sample(sample, GateOptions.create(mfi_markers=()))


def test_panels_group_gates_by_parent_and_dimensions(analysis: SampleAnalysis) -> None:
    panels = {p.gates: p for p in gate_panels(analysis.strategy)}
    memory = panels[("cd4_naive", "cd4_cm", "cd4_em", "cd4_temra")]
    assert memory.parent == "cd4"
    assert (memory.x.channel, memory.y.channel) == ("PE-Cy7-A", "FITC-A")  # CCR7 x CD45RA
    assert panels[("cd4", "cd8")].parent == "t_cells"
    live = panels[("live",)]  # 1-D viability gate shown against side scatter
    assert live.x.channel == "BV510-A" and live.y is not None and live.y.channel == "SSC-A"
    assert len(panels) == 15


def test_figure_has_one_axes_per_panel(analysis: SampleAnalysis) -> None:
    fig = plot_gates(analysis.strategy, analysis.sample, analysis.results)
    assert len(fig.axes) == 15
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("cd8 (") for t in titles)
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(label.startswith("cd8_naive ") and label.endswith("%") for label in labels)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_write_png_and_svg(analysis: SampleAnalysis, tmp_path: Path, fmt: str) -> None:
    path = write_gate_plot(analysis.strategy, analysis.sample, analysis.results, tmp_path / f"g.{fmt}")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data[:2000]
    with pytest.raises(ConfigError, match="exists"):
        write_gate_plot(analysis.strategy, analysis.sample, analysis.results, path)
    assert [p.name for p in tmp_path.iterdir()] == [f"g.{fmt}"]  # no temp files left


def test_unknown_format(analysis: SampleAnalysis, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must end in \.png or \.svg"):
        write_gate_plot(analysis.strategy, analysis.sample, analysis.results, tmp_path / "g.pdf")
