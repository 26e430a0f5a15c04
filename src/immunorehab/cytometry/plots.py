"""2-D density plots of each gate on its parent's events, with the gate drawn on top.

One figure per sample: a panel per (parent population, pair of dimensions), showing the
parent's events as a log-scaled 2-D histogram on the gating scale and every gate drawn on
those dimensions (rectangles, polygons, ellipses, quadrant dividers) labelled with
``id pct_parent%``. A 1-D range gate is drawn against SSC-A (the classic marker-vs-side-scatter
view) when the strategy has an SSC dimension, else as a histogram. Written with the Agg
backend as PNG or SVG (temp file + rename).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from immunorehab.errors import ConfigError
from immunorehab.study.export import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .gates import Dimension, Gate
    from .results import GatingResults
    from .sample import Sample
    from .strategy import GatingStrategy

__all__ = ["PlotPanel", "gate_panels", "plot_gates", "write_gate_plot"]

PlotFormat = Literal["png", "svg"]
_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass(frozen=True, slots=True)
class PlotPanel:
    """One panel: the parent population shown, the x/y dimensions (y None: histogram) and the gates drawn."""

    parent: str | None
    x: Dimension
    y: Dimension | None
    gates: tuple[str, ...]


def _side_scatter(strategy: GatingStrategy) -> Dimension | None:
    for dim in strategy.dimensions_used():
        if dim.channel.upper().startswith("SSC") and dim.channel.upper().endswith("-A"):
            return dim
    return None


def gate_panels(strategy: GatingStrategy) -> list[PlotPanel]:
    """The panels of a strategy's plot: gates grouped by parent and dimensions, in gating order."""
    from .gates import BooleanGate, QuadrantGate

    ssc = _side_scatter(strategy)
    panels: dict[tuple[object, ...], list[str]] = {}
    axes: dict[tuple[object, ...], tuple[Dimension, Dimension | None]] = {}
    for gate in strategy.gates:
        if isinstance(gate, BooleanGate) or not gate.dimensions:
            continue
        dims = gate.dimensions
        if len(dims) == 1:
            pair: tuple[Dimension, Dimension | None] = (dims[0], ssc if ssc != dims[0] else None)
        else:
            pair = (dims[0], dims[1])
        key = (gate.parent, pair)
        ids = gate.quadrant_ids if isinstance(gate, QuadrantGate) else (gate.id,)
        panels.setdefault(key, []).extend(ids)
        axes[key] = pair
    return [PlotPanel(key[0], axes[key][0], axes[key][1], tuple(ids)) for key, ids in panels.items()]  # type: ignore[arg-type]


def _limits(values: np.ndarray, extra: Sequence[float]) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    lo, hi = (float(v) for v in np.percentile(finite, [0.2, 99.8])) if finite.size else (0.0, 1.0)
    points = [lo, hi, *[e for e in extra if np.isfinite(e)]]
    lo, hi = min(points), max(points)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


def _gate_coords(gate: Gate, x: Dimension, y: Dimension | None) -> tuple[list[float], list[float]]:
    from .gates import PolygonGate, RectangleGate

    xs: list[float] = []
    ys: list[float] = []
    if isinstance(gate, RectangleGate):
        for dim, lo, hi in zip(gate.dimensions, gate.minimums, gate.maximums, strict=True):
            target = xs if dim == x else ys if dim == y else None
            if target is not None:
                target.extend(v for v in (lo, hi) if v is not None)
    elif isinstance(gate, PolygonGate):
        xs = [v[0] for v in gate.vertices]
        ys = [v[1] for v in gate.vertices]
    return xs, ys


def _draw_gate(ax: Axes, gate: Gate, panel: PlotPanel, label: str, color: str) -> None:
    from matplotlib.patches import Polygon, Rectangle

    from .gates import EllipsoidGate, PolygonGate, QuadrantGate, RectangleGate

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    if isinstance(gate, RectangleGate):
        bounds = {
            d: (lo, hi) for d, lo, hi in zip(gate.dimensions, gate.minimums, gate.maximums, strict=True)
        }
        xlo, xhi = bounds.get(panel.x, (None, None))
        ylo, yhi = bounds.get(panel.y, (None, None)) if panel.y is not None else (None, None)
        left, right = (x0 if xlo is None else xlo), (x1 if xhi is None else xhi)
        bottom, top = (y0 if ylo is None else ylo), (y1 if yhi is None else yhi)
        ax.add_patch(Rectangle((left, bottom), right - left, top - bottom, fill=False, ec=color, lw=1.3))
        ax.annotate(
            label, (left, top), color=color, fontsize=7, va="top", xytext=(2, -2), textcoords="offset points"
        )
    elif isinstance(gate, PolygonGate):
        ax.add_patch(Polygon(np.asarray(gate.vertices), closed=True, fill=False, ec=color, lw=1.3))
        vx, vy = np.asarray(gate.vertices).T
        ax.annotate(
            label, (float(vx.mean()), float(vy.max())), color=color, fontsize=7, ha="center", va="bottom"
        )
    elif isinstance(gate, EllipsoidGate) and len(gate.dimensions) == 2:
        cov = np.asarray(gate.covariance) * gate.distance_square
        vals, vecs = np.linalg.eigh(cov)
        t = np.linspace(0, 2 * np.pi, 100)
        circle = np.column_stack([np.cos(t), np.sin(t)]) * np.sqrt(np.maximum(vals, 0))
        pts = circle @ vecs.T + np.asarray(gate.mean)
        ax.plot(pts[:, 0], pts[:, 1], color=color, lw=1.3)
        ax.annotate(label, (float(gate.mean[0]), float(gate.mean[1])), color=color, fontsize=7, ha="center")
    elif isinstance(gate, QuadrantGate):
        for dim, divider in zip(gate.dimensions, gate.dividers, strict=True):
            for v in divider.values:
                (ax.axvline if dim == panel.x else ax.axhline)(v, color=color, lw=1.0)


def _axis_label(sample: Sample, dim: Dimension) -> str:
    marker = ""
    if dim.channel in sample.channels:
        marker = sample.markers[sample.channels.index(dim.channel)]
    return f"{marker} ({dim.channel})" if marker and marker != dim.channel else dim.channel


def _draw_panel(
    ax: Axes,
    panel: PlotPanel,
    strategy: GatingStrategy,
    sample: Sample,
    results: GatingResults,
    values: np.ndarray,
) -> None:
    from matplotlib.colors import LogNorm

    parent_mask = (
        np.asarray(results.membership(panel.parent), dtype=bool)
        if panel.parent
        else np.ones(sample.n_events, dtype=bool)
    )
    gates = [strategy.get_gate(g) for g in dict.fromkeys(strategy.get_gate(i).id for i in panel.gates)]
    coords = [_gate_coords(g, panel.x, panel.y) for g in gates]
    x = values[parent_mask, 0]
    xlim = _limits(x, [c for cx, _ in coords for c in cx])
    if panel.y is None:
        ax.hist(x[np.isfinite(x)], bins=200, range=xlim, color="0.4", histtype="stepfilled")
        ax.set_xlim(xlim)
    else:
        y = values[parent_mask, 1]
        ylim = _limits(y, [c for _, cy in coords for c in cy])
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            counts, _, _ = np.histogram2d(x[ok], y[ok], bins=160, range=(xlim, ylim))
            image = np.ma.masked_less(counts.T, 1)
            ax.imshow(
                image,
                origin="lower",
                extent=(*xlim, *ylim),
                aspect="auto",
                cmap="viridis",
                norm=LogNorm(vmin=1, vmax=max(1.0, float(counts.max()))),
                interpolation="nearest",
            )
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.set_ylabel(_axis_label(sample, panel.y), fontsize=8)
    ax.set_xlabel(_axis_label(sample, panel.x), fontsize=8)
    title = f"{panel.parent or 'all events'} ({int(parent_mask.sum()):,} events)"
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    for k, gate in enumerate(gates):
        ids = [i for i in panel.gates if strategy.get_gate(i).id == gate.id]
        label = ", ".join(f"{i} {_pct(results, i):.1f}%" for i in ids)
        _draw_gate(ax, gate, panel, label, _COLORS[k % len(_COLORS)])


def _pct(results: GatingResults, gate_id: str) -> float:
    parent = results.parent_of(gate_id)
    base = results.count(parent) if parent else results.n_events
    return 100.0 * results.count(gate_id) / base if base else float("nan")


def plot_gates(
    strategy: GatingStrategy,
    sample: Sample,
    results: GatingResults,
    *,
    columns: int = 4,
    title: str | None = None,
) -> Figure:
    """A figure with one density panel per parent/dimension pair, gates drawn on top."""
    from matplotlib.figure import Figure

    panels = gate_panels(strategy)
    rows = max(1, -(-len(panels) // columns))
    fig = Figure(figsize=(3.2 * columns, 3.0 * rows), dpi=100, layout="constrained")
    dims: dict[Dimension, None] = {}
    for p in panels:
        dims.setdefault(p.x, None)
        if p.y is not None:
            dims.setdefault(p.y, None)
    order = list(dims)
    values = strategy.dimension_values(sample, order) if order else np.empty((sample.n_events, 0))
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(rows, columns, k + 1)
        cols = [order.index(panel.x)] + ([order.index(panel.y)] if panel.y is not None else [])
        _draw_panel(ax, panel, strategy, sample, results, values[:, cols])
    fig.suptitle(title or f"{sample.name}: {sample.n_events:,} events", fontsize=11)
    return fig


def write_gate_plot(
    strategy: GatingStrategy,
    sample: Sample,
    results: GatingResults,
    path: str | Path,
    *,
    overwrite: bool = False,
    title: str | None = None,
) -> Path:
    """Write :func:`plot_gates` to ``path`` (``.png`` or ``.svg``), temp file + rename."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ConfigError(f"plot file {path} must end in .png or .svg, got {path.suffix or 'no suffix'!r}")
    fig = plot_gates(strategy, sample, results, title=title)
    FigureCanvasAgg(fig)

    def writer(tmp: Path) -> None:
        fig.savefig(tmp, format=fmt, dpi=110)

    return atomic_write(path, writer, overwrite=overwrite)
