"""The Gating-ML 2.0 compliance suite (../shared/data/external/flowkit/data/gate_ref): every truth file, event
for event; the non-standard file rejected; every file exported (XSD-valid) and re-imported to identical
membership."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from immunorehab.cytometry import GatingStrategy, Sample, read_fcs
from immunorehab.errors import GatingMLError

REPO = Path(__file__).resolve().parents[3]
EXT = REPO.parent / "shared" / "data" / "external"
REF = EXT / "flowkit" / "data" / "gate_ref"
if not REF.is_dir():  # pragma: no cover
    pytest.skip(f"compliance suite {REF} is missing", allow_module_level=True)

NON_STANDARD = "gml_range_gate_attr_testing.xml"
GML_FILES = sorted(p.name for p in (REF / "gml").glob("*.xml") if p.name != NON_STANDARD)
XSD_DIR = REPO / "src" / "immunorehab" / "cytometry" / "data" / "xsd"


def truth_id(path: Path) -> str:
    name = path.stem.removeprefix("Results_")
    return "ParRectangle1" if name == "ParQuadRect" else name  # the README's one exception


TRUTH = {truth_id(p): p for p in sorted((REF / "truth").glob("Results_*.txt"))}


@cache
def data1() -> Sample:
    return read_fcs(REF / "data1.fcs")


@cache
def strategy(name: str) -> GatingStrategy:
    return GatingStrategy.from_gatingml(REF / "gml" / name)


@cache
def truth(gate_id: str) -> np.ndarray:
    return np.loadtxt(TRUTH[gate_id], dtype=int).astype(bool)


def cases() -> list[tuple[str, str]]:
    out = []
    for name in GML_FILES:
        for gid in strategy(name).gate_ids:
            if gid in TRUTH:
                out.append((name, gid))
    return out


CASES = cases()


def test_suite_is_complete() -> None:
    assert len(TRUTH) == 51
    assert len(GML_FILES) == 46
    assert {gid for _, gid in CASES} == set(TRUTH), "every truth file is exercised"
    assert len(CASES) >= 131  # FlowKit's README count of gate-versus-truth comparisons


@pytest.mark.parametrize("name,gate_id", CASES, ids=[f"{n}:{g}" for n, g in CASES])
def test_truth_event_for_event(name: str, gate_id: str) -> None:
    results = strategy(name).gate(data1())
    expected = truth(gate_id)
    got = results.membership(gate_id)
    assert got.shape == expected.shape == (13367,)
    mismatched = np.flatnonzero(got != expected)
    assert mismatched.size == 0, f"{mismatched.size} events differ, first at {mismatched[:10]}"


def test_known_counts() -> None:
    assert strategy("gml_range_gate.xml").gate(data1()).count("Range1") == 440
    assert strategy("gml_parent_quadrant_rect_gate.xml").gate(data1()).count("ParRectangle1") == 3


def test_non_standard_file_is_rejected_with_the_schema_message() -> None:
    with pytest.raises(GatingMLError) as info:
        GatingStrategy.from_gatingml(REF / "gml" / NON_STANDARD)
    text = str(info.value)
    assert NON_STANDARD in text and "not valid Gating-ML 2.0" in text
    assert "line 7" in text and "'sample'" in text
    assert info.value.problems and info.value.problems[0].location == "line 7"


@pytest.mark.parametrize("name", GML_FILES)
def test_export_validates_and_reimports_to_identical_membership(name: str, tmp_path: Path) -> None:
    original = strategy(name)
    out = original.to_gatingml(tmp_path / name)
    schema = etree.XMLSchema(etree.parse(str(XSD_DIR / "Gating-ML.v2.0.xsd")))
    assert schema.validate(etree.parse(str(out))), schema.error_log
    again = GatingStrategy.from_gatingml(out)
    assert again.gate_ids == original.gate_ids
    assert again.sha256 == original.sha256
    first, second = original.gate(data1()), again.gate(data1())
    for gid in original.gate_ids:
        np.testing.assert_array_equal(first.membership(gid), second.membership(gid))


def test_shipped_schemas_are_the_external_ones() -> None:
    for name in ("Gating-ML.v2.0.xsd", "Transformations.v2.0.xsd", "DataTypes.v2.0.xsd"):
        assert (XSD_DIR / name).read_bytes() == (EXT / "flowkit/src/flowkit/_resources" / name).read_bytes()
