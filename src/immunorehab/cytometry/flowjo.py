"""FlowJo 10 workspaces (.wsp): one sample's gates, compensation and transforms as a GatingStrategy.

What FlowJo stores and how we read it:

* each ``<Sample>`` has its own ``transforms:spilloverMatrix`` (parameters named with a ``Comp-`` prefix
  in gates), its per-parameter display transforms (``linear``, ``log``, ``logicle``, ``biex``, ``fasinh``,
  ``hyperlog``) and a ``<SampleNode>`` tree of ``<Population>`` (one gate each) and ``<AndNode>``,
  ``<OrNode>``, ``<NotNode>`` (boolean combinations of other populations, by path);
* rectangle and polygon coordinates are data values (compensated where the parameter is); FlowJo evaluates
  gates on its display scale, so we transform the coordinates with the parameter's transform and gate on
  the transformed values (linear scales are affine and change nothing, so they are left out);
* ellipses are stored as foci plus four edge points on the 256-channel display scale; we convert them to
  the centre / covariance form of Gating-ML (major semi-axis from the edge points, minor from the foci);
* gate ids are FlowJo's population names; where a name occurs more than once in the sample's tree (e.g.
  ``CD107a+`` under both ``CD4+`` and ``CD8+``) the id is the population's path, ``CD4+/CD107a+``
  (the shortest unique path ending in the name, ``/``-separated).

FlowJo evaluates polygons and ellipses on binned display data (FlowKit issues #113, #194); our exact
evaluation can differ from FlowJo's count by a few events for those gates, never for rectangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from lxml import etree

from immunorehab.errors import CytometryError, FlowJoError, Problem

from .compensation import Spillover
from .gates import FCS, UNCOMPENSATED, BooleanGate, Dimension, EllipsoidGate, Gate, PolygonGate, RectangleGate
from .gatingml import NS
from .transforms import (
    AsinhTransform,
    FlowJoBiexTransform,
    HyperlogTransform,
    LogicleTransform,
    LogTransform,
    Transform,
)

if TYPE_CHECKING:
    from .strategy import GatingStrategy

__all__ = ["flowjo_samples", "read_flowjo_strategy"]

_G = f"{{{NS['gating']}}}"
_T = f"{{{NS['transforms']}}}"
_D = f"{{{NS['data-type']}}}"
_NODES = ("Population", "AndNode", "OrNode", "NotNode")


@dataclass(frozen=True, slots=True)
class _Scale:
    """A parameter's display scale: our transform (None for linear) and FlowJo's display length."""

    transform: Transform | None
    length: float = 256.0
    lin_min: float = 0.0
    lin_max: float = 262144.0


@dataclass
class _Workspace:
    path: Path
    problems: list[Problem] = field(default_factory=list)
    transform_ids: dict[Transform, str] = field(default_factory=dict)


def _parse(path: Path) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.parse(str(path), parser).getroot()
    except OSError as exc:
        raise FlowJoError(f"{path}: cannot read the workspace ({exc}).") from None
    except etree.XMLSyntaxError as exc:
        raise FlowJoError(f"{path}: not well-formed XML ({exc}).") from None
    version = root.get("flowJoVersion", "")
    if root.tag != "Workspace" or not version.startswith("10."):
        raise FlowJoError(
            f"{path}: not a FlowJo 10 workspace (root <{root.tag}>, flowJoVersion={version!r}); "
            "export the workspace from FlowJo 10."
        )
    return root


def _sample_names(elem: etree._Element) -> list[str]:
    names = []
    node = elem.find("SampleNode")
    if node is not None and node.get("name"):
        names.append(node.get("name"))
    ds = elem.find("DataSet")
    if ds is not None and ds.get("uri"):
        names.append(Path(ds.get("uri").replace("%20", " ")).name)
    return names


def flowjo_samples(wsp_path: str | Path) -> tuple[str, ...]:
    """Names of the samples in a FlowJo 10 workspace (the ``sample=`` values it accepts)."""
    root = _parse(Path(wsp_path))
    return tuple(names[0] for names in (_sample_names(s) for s in root.iter("Sample")) if names)


def _find_sample(root: etree._Element, path: Path, sample: str) -> etree._Element:
    known = []
    for elem in root.iter("Sample"):
        names = _sample_names(elem)
        known += names[:1]
        if sample in names or sample in (Path(n).stem for n in names):
            return elem
    raise FlowJoError(
        f"{path}: no sample {sample!r} in the workspace; samples are {', '.join(known) or 'none'}."
    )


def _spillover(sample: etree._Element, ws: _Workspace) -> tuple[Spillover | None, str]:
    """The sample's compensation matrix (rows: fluorochromes, columns: detectors) and its prefix."""
    elem = sample.find(_T + "spilloverMatrix")
    if elem is None:
        return None, "Comp-"
    params = [
        p.get(_D + "name") for p in elem.iter(_D + "parameter") if p.getparent().tag == _D + "parameters"
    ]
    rows = []
    for spill in elem.findall(_T + "spillover"):
        coeffs = {
            c.get(_D + "parameter"): float(c.get(_T + "value")) for c in spill.findall(_T + "coefficient")
        }
        rows.append([coeffs.get(p, 0.0) for p in params])
    name = elem.get("name") or "compensation"
    sid = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name)
    sid = sid if sid[:1].isalpha() or sid[:1] == "_" else f"comp_{sid}"
    try:
        return Spillover(tuple(params), np.array(rows, dtype=np.float64), id=sid), elem.get("prefix", "Comp-")
    except CytometryError as exc:
        ws.problems.append(Problem(f"line {elem.sourceline}, spilloverMatrix {name!r}", str(exc)))
        return None, elem.get("prefix", "Comp-")


def _scale(elem: etree._Element, ws: _Workspace) -> _Scale:
    kind = etree.QName(elem).localname

    def num(attr: str, default: float | None = None) -> float:
        value = elem.get(_T + attr)
        if value is None:
            if default is None:
                raise FlowJoError(f"{ws.path}: line {elem.sourceline}: {kind} transform lacks {attr}.")
            return default
        return float(value)

    length = num("length", 256.0)
    if kind == "linear":
        return _Scale(None, length, num("minRange", 0.0), num("maxRange", 262144.0))
    if kind == "log":
        offset, decades = num("offset", 1.0), num("decades", 4.5)
        return _Scale(LogTransform(t=offset * 10**decades, m=decades), length)
    if kind == "logicle":
        return _Scale(LogicleTransform(t=num("T"), w=num("W"), m=num("M"), a=num("A")), length)
    if kind == "hyperlog":
        return _Scale(HyperlogTransform(t=num("T"), w=num("W"), m=num("M"), a=num("A")), length)
    if kind == "fasinh":
        return _Scale(AsinhTransform(t=num("T"), m=num("M"), a=num("A")), length)
    if kind == "biex":
        xf = FlowJoBiexTransform(
            negative=num("neg"), width=num("width"), positive=num("pos"), max_value=num("maxRange")
        )
        return _Scale(xf, length)
    raise FlowJoError(f"{ws.path}: line {elem.sourceline}: FlowJo transform {kind!r} is not supported.")


def _scales(sample: etree._Element, ws: _Workspace) -> dict[str, _Scale]:
    out: dict[str, _Scale] = {}
    block = sample.find("Transformations")
    if block is None:
        return out
    for elem in block:
        if not isinstance(elem.tag, str):
            continue
        param = elem.find(_D + "parameter")
        if param is None:
            continue
        try:
            out[param.get(_D + "name")] = _scale(elem, ws)
        except (FlowJoError, CytometryError) as exc:
            ws.problems.append(Problem(f"line {elem.sourceline}, transform", str(exc)))
    return out


class _Converter:
    """Turns one sample's FlowJo gate elements into our declarations."""

    def __init__(
        self, ws: _Workspace, spill: Spillover | None, prefix: str, scales: dict[str, _Scale]
    ) -> None:
        self.ws = ws
        self.spill = spill
        self.prefix = prefix
        self.scales = scales

    def dimension(self, name: str) -> tuple[Dimension, _Scale]:
        scale = self.scales.get(name) or _Scale(None)
        channel, comp = name, UNCOMPENSATED
        if self.prefix and name.startswith(self.prefix):
            channel = name[len(self.prefix) :]
            comp = self.spill.id if self.spill is not None and channel in self.spill.detectors else FCS
            scale = self.scales.get(name) or self.scales.get(channel) or _Scale(None)
        tid = None
        if scale.transform is not None:
            tid = self.ws.transform_ids.setdefault(
                scale.transform,
                f"{type(scale.transform).__name__.removesuffix('Transform').lower()}_"
                f"{len(self.ws.transform_ids) + 1}",
            )
        return Dimension(channel, comp, tid), scale

    def dims(self, elem: etree._Element) -> list[tuple[Dimension, _Scale, etree._Element]]:
        out = []
        for d in elem.findall(_G + "dimension"):
            fcs = d.find(_D + "fcs-dimension")
            if fcs is None:
                raise FlowJoError(f"line {d.sourceline}: a gate dimension without a parameter name.")
            dim, scale = self.dimension(fcs.get(_D + "name"))
            out.append((dim, scale, d))
        return out

    @staticmethod
    def to_scale(scale: _Scale, values: list[float]) -> list[float]:
        if scale.transform is None:
            return values
        return [float(v) for v in scale.transform.apply(np.array(values, dtype=np.float64))]  # type: ignore[union-attr]

    def gate(self, elem: etree._Element, gid: str, parent: str | None) -> Gate:
        kind = etree.QName(elem).localname
        if elem.get("eventsInside", "1") != "1":
            raise FlowJoError(
                f"line {elem.sourceline}: {kind} {gid!r} keeps events outside the gate; not supported."
            )
        if kind == "RectangleGate":
            dims = self.dims(elem)
            lo = [self._bound(s, d, "min") for _, s, d in dims]
            hi = [self._bound(s, d, "max") for _, s, d in dims]
            return RectangleGate(gid, parent, tuple(d for d, _, _ in dims), tuple(lo), tuple(hi))
        if kind == "PolygonGate":
            dims = self.dims(elem)
            verts = [
                [float(c.get(_D + "value")) for c in v.findall(_G + "coordinate")]
                for v in elem.findall(_G + "vertex")
            ]
            xs = self.to_scale(dims[0][1], [v[0] for v in verts])
            ys = self.to_scale(dims[1][1], [v[1] for v in verts])
            return PolygonGate(gid, parent, (dims[0][0], dims[1][0]), tuple(zip(xs, ys, strict=True)))
        if kind == "EllipsoidGate":
            return self.ellipse(elem, gid, parent)
        raise FlowJoError(f"line {elem.sourceline}: FlowJo gate type {kind!r} is not supported.")

    def _bound(self, scale: _Scale, d: etree._Element, which: str) -> float | None:
        value = d.get(_G + which)
        if value is None:
            return None
        out = self.to_scale(scale, [float(value)])[0]
        return None if math.isnan(out) else out

    def ellipse(self, elem: etree._Element, gid: str, parent: str | None) -> EllipsoidGate:
        """Foci + edge points on the display scale -> centre/covariance on our scale."""
        dims = self.dims(elem)

        def points(tag: str) -> np.ndarray:
            group = elem.find(_G + tag)
            return np.array(
                [
                    [float(c.get(_D + "value")) for c in v.findall(_G + "coordinate")]
                    for v in group.findall(_G + "vertex")
                ]
            )

        foci, edge = points("foci"), points("edge")
        centre = foci.mean(axis=0)
        dist = np.sort(np.linalg.norm(edge - centre, axis=1))
        a = float(dist[-2:].mean())
        c = float(np.linalg.norm(foci[1] - foci[0]) / 2)
        b = math.sqrt(max(a * a - c * c, 1e-12 * a * a))
        u = (foci[1] - foci[0]) / (2 * c) if c > 0 else np.array([1.0, 0.0])
        rot = np.array([[u[0], -u[1]], [u[1], u[0]]])
        cov = rot @ np.diag([a * a, b * b]) @ rot.T
        # display -> our scale, per axis: affine, so the ellipse stays an ellipse
        offset, factor = np.zeros(2), np.ones(2)
        for k, (_, scale, _) in enumerate(dims):
            if scale.transform is None:
                offset[k], factor[k] = scale.lin_min, (scale.lin_max - scale.lin_min) / scale.length
            else:
                factor[k] = 1.0 / scale.length
        mean = offset + factor * centre
        cov = np.diag(factor) @ cov @ np.diag(factor)
        return EllipsoidGate(
            gid, parent, tuple(d for d, _, _ in dims), tuple(mean), tuple(tuple(r) for r in cov), 1.0
        )


def _walk(
    node: etree._Element, path: tuple[str, ...], out: list[tuple[tuple[str, ...], etree._Element]]
) -> None:
    subs = node.find("Subpopulations")
    if subs is None:
        return
    for child in subs:
        if child.tag in _NODES:
            child_path = path + (child.get("name", ""),)
            out.append((child_path, child))
            _walk(child, child_path, out)


def _ids(paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """Population name, or the shortest '/'-joined path suffix that is unique."""
    ids: dict[tuple[str, ...], str] = {}
    for p in paths:
        for k in range(1, len(p) + 1):
            suffix = p[-k:]
            if sum(1 for q in paths if q[-k:] == suffix) == 1:
                ids[p] = "/".join(suffix)
                break
        else:
            ids[p] = "/".join(p)
    return ids


def read_flowjo_strategy(wsp_path: str | Path, sample: str) -> GatingStrategy:
    """Gates, compensation and transforms that a FlowJo 10 workspace applies to one sample.

    Parameters
    ----------
    wsp_path : str or Path
        FlowJo 10 workspace (.wsp).
    sample : str
        The sample's name in the workspace (``SampleNode`` name, e.g. ``"sample_01.fcs"``), its stem, or the
        file name of its ``DataSet``; :func:`flowjo_samples` lists them.

    Returns
    -------
    GatingStrategy
        Gate ids are population names (paths where a name is not unique).

    Raises
    ------
    FlowJoError
        Not a FlowJo 10 workspace, unknown sample, or gates/transforms we cannot reproduce (all listed).
    """
    from .strategy import GatingStrategy

    path = Path(wsp_path)
    ws = _Workspace(path)
    root = _parse(path)
    elem = _find_sample(root, path, sample)
    spill, prefix = _spillover(elem, ws)
    conv = _Converter(ws, spill, prefix, _scales(elem, ws))
    nodes: list[tuple[tuple[str, ...], etree._Element]] = []
    _walk(elem.find("SampleNode"), (), nodes)
    ids = _ids([p for p, _ in nodes])
    gates: list[Gate] = []
    for node_path, node in nodes:
        gid = ids[node_path]
        parent = ids.get(node_path[:-1])
        try:
            gates.append(_node_gate(conv, node, gid, parent, ids))
        except (FlowJoError, CytometryError) as exc:
            ws.problems.append(Problem(f"population {'/'.join(node_path)!r}", str(exc)))
    if ws.problems:
        raise FlowJoError(f"{path}: sample {sample!r} cannot be reproduced", ws.problems)
    transforms = {tid: xf for xf, tid in ws.transform_ids.items()}
    spillovers = {spill.id: spill} if spill is not None else {}
    try:
        return GatingStrategy(gates, transforms, spillovers, source=f"{path} [{sample}]")
    except CytometryError as exc:
        raise FlowJoError(
            f"{path}: sample {sample!r} cannot be reproduced", [Problem(str(path), str(exc))]
        ) from None


def _node_gate(
    conv: _Converter, node: etree._Element, gid: str, parent: str | None, ids: dict[tuple[str, ...], str]
) -> Gate:
    if node.tag == "Population":
        holder = node.find("Gate")
        gate_elems = [] if holder is None else [g for g in holder if isinstance(g.tag, str)]
        if len(gate_elems) != 1:
            raise FlowJoError(f"line {node.sourceline}: expected one gate, found {len(gate_elems)}.")
        return conv.gate(gate_elems[0], gid, parent)
    deps = [tuple(d.get("name", "").split("/")) for d in node.iter("Dependent")]
    refs = []
    for dep in deps:
        if dep not in ids:
            raise FlowJoError(
                f"line {node.sourceline}: boolean node refers to unknown population {'/'.join(dep)!r}."
            )
        refs.append((ids[dep], False))
    op = {"AndNode": "and", "OrNode": "or", "NotNode": "not"}[node.tag]
    return BooleanGate(gid, parent, op, tuple(refs))  # type: ignore[arg-type]
