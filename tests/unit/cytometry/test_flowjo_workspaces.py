"""FlowJo 10 workspaces against FlowJo's own counts (flowjo_population_counts_extracted.csv).

Counts are compared wherever the FCS file is in ../shared/data/external: the diamond workspaces (quadrant
rectangles, biex and arcsinh rectangles: exact) and the 51-event ellipse. The three 8-colour FCS files were
withheld from the snapshot (README section 5), so those workspaces are checked for structure instead: every
population FlowJo lists is in our tree with the same parent and node type, the compensation equals
den_comp.csv, the transforms are FlowJo's logicle, and the gates equal FlowKit's Gating-ML export of the same
workspace (8_color_ICS.xml) event for event on synthetic events.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from immunorehab.cytometry import (
    BooleanGate,
    EllipsoidGate,
    FlowJoBiexTransform,
    GatingStrategy,
    LogicleTransform,
    Sample,
    Spillover,
    read_fcs,
)
from immunorehab.cytometry.flowjo import flowjo_samples
from immunorehab.errors import FlowJoError

REPO = Path(__file__).resolve().parents[3]
EXT = REPO.parent / "shared" / "data" / "external"
FK = EXT / "flowkit"
if not FK.is_dir():  # pragma: no cover
    pytest.skip(f"external oracle folder {FK} is missing", allow_module_level=True)

ROWS = list(csv.DictReader((FK / "flowjo_population_counts_extracted.csv").read_text().splitlines()))
BY_SAMPLE: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
for _row in ROWS:
    BY_SAMPLE[(_row["wsp_file"], _row["sample_name"])].append(_row)


def fcs_path(wsp: str, sample: str) -> Path | None:
    hits = list((FK / wsp).parent.rglob(sample))
    return hits[0] if hits else None


def gate_id(strategy: GatingStrategy, row: dict[str, str]) -> str:
    """Our id for FlowJo's population: its name, or the shortest unique path ending in it."""
    path = tuple(row["parent_path"].split("/")[1:]) + (row["gate_name"],)
    ids = [g for g in strategy.gate_ids if path[-len(g.split("/")) :] == tuple(g.split("/"))]
    assert len(ids) == 1, (path, ids)
    return ids[0]


@cache
def strategy_for(wsp: str, sample: str) -> GatingStrategy:
    return GatingStrategy.from_flowjo(FK / wsp, sample)


COUNTED = [
    (r["wsp_file"], r["sample_name"], r["parent_path"], r["gate_name"], int(r["flowjo_count"]))
    for r in ROWS
    if fcs_path(r["wsp_file"], r["sample_name"]) is not None and int(r["flowjo_count"]) > 0
]


def test_counted_populations_are_the_documented_ones() -> None:
    got = {(Path(w).name, g, c) for w, _, _, g, c in COUNTED}
    assert got == {
        ("simple_diamond_example_quad_gate.wsp", "Q1: channel_A- , channel_B+", 49671),
        ("simple_diamond_example_quad_gate.wsp", "Q2: channel_A+ , channel_B+", 50596),
        ("simple_diamond_example_quad_gate.wsp", "Q3: channel_A+ , channel_B-", 50330),
        ("simple_diamond_example_quad_gate.wsp", "Q4: channel_A- , channel_B-", 49403),
        ("test_data_diamond_biex_rect.wsp", "upper_right", 50605),
        ("test_data_diamond_asinh_rect.wsp", "upper_right", 50559),
        ("test_data_diamond_asinh_rect2.wsp", "upper_right", 50699),
        ("single_ellipse_51_events.wsp", "ellipse1", 51),
    }
    # the other rows with an FCS file present are not results (README: 0 or -1 = never computed)
    uncomputed = [
        r for r in ROWS if fcs_path(r["wsp_file"], r["sample_name"]) and int(r["flowjo_count"]) <= 0
    ]
    assert {Path(r["wsp_file"]).name for r in uncomputed} == {
        "simple_poly_and_rect.wsp",
        "simple_poly_and_rect_v2_poly50.wsp",
    }


@pytest.mark.parametrize(
    "wsp,sample,parent_path,gate,count", COUNTED, ids=[f"{Path(c[0]).stem}:{c[3]}" for c in COUNTED]
)
def test_counts_equal_flowjo(wsp: str, sample: str, parent_path: str, gate: str, count: int) -> None:
    """Rectangles (quadrants, biex, arcsinh) exactly; the ellipse too (FlowJo bins ellipses, but all 51 events
    of this line lie clear of the boundary)."""
    strategy = strategy_for(wsp, sample)
    path = fcs_path(wsp, sample)
    assert path is not None
    results = strategy.gate(read_fcs(path))
    row = {"parent_path": parent_path, "gate_name": gate}
    assert results.count(gate_id(strategy, row)) == count


def test_diamond_quadrants_partition_all_events() -> None:
    wsp = "data/simple_diamond_example/simple_diamond_example_quad_gate.wsp"
    strategy = strategy_for(wsp, "test_data_diamond_01.fcs")
    results = strategy.gate(read_fcs(FK / "data/simple_diamond_example/test_data_diamond_01.fcs"))
    assert sum(results.count(g) for g in strategy.gate_ids) == 200_000


def test_biex_and_asinh_workspaces_use_flowjo_scales() -> None:
    biex = strategy_for(
        "data/simple_diamond_example/test_data_diamond_biex_rect.wsp", "test_data_diamond_01.fcs"
    )
    (xf,) = set(biex.transforms.values())
    assert type(xf).__name__ == "FlowJoBiexTransform"
    assert (xf.negative, xf.width, xf.positive, xf.max_value) == (0.0, -10.0, 4.418539922, 262144.0)
    asinh = strategy_for(
        "data/simple_diamond_example/test_data_diamond_asinh_rect.wsp", "test_data_diamond_01.fcs"
    )
    assert {type(x).__name__ for x in asinh.transforms.values()} == {"AsinhTransform"}


def test_ellipse_comes_from_foci_and_edges() -> None:
    strategy = strategy_for(
        "data/simple_line_example/single_ellipse_51_events.wsp", "data_set_simple_line_100.fcs"
    )
    gate = strategy.get_gate("ellipse1")
    assert isinstance(gate, EllipsoidGate)
    # centre = midpoint of the foci on FlowJo's 256-channel linear display of 0..262144
    centre = np.array([62.7724519002 + 94.2275480998, 157.4044547167 + 93.5955452833]) / 2 * 262144 / 256
    np.testing.assert_allclose(gate.mean, centre, rtol=1e-12)


EIGHT_COLOUR = sorted({(w, s) for w, s in BY_SAMPLE if "8_color_data_set" in w})


def test_eight_colour_fcs_files_are_absent() -> None:
    """README section 5: the three 8-colour FCS files were withheld, so their counts cannot be checked."""
    assert len(EIGHT_COLOUR) == 18  # 7 workspaces: 6 with 3 samples (one lists 2), 1 with 1
    assert all(fcs_path(w, s) is None for w, s in EIGHT_COLOUR)


@pytest.mark.parametrize(
    "wsp,sample", EIGHT_COLOUR, ids=[f"{Path(w).stem}:{s[-17:-4]}" for w, s in EIGHT_COLOUR]
)
def test_eight_colour_workspace_structure(wsp: str, sample: str) -> None:
    strategy = strategy_for(wsp, sample)
    rows = BY_SAMPLE[(wsp, sample)]
    populations = [r for r in rows if r["node_type"] != "SampleNode" and r["parent_path"]]
    assert len(strategy.gate_ids) == len(populations)
    kinds = {"Population": None, "AndNode": "and", "OrNode": "or", "NotNode": "not"}
    for row in populations:
        gid = gate_id(strategy, row)
        gate = strategy.get_gate(gid)
        parent_path = row["parent_path"].split("/")[1:]
        if parent_path:
            parent_row = {"parent_path": "/".join(["root", *parent_path[:-1]]), "gate_name": parent_path[-1]}
            assert strategy.parent_of(gid) == gate_id(strategy, parent_row)
        else:
            assert strategy.parent_of(gid) is None
        expected_op = kinds[row["node_type"]]
        assert (gate.op if isinstance(gate, BooleanGate) else None) == expected_op
    den = Spillover.from_csv(FK / "data/8_color_data_set/den_comp.csv")
    if strategy.spillovers:
        (spill,) = strategy.spillovers.values()
        assert spill.detectors == den.detectors
        np.testing.assert_allclose(spill.matrix, den.matrix, atol=5e-7)  # den_comp.csv has 6 decimals
    for xf in strategy.transforms.values():
        if "reused_quad_gate" in wsp:  # this workspace displays its channels on FlowJo's biex scale
            assert xf == FlowJoBiexTransform(
                negative=0.0, width=-100.0, positive=4.418539922, max_value=262144.0
            )
        else:
            assert xf == LogicleTransform(t=262144, w=1.0, m=4.418539922, a=0.0)


def synthetic_eight_colour(n: int = 40_000) -> Sample:
    """Events spread over the gates' regions: scatter near the singlet gate, fluorescence uniform on the
    logicle display scale (then spilled with the workspace's matrix, so compensation matters)."""
    rng = np.random.default_rng(5)
    chans = [
        "FSC-A", "FSC-H", "FSC-W", "SSC-A", "SSC-H", "SSC-W", "TNFa FITC FLR-A", "CD8 PerCP-Cy55 FLR-A",
        "IL2 BV421 FLR-A", "Aqua Amine FLR-A", "IFNg APC FLR-A", "CD3 APC-H7 FLR-A", "CD107a PE FLR-A",
        "CD4 PE-Cy7 FLR-A", "Time",
    ]  # fmt: skip
    scatter = np.column_stack(
        [
            rng.uniform(30_000, 262_144, n),
            rng.uniform(40_000, 220_000, n),
            rng.uniform(72_000, 92_000, n),
            rng.uniform(0, 100_000, n),
            rng.uniform(0, 262_144, (n, 2)),
        ]
    )
    display = rng.uniform(0.1, 0.8, (n, 8))
    true = LogicleTransform(t=262144, w=1.0, m=4.418539922, a=0.0).inverse(display)
    spill = Spillover.from_csv(FK / "data/8_color_data_set/den_comp.csv").matrix
    time = rng.uniform(0, 200, n)
    return Sample.from_array(np.column_stack([scatter, true @ spill, time]), chans, name="synthetic 8-colour")


def test_eight_colour_workspace_equals_flowkits_gatingml_export() -> None:
    """8_color_ICS.xml is FlowKit's Gating-ML of the same hierarchy (its vertices are the workspace's,
    transformed): both strategies give the same membership on the same events."""
    wsp = strategy_for("data/8_color_data_set/8_color_ICS.wsp", "101_DEN084Y5_15_E01_008_clean.fcs")
    xml = GatingStrategy.from_gatingml(FK / "data/8_color_data_set/8_color_ICS.xml")
    sample = synthetic_eight_colour()
    ours, theirs = wsp.gate(sample), xml.gate(sample)
    pairs = {"Time": "TimeGate", "Singlets": "Singlets", "aAmine-": "aAmine-", "CD3+": "CD3-pos"}
    pairs |= {"CD4+": "CD4-pos", "CD8+": "CD8-pos"}
    for mine, fk_id in pairs.items():
        assert ours.count(mine) > 100
        np.testing.assert_array_equal(ours.membership(mine), theirs.membership(fk_id), err_msg=mine)


def test_unknown_sample_and_non_workspace(tmp_path: Path) -> None:
    wsp = FK / "data/8_color_data_set/8_color_ICS.wsp"
    names = flowjo_samples(wsp)
    assert "101_DEN084Y5_15_E01_008_clean.fcs" in names and len(names) == 3
    with pytest.raises(
        FlowJoError, match="no sample 'nope' in the workspace; samples are 101_DEN084Y5_15_E03"
    ):
        GatingStrategy.from_flowjo(wsp, "nope")
    # the stem works too
    assert GatingStrategy.from_flowjo(wsp, "101_DEN084Y5_15_E01_008_clean").gate_ids[0] == "Time"
    with pytest.raises(FlowJoError, match="not a FlowJo 10 workspace"):
        GatingStrategy.from_flowjo(FK / "data/8_color_data_set/8_color_ICS.xml", "x")
    bad = tmp_path / "bad.wsp"
    bad.write_text("<Workspace")
    with pytest.raises(FlowJoError, match="not well-formed"):
        GatingStrategy.from_flowjo(bad, "x")
