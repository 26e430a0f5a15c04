"""Gating-ML 2.0 import (and the entry points of export, in :mod:`._gatingml_write`).

Every file is validated against the Gating-ML 2.0 XML schemas shipped in ``data/xsd`` before it is read, so
a non-standard file (for example the compliance suite's ``gml_range_gate_attr_testing.xml``, with a
``<sample>`` wrapper) is rejected with the schema's own messages and line numbers. References the schema
cannot check (a ``parent_id`` or ``gateReference`` to a missing gate, a ``transformation-ref`` or
``compensation-ref`` that is not defined) are collected and reported together in one
:class:`~immunorehab.errors.GatingMLError` naming the file, line and item.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from lxml import etree

from immunorehab.errors import CytometryError, GatingMLError, Problem

from .compensation import Spillover
from .gates import (
    FCS,
    UNCOMPENSATED,
    BooleanGate,
    Dimension,
    Divider,
    EllipsoidGate,
    Gate,
    PolygonGate,
    Quadrant,
    QuadrantGate,
    RectangleGate,
)
from .transforms import (
    AsinhTransform,
    HyperlogTransform,
    LinearTransform,
    LogicleTransform,
    LogTransform,
    RatioTransform,
    Transform,
)

if TYPE_CHECKING:
    from .strategy import GatingStrategy

__all__ = ["NS", "gatingml_string", "read_gatingml", "schema", "write_gatingml"]

NS = {
    "gating": "http://www.isac-net.org/std/Gating-ML/v2.0/gating",
    "transforms": "http://www.isac-net.org/std/Gating-ML/v2.0/transformations",
    "data-type": "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes",
}
_G = f"{{{NS['gating']}}}"
_T = f"{{{NS['transforms']}}}"
_D = f"{{{NS['data-type']}}}"


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The Gating-ML 2.0 XML schema (parsed once per process)."""
    xsd = resources.files("immunorehab.cytometry").joinpath("data", "xsd", "Gating-ML.v2.0.xsd")
    with resources.as_file(xsd) as path:
        return etree.XMLSchema(etree.parse(str(path)))


def _parser() -> etree.XMLParser:
    # No entity expansion, no network: Gating-ML comes from users and collaborators.
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)


def parse_and_validate(path: Path) -> etree._ElementTree:
    """Parse a Gating-ML file and validate it against the XSDs; GatingMLError lists every violation."""
    try:
        tree = etree.parse(str(path), _parser())
    except OSError as exc:
        raise GatingMLError(f"{path}: cannot read the Gating-ML file ({exc}).") from None
    except etree.XMLSyntaxError as exc:
        raise GatingMLError(f"{path}: not well-formed XML ({exc}).") from None
    xsd = schema()
    if not xsd.validate(tree):
        problems = [Problem(f"line {e.line}", e.message) for e in xsd.error_log]
        raise GatingMLError(
            f"{path}: not valid Gating-ML 2.0 (checked against the 2.0 XML schemas)", problems
        )
    return tree


class _Reader:
    """Builds declarations from a validated Gating-ML tree, collecting reference problems."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def where(self, elem: etree._Element, what: str) -> str:
        return f"line {elem.sourceline}, {what}"

    def num(self, elem: etree._Element, attr: str) -> float:
        return float(elem.get(attr))  # the schema guarantees a number

    # -- transforms and matrices --------------------------------------------------------------

    def transform(self, elem: etree._Element) -> Transform | None:
        tid = elem.get(_T + "id")
        child = elem[0]
        tag = etree.QName(child).localname
        p: Callable[[str], float] = lambda a: self.num(child, _T + a)  # noqa: E731
        try:
            if elem.get(_T + "boundMin") is not None or elem.get(_T + "boundMax") is not None:
                self.problems.append(
                    Problem(
                        self.where(elem, f"transformation {tid!r}"),
                        "boundMin/boundMax are not supported; remove them or clip in a gate",
                    )
                )
            if tag == "flin":
                return LinearTransform(t=p("T"), a=p("A"))
            if tag == "flog":
                return LogTransform(t=p("T"), m=p("M"))
            if tag == "fasinh":
                return AsinhTransform(t=p("T"), m=p("M"), a=p("A"))
            if tag == "logicle":
                return LogicleTransform(t=p("T"), w=p("W"), m=p("M"), a=p("A"))
            if tag == "hyperlog":
                return HyperlogTransform(t=p("T"), w=p("W"), m=p("M"), a=p("A"))
            if tag == "fratio":
                names = [d.get(_D + "name") for d in child.iter(_D + "fcs-dimension")]
                return RatioTransform(names[0], names[1], a=p("A"), b=p("B"), c=p("C"))
        except CytometryError as exc:
            self.problems.append(Problem(self.where(elem, f"transformation {tid!r}"), str(exc)))
            return None
        self.problems.append(
            Problem(self.where(elem, f"transformation {tid!r}"), f"unknown transform {tag!r}")
        )
        return None

    def spillover(self, elem: etree._Element) -> Spillover | None:
        sid = elem.get(_T + "id")
        fluors = tuple(d.get(_D + "name") for d in elem.find(_T + "fluorochromes").iter(_D + "fcs-dimension"))
        dets = tuple(d.get(_D + "name") for d in elem.find(_T + "detectors").iter(_D + "fcs-dimension"))
        rows = [
            [self.num(c, _T + "value") for c in s.iter(_T + "coefficient")]
            for s in elem.iter(_T + "spectrum")
        ]
        try:
            matrix = np.array(rows, dtype=np.float64)
            if elem.get(_T + "matrix-inverted-already") in ("true", "1"):
                matrix = np.asarray(np.linalg.inv(matrix), dtype=np.float64)
            return Spillover(dets, matrix, fluors, id=sid)
        except (CytometryError, ValueError, np.linalg.LinAlgError) as exc:
            self.problems.append(Problem(self.where(elem, f"spectrumMatrix {sid!r}"), str(exc)))
            return None

    # -- gates --------------------------------------------------------------------------------

    def dimension(self, elem: etree._Element) -> Dimension:
        comp = elem.get(_G + "compensation-ref")
        xform = elem.get(_G + "transformation-ref")
        fcs = elem.find(_D + "fcs-dimension")
        if fcs is not None:
            return Dimension(fcs.get(_D + "name"), comp, xform)
        new = elem.find(_D + "new-dimension")
        return Dimension(new.get(_D + "transformation-ref"), comp, xform, kind="ratio")

    def points(self, elem: etree._Element, tag: str) -> tuple[float, ...]:
        return tuple(self.num(c, _D + "value") for c in elem.iter(_G + tag))

    def gate(self, elem: etree._Element) -> Gate | None:
        kind = etree.QName(elem).localname
        gid, parent = elem.get(_G + "id"), elem.get(_G + "parent_id")
        try:
            if kind == "RectangleGate":
                dims = elem.findall(_G + "dimension")
                lo = tuple(None if d.get(_G + "min") is None else self.num(d, _G + "min") for d in dims)
                hi = tuple(None if d.get(_G + "max") is None else self.num(d, _G + "max") for d in dims)
                return RectangleGate(gid, parent, tuple(self.dimension(d) for d in dims), lo, hi)
            if kind == "PolygonGate":
                dims = tuple(self.dimension(d) for d in elem.findall(_G + "dimension"))
                verts = tuple(self.points(v, "coordinate") for v in elem.findall(_G + "vertex"))
                return PolygonGate(gid, parent, (dims[0], dims[1]), tuple((v[0], v[1]) for v in verts))
            if kind == "EllipsoidGate":
                dims = tuple(self.dimension(d) for d in elem.findall(_G + "dimension"))
                mean = self.points(elem.find(_G + "mean"), "coordinate")
                cov = tuple(
                    self.points(r, "entry") for r in elem.find(_G + "covarianceMatrix").findall(_G + "row")
                )
                d2 = self.num(elem.find(_G + "distanceSquare"), _D + "value")
                return EllipsoidGate(gid, parent, dims, mean, cov, d2)
            if kind == "QuadrantGate":
                return self.quadrant_gate(elem, gid, parent)
            if kind == "BooleanGate":
                op_elem = next(iter(elem.iterchildren(_G + "and", _G + "or", _G + "not")))
                refs = tuple(
                    (r.get(_G + "ref"), r.get(_G + "use-as-complement") in ("true", "1"))
                    for r in op_elem.iter(_G + "gateReference")
                )
                op = etree.QName(op_elem).localname
                return BooleanGate(gid, parent, op, refs)
        except CytometryError as exc:
            self.problems.append(Problem(self.where(elem, f"{kind} {gid!r}"), str(exc)))
        return None

    def quadrant_gate(self, elem: etree._Element, gid: str, parent: str | None) -> QuadrantGate:
        dims, dividers = [], []
        for d in elem.findall(_G + "divider"):
            dims.append(self.dimension(d))
            values = tuple(sorted(float(v.text) for v in d.findall(_G + "value")))
            dividers.append(Divider(d.get(_G + "id"), values))
        quads = tuple(
            Quadrant(
                q.get(_G + "id"),
                tuple(
                    (p.get(_G + "divider_ref"), self.num(p, _G + "location"))
                    for p in q.findall(_G + "position")
                ),
            )
            for q in elem.findall(_G + "Quadrant")
        )
        return QuadrantGate(gid, parent, tuple(dims), tuple(dividers), quads)


def read_gatingml(path: str | Path) -> GatingStrategy:
    """Read a Gating-ML 2.0 file into a :class:`GatingStrategy`.

    Parameters
    ----------
    path : str or Path
        A Gating-ML 2.0 XML file.

    Raises
    ------
    GatingMLError
        The file is not well-formed, does not validate against the Gating-ML 2.0 schemas, or refers to
        undefined gates, transforms or compensation matrices; ``problems`` names each line and item.
    """
    from .strategy import GatingStrategy

    p = Path(path)
    root = parse_and_validate(p).getroot()
    reader = _Reader(p)
    transforms: dict[str, Transform] = {}
    spillovers: dict[str, Spillover] = {}
    gates: list[Gate] = []
    lines: dict[str, int] = {}
    for elem in root:
        if not isinstance(elem.tag, str):
            continue
        name = etree.QName(elem).localname
        if name == "transformation":
            xf = reader.transform(elem)
            if xf is not None:
                transforms[elem.get(_T + "id")] = xf
        elif name == "spectrumMatrix":
            sp = reader.spillover(elem)
            if sp is not None:
                spillovers[sp.id] = sp
        elif name.endswith("Gate"):
            gate = reader.gate(elem)
            if gate is not None:
                gates.append(gate)
                lines[gate.id] = elem.sourceline
    reader.problems.extend(_reference_problems(gates, transforms, spillovers, lines))
    if reader.problems:
        raise GatingMLError(f"{p}: the Gating-ML cannot be used", reader.problems)
    try:
        return GatingStrategy(gates, transforms, spillovers, source=str(p))
    except CytometryError as exc:
        raise GatingMLError(f"{p}: the Gating-ML cannot be used", [Problem(str(p), str(exc))]) from None


def _reference_problems(
    gates: list[Gate],
    transforms: dict[str, Transform],
    spillovers: dict[str, Spillover],
    lines: dict[str, int],
) -> list[Problem]:
    """Undefined parents, operands, transforms and compensations, each with its line."""
    known = {g.id for g in gates} | {q for g in gates if isinstance(g, QuadrantGate) for q in g.quadrant_ids}
    problems = []
    for gate in gates:
        where = f"line {lines.get(gate.id, '?')}, gate {gate.id!r}"
        if gate.parent is not None and gate.parent not in known:
            problems.append(Problem(where, f"parent_id {gate.parent!r} is not a gate in this file"))
        if isinstance(gate, BooleanGate):
            for ref, _ in gate.operands:
                if ref not in known:
                    problems.append(Problem(where, f"gateReference {ref!r} is not a gate in this file"))
        for dim in gate.dimensions:
            if dim.transform is not None and dim.transform not in transforms:
                problems.append(
                    Problem(where, f"transformation-ref {dim.transform!r} is not defined in this file")
                )
            if dim.kind == "ratio" and not isinstance(transforms.get(dim.channel), RatioTransform):
                problems.append(
                    Problem(where, f"new-dimension refers to {dim.channel!r}, which is not an fratio")
                )
            if dim.compensation not in (UNCOMPENSATED, FCS) and dim.compensation not in spillovers:
                problems.append(
                    Problem(
                        where,
                        f"compensation-ref {dim.compensation!r} is not 'uncompensated', 'FCS' or a "
                        "spectrumMatrix in this file",
                    )
                )
    return problems


def gatingml_string(strategy: GatingStrategy) -> str:
    """Canonical Gating-ML 2.0 text of a strategy (see :mod:`._gatingml_write`)."""
    from ._gatingml_write import to_string

    return to_string(strategy)


def write_gatingml(strategy: GatingStrategy, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a strategy as schema-valid Gating-ML 2.0 (temp file + rename); see :mod:`._gatingml_write`."""
    from ._gatingml_write import write

    return write(strategy, Path(path), overwrite=overwrite)
