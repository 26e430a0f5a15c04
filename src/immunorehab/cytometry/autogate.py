"""Automatic per-sample gate placement for panel templates.

Starting from a template strategy, each auto-placed gate is moved to where the sample's
own density says it belongs, parents first:

1. ``qc``: the Time range is trimmed to the stable part of the run;
2. ``lymphocytes``: the polygon becomes the density contour around the lymphocyte cluster;
3. ``singlets``: the FSC-A/FSC-H band is fitted to the single-cell ratio;
4. every marker threshold moves to the valley between negative and positive modes of its
   parent population (e.g. CCR7 within CD4 T cells), shared by all gates that use it.

Every decision is recorded as a :class:`GateMove` (template position, placed position,
status); a threshold whose distribution has no clear valley keeps the template position
(status ``kept``) and the caller raises the ``no_clear_valley`` QC flag.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from immunorehab.errors import TemplateError

from .density import TimeWindow, cluster_polygon, find_valley, singlet_band, stable_time_window

if TYPE_CHECKING:
    from .engine import EventValues
    from .gates import Dimension, Gate, PolygonGate, RectangleGate
    from .panel import Panel
    from .sample import Sample
    from .strategy import GatingStrategy

__all__ = [
    "TCELL_MEMORY_RULES",
    "AutoGateRules",
    "AutoGateSettings",
    "GateMove",
    "Placement",
    "ThresholdRule",
    "place_gates",
]

Bound = Literal["min", "max"]
MoveStatus = Literal["moved", "unchanged", "kept"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """One marker threshold: its distribution is ``marker`` within ``population``.

    ``targets`` lists ``(gate id, bound)`` pairs that take the threshold; each target gate is
    a rectangle child of ``population`` with a dimension on ``marker``.
    """

    marker: str
    population: str
    targets: tuple[tuple[str, Bound], ...]

    @property
    def name(self) -> str:
        return f"{self.population}:{self.marker}"


@dataclass(frozen=True, slots=True)
class AutoGateRules:
    """Which gates of a template are placed automatically, and how."""

    time_gate: str | None
    time_channel: str
    cluster_gates: tuple[str, ...]
    singlet_gates: tuple[str, ...]
    thresholds: tuple[ThresholdRule, ...]


def _memory_rules(s: str) -> tuple[ThresholdRule, ...]:
    naive, cm, em, temra = (f"{s}_{k}" for k in ("naive", "cm", "em", "temra"))
    return (
        ThresholdRule("CCR7", s, ((naive, "min"), (cm, "min"), (em, "max"), (temra, "max"))),
        ThresholdRule("CD45RA", s, ((naive, "min"), (cm, "max"), (em, "max"), (temra, "min"))),
        ThresholdRule("HLA-DR", s, ((f"{s}_activated", "min"),)),
        ThresholdRule("CD38", s, ((f"{s}_activated", "min"),)),
        ThresholdRule("CD57", s, ((f"{s}_senescent", "min"),)),
        ThresholdRule("CD28", s, ((f"{s}_senescent", "max"),)),
    )


#: Auto-placement of the shipped ``tcell-memory`` template (marker names before panel mapping).
TCELL_MEMORY_RULES = AutoGateRules(
    time_gate="qc",
    time_channel="Time",
    cluster_gates=("lymphocytes",),
    singlet_gates=("singlets",),
    thresholds=(
        ThresholdRule("Viability", "singlets", (("live", "max"),)),
        ThresholdRule("CD3", "live", (("t_cells", "min"), ("nk", "max"))),
        ThresholdRule("CD56", "live", (("nk", "min"),)),
        ThresholdRule("CD4", "t_cells", (("cd4", "min"), ("cd8", "max"))),
        ThresholdRule("CD8", "t_cells", (("cd4", "max"), ("cd8", "min"))),
        ThresholdRule("CD56", "nk", (("nk_cd56bright", "min"), ("nk_cd56dim", "max"))),
        ThresholdRule("CD16", "nk", (("nk_cd56bright", "max"), ("nk_cd56dim", "min"))),
        *_memory_rules("cd4"),
        *_memory_rules("cd8"),
    ),
)


@dataclass(frozen=True, slots=True)
class AutoGateSettings:
    """Tuning of the placement maths (part of a batch's strategy hash).

    ``max_depth``/``max_shift``: valley criteria (:func:`~.density.find_valley`);
    ``cluster_levels``: contour levels of scatter clusters as fractions of the peak (most generous first);
    ``singlet_width_sd``: half-width of the singlet band in robust SDs;
    ``time_bins``/``time_tolerance``: flow-rate check (:func:`~.density.stable_time_window`).
    """

    max_depth: float = 0.5
    max_shift: float = 0.25
    min_mode_fraction: float = 0.005
    cluster_levels: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1)
    singlet_width_sd: float = 5.0
    time_bins: int = 100
    time_tolerance: float = 0.5

    @property
    def sha256(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class GateMove:
    """Where one auto-placed item went: a threshold, a scatter polygon or the time range.

    ``template_value``/``placed_value`` are scale positions for thresholds and ``None`` for
    polygons (``detail`` then gives centroid and area). ``status``: ``moved``; ``unchanged``
    (the data were clear and needed no move, e.g. steady flow needs no time trim); ``kept``
    (the template position was kept because the data gave no clear answer: QC flag).
    """

    rule: str
    gates: tuple[str, ...]
    dimension: str
    template_value: float | None
    placed_value: float | None
    status: MoveStatus
    detail: str

    @property
    def shift(self) -> float | None:
        if self.template_value is None or self.placed_value is None:
            return None
        return self.placed_value - self.template_value


@dataclass(frozen=True, slots=True)
class Placement:
    """The per-sample strategy and the record of every move."""

    strategy: GatingStrategy
    moves: tuple[GateMove, ...]
    time_window: TimeWindow | None

    @property
    def unclear(self) -> tuple[GateMove, ...]:
        """Moves that kept the template because the distribution had no clear valley/cluster."""
        return tuple(m for m in self.moves if m.status == "kept")


# -- checking that rules fit a strategy ------------------------------------------------------


def _channel(name: str, panel: Panel | None) -> str:
    return panel.channel(name) if panel is not None else name


def _dim_index(gate: RectangleGate | PolygonGate, channel: str) -> int:
    for i, dim in enumerate(gate.dimensions):
        if dim.channel == channel:
            return i
    raise TemplateError(
        f"auto-placement: gate {gate.id!r} has no dimension on {channel!r} "
        f"(its dimensions: {', '.join(d.channel for d in gate.dimensions)})"
    )


def _check_rules(strategy: GatingStrategy, rules: AutoGateRules, panel: Panel | None) -> None:
    from .gates import PolygonGate, RectangleGate

    problems: list[str] = []
    ids = set(strategy.gate_ids)
    wanted = [g for r in rules.thresholds for g, _ in r.targets] + list(
        rules.cluster_gates + rules.singlet_gates
    )
    absent = [g for g in dict.fromkeys(wanted) if g not in ids]
    if absent:
        problems.append(f"gates {', '.join(absent)} are not in the strategy")
    for rule in rules.thresholds:
        for gate_id, _ in rule.targets:
            if gate_id not in ids:
                continue
            gate = strategy.get_gate(gate_id)
            if not isinstance(gate, RectangleGate) or gate.parent != rule.population:
                problems.append(
                    f"gate {gate_id!r} must be a rectangle gate whose parent is {rule.population!r}"
                )
            elif _channel(rule.marker, panel) not in [d.channel for d in gate.dimensions]:
                hint = "" if panel is not None else " (pass the panel that maps the markers to channels)"
                problems.append(
                    f"gate {gate_id!r} has no dimension on {_channel(rule.marker, panel)!r} "
                    f"(marker {rule.marker}){hint}"
                )
    for gate_id in rules.cluster_gates + rules.singlet_gates:
        if gate_id in ids and not isinstance(strategy.get_gate(gate_id), PolygonGate):
            problems.append(f"gate {gate_id!r} must be a polygon gate of the strategy")
    if rules.time_gate is not None and rules.time_gate not in ids:
        problems.append(f"gate {rules.time_gate!r} (time QC) is not in the strategy")
    if problems:
        raise TemplateError(
            "this strategy does not fit automatic placement (run with auto-placement off for a custom "
            "strategy):\n" + "\n".join(f"  - {p}" for p in problems)
        )


# -- placing ---------------------------------------------------------------------------------


class _Placer:
    """Stateful helper: the strategy being moved, cached dimension values and population masks."""

    def __init__(
        self,
        strategy: GatingStrategy,
        sample: Sample,
        rules: AutoGateRules,
        panel: Panel | None,
        s: AutoGateSettings,
        values: EventValues,
    ) -> None:
        self.strategy = strategy
        self.event_values = values
        self.sample = sample
        self.rules = rules
        self.panel = panel
        self.settings = s
        self.moves: list[GateMove] = []
        self.time_window: TimeWindow | None = None
        self._values: dict[Dimension, FloatArray] = {}
        self._pending: dict[str, Gate] = {}

    def values(self, dim: Dimension) -> FloatArray:
        if dim not in self._values:
            self._values[dim] = self.strategy.dimension_values(self.sample, [dim], values=self.event_values)[
                :, 0
            ]
        return self._values[dim]

    def masks(self, populations: Sequence[str]) -> dict[str, npt.NDArray[np.bool_]]:
        """Membership of ``populations`` under the current (partly placed) strategy."""
        from .strategy import GatingStrategy

        self.commit()
        needed: dict[str, None] = {}
        for pop in populations:
            chain: list[str] = []
            node: str | None = pop
            while node is not None:
                chain.append(node)
                node = self.strategy.parent_of(node)
            for gid in reversed(chain):
                needed.setdefault(gid, None)
        gates = {self.strategy.get_gate(g).id: self.strategy.get_gate(g) for g in needed}
        partial = GatingStrategy(gates.values(), self.strategy.transforms, self.strategy.spillovers)
        results = partial.gate(self.sample, values=self.event_values)
        return {p: np.asarray(results.membership(p)) for p in populations}

    def gate(self, gate_id: str) -> Gate:
        """The gate as placed so far (pending replacements included)."""
        return self._pending.get(gate_id) or self.strategy.get_gate(gate_id)

    def replace(self, gate: RectangleGate | PolygonGate) -> None:
        self._pending[gate.id] = gate

    def commit(self) -> None:
        """Build the strategy with the pending replacements (once per level, not once per gate)."""
        from .strategy import GatingStrategy

        if self._pending:
            gates = [self._pending.get(g.id, g) for g in self.strategy.gates]
            self.strategy = GatingStrategy(gates, self.strategy.transforms, self.strategy.spillovers)
            self._pending = {}


def _set_bound(gate: RectangleGate, index: int, bound: Bound, value: float) -> RectangleGate:
    mins, maxs = list(gate.minimums), list(gate.maximums)
    (mins if bound == "min" else maxs)[index] = value
    return dataclasses.replace(gate, minimums=tuple(mins), maximums=tuple(maxs))


def _place_time(p: _Placer) -> None:
    from .gates import RectangleGate

    gid = p.rules.time_gate
    if gid is None:
        return
    gate = p.strategy.get_gate(gid)
    assert isinstance(gate, RectangleGate)
    channel = _channel(p.rules.time_channel, p.panel)
    i = _dim_index(gate, channel)
    window = stable_time_window(
        p.values(gate.dimensions[i]), bins=p.settings.time_bins, tolerance=p.settings.time_tolerance
    )
    p.time_window = window
    lo, hi = gate.minimums[i], gate.maximums[i]
    if window.start is not None:
        gate = _set_bound(gate, i, "min", window.start if lo is None else max(lo, window.start))
    if window.end is not None:
        gate = _set_bound(gate, i, "max", window.end if hi is None else min(hi, window.end))
    trimmed = window.start is not None or window.end is not None
    status: MoveStatus = "moved" if trimmed else "unchanged" if window.bins else "kept"
    p.replace(gate)
    detail = (
        f"stable run {_fmt(window.start)} .. {_fmt(window.end)}; {window.unstable_fraction:.1%} of events in "
        f"unstable time bins; rate CV {window.rate_cv:.2f}"
    )
    if not window.bins:
        detail = "too few events or no time spread to check the flow rate; template range kept"
    p.moves.append(GateMove("time", (gid,), channel, None, None, status, detail))


def _fmt(value: float | None) -> str:
    return "open" if value is None else f"{value:.4g}"


def _centroid_area(vertices: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    v = np.asarray(vertices, dtype=np.float64)
    x, y = v[:, 0], v[:, 1]
    xs, ys = np.roll(x, -1), np.roll(y, -1)
    cross = x * ys - xs * y
    area = cross.sum() / 2
    if abs(area) < 1e-15:
        return float(x.mean()), float(y.mean()), 0.0
    return (
        float(((x + xs) * cross).sum() / (6 * area)),
        float(((y + ys) * cross).sum() / (6 * area)),
        abs(area),
    )


def _polygon_detail(old: Sequence[tuple[float, float]], new: Sequence[tuple[float, float]]) -> str:
    ox, oy, oa = _centroid_area(old)
    nx, ny, na = _centroid_area(new)
    ratio = na / oa if oa else math.nan
    return f"centroid ({ox:.4g}, {oy:.4g}) -> ({nx:.4g}, {ny:.4g}); area x{ratio:.2f}; {len(new)} vertices"


def _place_clusters(p: _Placer) -> None:
    from .gates import PolygonGate

    for gid in p.rules.cluster_gates:
        gate = p.strategy.get_gate(gid)
        assert isinstance(gate, PolygonGate)
        mask = p.masks([gate.parent])[gate.parent] if gate.parent else np.ones(p.sample.n_events, dtype=bool)
        x, y = p.values(gate.dimensions[0])[mask], p.values(gate.dimensions[1])[mask]
        found = cluster_polygon(x, y, template=gate.vertices, levels=p.settings.cluster_levels)
        dims = f"{gate.dimensions[0].channel} x {gate.dimensions[1].channel}"
        if found.clear and found.vertices is not None:
            p.replace(dataclasses.replace(gate, vertices=found.vertices))
            detail = _polygon_detail(gate.vertices, found.vertices)
            p.moves.append(GateMove("cluster", (gid,), dims, None, None, "moved", detail))
        else:
            p.moves.append(GateMove("cluster", (gid,), dims, None, None, "kept", found.reason))


def _band_polygon(
    template: Sequence[tuple[float, float]], low: float, high: float
) -> tuple[tuple[float, float], ...]:
    xs = [v[0] for v in template]
    x0, x1 = min(xs), max(xs)
    return ((x0, x0 / high), (x1, x1 / high), (x1, x1 / low), (x0, x0 / low))


def _template_ratios(vertices: Sequence[tuple[float, float]]) -> tuple[float, float]:
    ratios = [x / y for x, y in vertices if y > 0]
    return (min(ratios), max(ratios)) if ratios else (1.0, 1.5)


def _place_singlets(p: _Placer) -> None:
    from .gates import PolygonGate

    for gid in p.rules.singlet_gates:
        gate = p.strategy.get_gate(gid)
        assert isinstance(gate, PolygonGate)
        mask = p.masks([gate.parent])[gate.parent] if gate.parent else np.ones(p.sample.n_events, dtype=bool)
        area, height = p.values(gate.dimensions[0])[mask], p.values(gate.dimensions[1])[mask]
        band = singlet_band(
            area, height, template=_template_ratios(gate.vertices), width_sd=p.settings.singlet_width_sd
        )
        dims = f"{gate.dimensions[0].channel}/{gate.dimensions[1].channel}"
        if band.clear:
            vertices = _band_polygon(gate.vertices, band.low, band.high)
            p.replace(dataclasses.replace(gate, vertices=vertices))
            detail = f"ratio band {band.low:.3f} .. {band.high:.3f} around mode {band.mode:.3f}"
            p.moves.append(GateMove("singlets", (gid,), dims, None, None, "moved", detail))
        else:
            p.moves.append(GateMove("singlets", (gid,), dims, None, None, "kept", band.reason))


def _place_threshold(p: _Placer, rule: ThresholdRule, mask: npt.NDArray[np.bool_]) -> None:
    from .gates import RectangleGate

    channel = _channel(rule.marker, p.panel)
    first = p.gate(rule.targets[0][0])
    assert isinstance(first, RectangleGate)
    i = _dim_index(first, channel)
    template = first.minimums[i] if rule.targets[0][1] == "min" else first.maximums[i]
    assert template is not None
    s = p.settings
    valley = find_valley(
        p.values(first.dimensions[i])[mask],
        near=template,
        max_depth=s.max_depth,
        max_shift=s.max_shift,
        min_mode_fraction=s.min_mode_fraction,
    )
    for gate_id, bound in rule.targets:
        gate = p.gate(gate_id)
        assert isinstance(gate, RectangleGate)
        p.replace(_set_bound(gate, _dim_index(gate, channel), bound, valley.threshold))
    gates = tuple(g for g, _ in rule.targets)
    if valley.clear:
        detail = (
            f"valley between modes {valley.negative_mode:.3f} and {valley.positive_mode:.3f} "
            f"(depth {valley.depth:.2f}, {valley.n_events} events)"
        )
        p.moves.append(GateMove(rule.name, gates, channel, template, valley.threshold, "moved", detail))
    else:
        detail = f"no clear valley: {valley.reason} ({valley.n_events} events); template position kept"
        p.moves.append(GateMove(rule.name, gates, channel, template, template, "kept", detail))


def _depth(strategy: GatingStrategy, gate_id: str) -> int:
    depth, node = 0, strategy.parent_of(gate_id)
    while node is not None:
        depth, node = depth + 1, strategy.parent_of(node)
    return depth


def place_gates(
    strategy: GatingStrategy,
    sample: Sample,
    *,
    rules: AutoGateRules = TCELL_MEMORY_RULES,
    panel: Panel | None = None,
    settings: AutoGateSettings | None = None,
    values: EventValues | None = None,
) -> Placement:
    """Move a template's gates to this sample's populations.

    Parameters
    ----------
    strategy : GatingStrategy
        The template strategy (already mapped through ``panel``).
    sample : Sample
        The sample to place gates for.
    rules : AutoGateRules
        Which gates move and how (default: the ``tcell-memory`` template's rules).
    panel : Panel, optional
        The panel the strategy was mapped with (rules name markers, gates name channels).
    settings : AutoGateSettings, optional
        Tuning of the placement maths.
    values : EventValues, optional
        Compensated/transformed columns of ``sample`` shared with later gating (one per sample);
        every partial gating of the placement reuses them.

    Returns
    -------
    Placement
        The per-sample strategy and one :class:`GateMove` per placed item.

    Raises
    ------
    TemplateError
        The strategy lacks gates or dimensions the rules need.
    """
    _check_rules(strategy, rules, panel)
    from .engine import EventValues

    shared = values if values is not None else EventValues(strategy, sample)
    placer = _Placer(strategy, sample, rules, panel, settings or AutoGateSettings(), shared)
    _place_time(placer)
    _place_clusters(placer)
    _place_singlets(placer)
    by_depth: dict[int, list[ThresholdRule]] = {}
    for rule in rules.thresholds:
        by_depth.setdefault(_depth(strategy, rule.population), []).append(rule)
    for depth in sorted(by_depth):
        level = by_depth[depth]
        placer.commit()
        masks = placer.masks(list(dict.fromkeys(r.population for r in level)))
        for rule in level:
            _place_threshold(placer, rule, masks[rule.population])
    placer.commit()
    return Placement(placer.strategy, tuple(placer.moves), placer.time_window)
