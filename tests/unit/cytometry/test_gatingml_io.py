"""Gating-ML import/export edge cases: clear errors naming file, line and item; safe writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from immunorehab.cytometry import (
    Dimension,
    FlowJoBiexTransform,
    GatingStrategy,
    RectangleGate,
    Sample,
)
from immunorehab.errors import GateError, GatingMLError

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML '
    'xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating" '
    'xmlns:transforms="http://www.isac-net.org/std/Gating-ML/v2.0/transformations" '
    'xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">\n'
)
TAIL = "</gating:Gating-ML>\n"


def rect(
    gid: str, channel: str = "FL1-H", *, parent: str = "", comp: str = "uncompensated", xform: str = ""
) -> str:
    attrs = f' gating:parent_id="{parent}"' if parent else ""
    x = f' gating:transformation-ref="{xform}"' if xform else ""
    return (
        f'<gating:RectangleGate gating:id="{gid}"{attrs}>\n'
        f'<gating:dimension gating:compensation-ref="{comp}"{x} gating:min="1">'
        f'<data-type:fcs-dimension data-type:name="{channel}"/></gating:dimension>\n'
        "</gating:RectangleGate>\n"
    )


def write(tmp_path: Path, body: str, name: str = "s.xml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body + TAIL)
    return path


def test_unknown_parent_transform_and_compensation_are_listed_together(tmp_path: Path) -> None:
    body = (
        '<transforms:transformation transforms:id="L">'
        '<transforms:logicle transforms:T="262144" transforms:W="0.5" transforms:M="4.5" transforms:A="0"/>'
        "</transforms:transformation>\n"
        + rect("a", xform="L")
        + rect("b", comp="COMP")
        + '<gating:BooleanGate gating:id="c"><gating:and><gating:gateReference gating:ref="a"/>'
        '<gating:gateReference gating:ref="b"/></gating:and></gating:BooleanGate>\n'
    )
    good = write(tmp_path, body.replace("COMP", "uncompensated"))
    assert GatingStrategy.from_gatingml(good).gate_ids == ("a", "b", "c")
    bad = write(
        tmp_path,
        body.replace("COMP", "NoSuchMatrix").replace('transforms:id="L"', 'transforms:id="L2"'),
        "bad.xml",
    )
    with pytest.raises(GatingMLError) as info:
        GatingStrategy.from_gatingml(bad)
    text = str(info.value)
    assert str(bad) in text
    assert "gate 'a'" in text and "transformation-ref 'L'" in text
    assert "gate 'b'" in text and "compensation-ref 'NoSuchMatrix'" in text
    assert all(p.location.startswith("line ") for p in info.value.problems)


def test_unknown_parent_is_rejected_by_the_schema_idref(tmp_path: Path) -> None:
    path = write(tmp_path, rect("a", parent="ghost"))
    with pytest.raises(GatingMLError, match="ghost"):
        GatingStrategy.from_gatingml(path)


def test_unknown_channel_is_named_at_gating_time(tmp_path: Path) -> None:
    strategy = GatingStrategy.from_gatingml(write(tmp_path, rect("a", channel="FL9-H")))
    sample = Sample.from_array(np.ones((3, 2)), ["FL1-H", "FL2-H"], name="tube1")
    with pytest.raises(GateError) as info:
        strategy.gate(sample)
    text = str(info.value)
    assert "Gate 'a'" in text and "s.xml" in text and "'FL9-H'" in text and "tube1" in text
    assert "channels are FL1-H, FL2-H" in text


def test_not_xml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<gating:Gating-ML")
    with pytest.raises(GatingMLError, match="not well-formed XML"):
        GatingStrategy.from_gatingml(bad)
    with pytest.raises(GatingMLError, match="cannot read"):
        GatingStrategy.from_gatingml(tmp_path / "missing.xml")


def test_entities_are_not_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (
        f'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>\n'
        + HEAD.split("\n", 1)[1]
    )
    path = tmp_path / "xxe.xml"
    path.write_text(xxe + rect("a", channel="&e;") + TAIL)
    with pytest.raises(GatingMLError) as info:
        GatingStrategy.from_gatingml(path)
    assert "TOP-SECRET" not in str(info.value)


def test_export_refuses_to_overwrite_and_writes_atomically(tmp_path: Path) -> None:
    strategy = GatingStrategy([RectangleGate("a", None, (Dimension("FL1-H"),), (1.0,), (None,))])
    target = tmp_path / "out.xml"
    target.write_text("user's file")
    with pytest.raises(GatingMLError, match="file exists"):
        strategy.to_gatingml(target)
    assert target.read_text() == "user's file"
    strategy.to_gatingml(target, overwrite=True)
    assert GatingStrategy.from_gatingml(target).gate_ids == ("a",)
    assert [p.name for p in tmp_path.iterdir()] == ["out.xml"]  # no temp file left behind


def test_export_rejects_ids_that_are_not_xml_ids_and_flowjo_biex(tmp_path: Path) -> None:
    strategy = GatingStrategy([RectangleGate("Q1: CD3+", None, (Dimension("FL1-H"),), (1.0,), (None,))])
    with pytest.raises(GatingMLError) as info:
        strategy.to_gatingml(tmp_path / "x.xml")
    assert "'Q1: CD3+'" in str(info.value) and "not a valid XML id" in str(info.value)
    assert not (tmp_path / "x.xml").exists()
    biex = GatingStrategy(
        [RectangleGate("a", None, (Dimension("FL1-H", transform="b"),), (0.1,), (None,))],
        transforms={"b": FlowJoBiexTransform()},
    )
    with pytest.raises(GatingMLError, match="no Gating-ML 2.0 equivalent"):
        biex.to_gatingml(tmp_path / "y.xml")
    assert len(biex.sha256) == 64  # provenance still works for FlowJo strategies


def test_canonical_text_and_hash_are_stable() -> None:
    make = lambda lo: GatingStrategy(  # noqa: E731
        [RectangleGate("a", None, (Dimension("FL1-H"),), (lo,), (None,))]
    )
    assert make(0.1).to_gatingml_string() == make(0.1).to_gatingml_string()
    assert make(0.1).sha256 == make(0.1).sha256 != make(0.1000001).sha256
    assert 'gating:min="0.1"' in make(0.1).to_gatingml_string()
