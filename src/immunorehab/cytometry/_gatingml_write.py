"""Gating-ML 2.0 export: canonical text, validated against the XSDs, written atomically.

Numbers are written with Python's shortest round-trip ``repr``, so reading the file back gives the same
floats and therefore the same membership. Output is canonical (same strategy, same bytes), which makes its
SHA-256 a provenance key for results.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from immunorehab.errors import GatingMLError, Problem

from .compensation import Spillover
from .gates import BooleanGate, Dimension, EllipsoidGate, Gate, PolygonGate, QuadrantGate, RectangleGate
from .gatingml import NS, schema
from .transforms import (
    AsinhTransform,
    FlowJoBiexTransform,
    HyperlogTransform,
    LinearTransform,
    LogicleTransform,
    LogTransform,
    RatioTransform,
    Transform,
)

if TYPE_CHECKING:
    from .strategy import GatingStrategy

__all__ = ["to_string", "write"]

_G = f"{{{NS['gating']}}}"
_T = f"{{{NS['transforms']}}}"
_D = f"{{{NS['data-type']}}}"
_FJ = "{urn:immunorehab:flowjo}"
_NCNAME = re.compile(r"^[A-Za-z_][\w.\-]*$")


def _num(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _sub(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, tag, dict(attrs))


def _transform(root: etree._Element, tid: str, xf: Transform, *, strict: bool) -> None:
    elem = _sub(root, _T + "transformation", **{_T + "id": tid})
    if isinstance(xf, LinearTransform):
        _sub(elem, _T + "flin", **{_T + "T": _num(xf.t), _T + "A": _num(xf.a)})
    elif isinstance(xf, LogTransform):
        _sub(elem, _T + "flog", **{_T + "T": _num(xf.t), _T + "M": _num(xf.m)})
    elif isinstance(xf, AsinhTransform):
        _sub(elem, _T + "fasinh", **{_T + "T": _num(xf.t), _T + "M": _num(xf.m), _T + "A": _num(xf.a)})
    elif isinstance(xf, LogicleTransform | HyperlogTransform):
        tag = "logicle" if isinstance(xf, LogicleTransform) else "hyperlog"
        params = {_T + "T": _num(xf.t), _T + "W": _num(xf.w), _T + "M": _num(xf.m), _T + "A": _num(xf.a)}
        _sub(elem, _T + tag, **params)
    elif isinstance(xf, RatioTransform):
        ratio = _sub(
            elem, _T + "fratio", **{_T + "A": _num(xf.a), _T + "B": _num(xf.b), _T + "C": _num(xf.c)}
        )
        for name in (xf.numerator, xf.denominator):
            _sub(ratio, _D + "fcs-dimension", **{_D + "name": name})
    elif isinstance(xf, FlowJoBiexTransform) and not strict:
        # Not Gating-ML: only used for the canonical text behind strategy.sha256 (never written to a file).
        biex = {"neg": xf.negative, "width": xf.width, "pos": xf.positive, "maxRange": xf.max_value}
        _sub(elem, _FJ + "biex", **{k: _num(v) for k, v in biex.items()}, channelRange=str(xf.channel_range))
    else:
        raise GatingMLError(
            f"transform {tid!r} ({type(xf).__name__}) has no Gating-ML 2.0 equivalent; FlowJo's biex is a "
            "FlowJo-only scale (use a logicle transform to share the strategy as Gating-ML)."
        )


def _spillover(root: etree._Element, spill: Spillover) -> None:
    elem = _sub(root, _T + "spectrumMatrix", **{_T + "id": spill.id})
    for tag, names in (("fluorochromes", spill.fluorochromes), ("detectors", spill.detectors)):
        group = _sub(elem, _T + tag)
        for name in names:
            _sub(group, _D + "fcs-dimension", **{_D + "name": name})
    for row in spill.matrix:
        spectrum = _sub(elem, _T + "spectrum")
        for value in row:
            _sub(spectrum, _T + "coefficient", **{_T + "value": _num(value)})


def _dimension(parent: etree._Element, tag: str, dim: Dimension, **extra: str) -> etree._Element:
    attrs = {_G + "compensation-ref": dim.compensation}
    if dim.transform is not None:
        attrs[_G + "transformation-ref"] = dim.transform
    attrs.update(extra)
    elem = _sub(parent, _G + tag, **attrs)
    if dim.kind == "ratio":
        _sub(elem, _D + "new-dimension", **{_D + "transformation-ref": dim.channel})
    else:
        _sub(elem, _D + "fcs-dimension", **{_D + "name": dim.channel})
    return elem


def _coords(parent: etree._Element, tag: str, values: tuple[float, ...]) -> None:
    for v in values:
        _sub(parent, _G + tag, **{_D + "value": _num(v)})


def _gate(root: etree._Element, gate: Gate) -> None:
    kind = type(gate).__name__
    attrs = {_G + "id": gate.id}
    if gate.parent is not None:
        attrs[_G + "parent_id"] = gate.parent
    elem = _sub(root, _G + kind, **attrs)
    if isinstance(gate, RectangleGate):
        for dim, lo, hi in zip(gate.dimensions, gate.minimums, gate.maximums, strict=True):
            bounds = {}
            if lo is not None:
                bounds[_G + "min"] = _num(lo)
            if hi is not None:
                bounds[_G + "max"] = _num(hi)
            _dimension(elem, "dimension", dim, **bounds)
    elif isinstance(gate, PolygonGate):
        for dim in gate.dimensions:
            _dimension(elem, "dimension", dim)
        for vertex in gate.vertices:
            _coords(_sub(elem, _G + "vertex"), "coordinate", vertex)
    elif isinstance(gate, EllipsoidGate):
        for dim in gate.dimensions:
            _dimension(elem, "dimension", dim)
        _coords(_sub(elem, _G + "mean"), "coordinate", gate.mean)
        cov = _sub(elem, _G + "covarianceMatrix")
        for row in gate.covariance:
            _coords(_sub(cov, _G + "row"), "entry", row)
        _sub(elem, _G + "distanceSquare", **{_D + "value": _num(gate.distance_square)})
    elif isinstance(gate, QuadrantGate):
        for dim, divider in zip(gate.dimensions, gate.dividers, strict=True):
            d = _dimension(elem, "divider", dim, **{_G + "id": divider.id})
            for v in divider.values:
                etree.SubElement(d, _G + "value").text = _num(v)
        for quadrant in gate.quadrants:
            q = _sub(elem, _G + "Quadrant", **{_G + "id": quadrant.id})
            for divider_id, location in quadrant.positions:
                _sub(q, _G + "position", **{_G + "divider_ref": divider_id, _G + "location": _num(location)})
    elif isinstance(gate, BooleanGate):
        op = _sub(elem, _G + gate.op)
        for ref, complement in gate.operands:
            ref_attrs = {_G + "ref": ref}
            if complement:
                ref_attrs[_G + "use-as-complement"] = "true"
            _sub(op, _G + "gateReference", **ref_attrs)


def _check_ids(strategy: GatingStrategy) -> None:
    """Gating-ML ids are XML NCNames (no spaces, no leading digit, no ':'); FlowJo names often are not."""
    ids = list(strategy.transforms) + list(strategy.spillovers)
    for gate in strategy.gates:
        ids.append(gate.id)
        if isinstance(gate, QuadrantGate):
            ids += [d.id for d in gate.dividers] + list(gate.quadrant_ids)
    bad = [
        Problem(repr(i), "not a valid XML id (letters, digits, '_', '-', '.'; not starting with a digit)")
        for i in ids
        if not _NCNAME.match(i)
    ]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    bad += [
        Problem(repr(i), "used for more than one gate/transform/matrix/divider (ids share one namespace)")
        for i in dupes
    ]
    if bad:
        raise GatingMLError("The strategy cannot be written as Gating-ML 2.0: rename these ids", bad)


def to_element(strategy: GatingStrategy, *, strict: bool = True) -> etree._Element:
    """The strategy as a Gating-ML 2.0 element tree (transforms, matrices, then gates parents-first).

    ``strict=False`` skips the id check and writes FlowJo biex in a private namespace: the result is the
    canonical text hashed for provenance, not a file for other software.
    """
    if strict:
        _check_ids(strategy)
    root = etree.Element(_G + "Gating-ML", nsmap=dict(NS))
    for tid, xf in strategy.transforms.items():
        _transform(root, tid, xf, strict=strict)
    for sid, spill in strategy.spillovers.items():
        _spillover(root, spill if spill.id == sid else spill.with_id(sid))
    for gate in strategy.gates:
        _gate(root, gate)
    return root


def to_string(strategy: GatingStrategy, *, strict: bool = False) -> str:
    """Canonical Gating-ML 2.0 text (``strict=True``: exactly what :func:`write` writes)."""
    root = to_element(strategy, strict=strict)
    return str(
        etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode("utf-8")
    )


def write(strategy: GatingStrategy, path: Path, *, overwrite: bool = False) -> Path:
    """Validate against the XSDs, then write to a temporary file in the target folder and rename it."""
    if path.exists() and not overwrite:
        raise GatingMLError(f"{path}: file exists; pass overwrite=True to replace it.")
    root = to_element(strategy)
    xsd = schema()
    if not xsd.validate(etree.ElementTree(root)):
        problems = [Problem(f"line {e.line}", e.message) for e in xsd.error_log]
        raise GatingMLError(
            f"{path}: the exported Gating-ML does not validate (please report this)", problems
        )
    data = etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
