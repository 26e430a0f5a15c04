"""The shipped tcell-memory template: public gate ids, subset definitions, XSD validity, panel mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from immunorehab.cytometry import GatingStrategy, PolygonGate, RectangleGate
from immunorehab.cytometry.panel import Panel
from immunorehab.cytometry.template import (
    check_sample_channels,
    default_panel,
    load_template,
    strategy_channels,
    template_path,
)
from immunorehab.errors import PanelError, TemplateError
from immunorehab.simulate.fcs import FLUORESCENCE, simulate_panel_sample

REPO = Path(__file__).resolve().parents[3]
XSD = REPO.parent / "shared/data/external/flowkit/src/flowkit/_resources/Gating-ML.v2.0.xsd"

PARENTS = {
    "beads": None,
    "qc": None,
    "lymphocytes": "qc",
    "singlets": "lymphocytes",
    "live": "singlets",
    "t_cells": "live",
    "cd4": "t_cells",
    "cd8": "t_cells",
    "nk": "live",
    "nk_cd56bright": "nk",
    "nk_cd56dim": "nk",
    **{
        f"{s}_{k}": s
        for s in ("cd4", "cd8")
        for k in ("naive", "cm", "em", "temra", "activated", "senescent")
    },
}
# (marker, "+" = minimum bound / "-" = maximum bound) of each phenotype gate (domain.md C1)
PHENOTYPES = {
    "naive": {"CCR7": "+", "CD45RA": "+"},
    "cm": {"CCR7": "+", "CD45RA": "-"},
    "em": {"CCR7": "-", "CD45RA": "-"},
    "temra": {"CCR7": "-", "CD45RA": "+"},
    "activated": {"HLA-DR": "+", "CD38": "+"},
    "senescent": {"CD57": "+", "CD28": "-"},
}


@pytest.fixture(scope="module")
def template() -> GatingStrategy:
    return load_template("tcell-memory")


def test_shipped_gatingml_validates_against_the_isac_schema() -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    document = etree.parse(str(template_path("tcell-memory")))
    assert schema.validate(document), schema.error_log


def test_public_gate_ids_and_hierarchy(template: GatingStrategy) -> None:
    assert set(template.gate_ids) == set(PARENTS)
    for gate, parent in PARENTS.items():
        assert template.parent_of(gate) == parent, gate


def _signs(gate: RectangleGate, panel: Panel) -> dict[str, str]:
    by_channel = {c: m for m, c in panel.entries}
    signs = {}
    for dim, lo, hi in zip(gate.dimensions, gate.minimums, gate.maximums, strict=True):
        assert (lo is None) != (hi is None), gate.id
        signs[by_channel[dim.channel]] = "+" if lo is not None else "-"
    return signs


@pytest.mark.parametrize("subset", ["cd4", "cd8"])
def test_phenotype_definitions(template: GatingStrategy, subset: str) -> None:
    panel = default_panel("tcell-memory")
    assert panel is not None
    for kind, expected in PHENOTYPES.items():
        gate = template.get_gate(f"{subset}_{kind}")
        assert isinstance(gate, RectangleGate)
        assert _signs(gate, panel) == expected, gate.id
    lineage = template.get_gate(subset)
    assert isinstance(lineage, RectangleGate)
    other = "CD8" if subset == "cd4" else "CD4"
    assert _signs(lineage, panel) == {subset.upper(): "+", other: "-"}


def test_nk_and_t_cells_split_on_the_same_cd3_threshold(template: GatingStrategy) -> None:
    t_cells, nk = template.get_gate("t_cells"), template.get_gate("nk")
    assert isinstance(t_cells, RectangleGate) and isinstance(nk, RectangleGate)
    assert t_cells.minimums[0] == nk.maximums[0]
    assert isinstance(template.get_gate("lymphocytes"), PolygonGate)
    assert isinstance(template.get_gate("singlets"), PolygonGate)


def test_panel_maps_markers_to_channels(template: GatingStrategy) -> None:
    assert set(strategy_channels(template)) == {
        "FSC-A",
        "FSC-H",
        "SSC-A",
        "Time",
        *(d for d, _ in FLUORESCENCE),
    }
    other = Panel.from_pairs(
        [(m, f"FL{i}-A") for i, (_, m) in enumerate(FLUORESCENCE, start=1)], source="other"
    )
    mapped = load_template("tcell-memory", panel=other)
    assert "FL2-A" in strategy_channels(mapped)  # CD3
    assert mapped.sha256 != template.sha256


def test_gatingml_round_trip_keeps_membership(template: GatingStrategy, tmp_path: Path) -> None:
    sample, _ = simulate_panel_sample(5_000, rng=np.random.default_rng(4))
    path = template.to_gatingml(tmp_path / "t.xml")
    again = load_template(path)
    a, b = template.gate(sample), again.gate(sample)
    for gate in template.gate_ids:
        assert np.array_equal(a.membership(gate), b.membership(gate)), gate


def test_template_positions_alone_gate_sensibly(template: GatingStrategy) -> None:
    """Without auto-placement the template's positions already recover simulated subsets within 3 points."""
    sample, truth = simulate_panel_sample(40_000, rng=np.random.default_rng(8))
    counts = template.gate(sample).counts().set_index("gate")
    expected = truth.gates.set_index("gate")
    for gate in ("t_cells", "cd4", "cd8", "cd4_naive", "cd8_naive", "cd8_temra", "cd8_senescent", "nk"):
        assert abs(counts.loc[gate, "pct_parent"] - expected.loc[gate, "pct_parent"]) < 3.0, gate


def test_unknown_template() -> None:
    with pytest.raises(TemplateError, match="neither a shipped template \\(tcell-memory\\)"):
        load_template("bcell-panel")


def test_marker_missing_from_the_file_names_marker_file_and_channels(template: GatingStrategy) -> None:
    panel = Panel.from_pairs(
        [(m, d if m != "CCR7" else "BV650-A") for d, m in FLUORESCENCE], source="lab.csv"
    )
    strategy = load_template("tcell-memory", panel=panel)
    sample, _ = simulate_panel_sample(500, rng=np.random.default_rng(1))
    with pytest.raises(PanelError) as info:
        check_sample_channels(strategy, sample, panel)
    text = str(info.value)
    assert "marker 'CCR7' -> channel 'BV650-A' (panel lab.csv)" in text
    assert "synthetic" in text and "PE-Cy7-A (CCR7)" in text
