"""Evaluation of a gating strategy on a sample.

Design (what makes it fast and lean on a 1,000,000-event file):

* every distinct ``(channel, compensation, transform)`` column is computed once and shared by all gates
  that use it, and released after its last use;
* only the channels that gates use are compensated, in one blocked matrix product per spillover matrix;
* logicle/hyperlog on large arrays use the table-driven path of :mod:`._fastlogicle`;
* a gate whose parent holds a minority of events is evaluated on the parent's events only;
* memberships are boolean arrays; no pandas in the hot path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from flowutils import gating as fu_gating

from immunorehab.errors import CytometryError, GateError

from . import _fastlogicle
from .compensation import Spillover, compensation_operator
from .gates import (
    FCS,
    UNCOMPENSATED,
    BooleanGate,
    Dimension,
    EllipsoidGate,
    Gate,
    PolygonGate,
    QuadrantGate,
    RectangleGate,
)
from .results import BoolArray, GatingResults
from .sample import Sample
from .strategy import GatingStrategy, ProgressCallback
from .transforms import HyperlogTransform, LogicleTransform, RatioTransform

__all__ = ["EventValues", "gate_sample", "evaluate_gate"]

FloatArray = npt.NDArray[np.float64]
BaseKey = tuple[str, str]  # (channel, compensation)
IndexArray = npt.NDArray[np.intp]
_SUBSET_FRACTION = 0.65


@dataclass(slots=True)
class _Column:
    """A dimension's values; ``done`` marks computed events (None once every event is)."""

    values: FloatArray
    done: BoolArray | None


@dataclass(slots=True)
class _Store:
    """Computed values of one sample, keyed by what they are (not by strategy-local ids), so that several
    strategies using the same transforms and matrices share them."""

    columns: dict[Hashable, _Column] = field(default_factory=dict)
    bases: dict[Hashable, FloatArray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class EventValues:
    """Compensated and transformed event values of one sample, computed on demand and cached.

    Parameters
    ----------
    strategy : GatingStrategy
        Supplies transforms and spillover matrices by id.
    sample : Sample
        The events.
    fast : bool, optional
        Use the table-driven logicle/hyperlog path (within 1e-7 relative of flowutils; the table is cached
        per parameter set). Default: only for samples of at least 200,000 events, where it always pays; a
        batch of many small files gains from it too once the table is cached.

    Notes
    -----
    Pass the same object to several ``strategy.gate(sample, values=...)`` calls (e.g. growing partial
    strategies during auto-placement) to compute each (channel, compensation, transform) column once. Values
    are cached by the transform and matrix themselves, so strategies may use different ids for them. A shared
    object keeps every column it computed (it cannot know whether a later gating needs it).
    """

    def __init__(
        self,
        strategy: GatingStrategy,
        sample: Sample,
        *,
        fast: bool | None = None,
        _store: _Store | None = None,
    ) -> None:
        self.strategy = strategy
        self.sample = sample
        self.fast = sample.n_events >= _fastlogicle.MIN_SIZE if fast is None else fast
        self._keep = _store is not None
        self._store = _store if _store is not None else _Store()
        self._base_uses: Counter[BaseKey] = Counter()
        self._column_uses: Counter[Dimension] = Counter()
        self._wanted: dict[str, set[str]] = {}
        self._comp_keys: dict[str, Hashable] = {}

    @property
    def notes(self) -> list[str]:
        """Notes about the values (e.g. 'FCS' compensation asked but the file has no spillover matrix)."""
        return self._store.notes

    def for_strategy(self, strategy: GatingStrategy) -> EventValues:
        """Values for another strategy on the same sample, sharing (and keeping) what is computed."""
        self._keep = True
        return EventValues(strategy, self.sample, fast=self.fast, _store=self._store)

    # -- keys ---------------------------------------------------------------------------------

    def _comp_key(self, compensation: str) -> Hashable:
        key = self._comp_keys.get(compensation)
        if key is None:
            if compensation in (UNCOMPENSATED, FCS):
                key = compensation
            else:
                sp = self.strategy.spillovers[compensation]
                key = (sp.detectors, sp.fluorochromes, sp.matrix.tobytes())
            self._comp_keys[compensation] = key
        return key

    def _column_key(self, dim: Dimension) -> Hashable:
        what: Hashable = self.strategy.transforms[dim.channel] if dim.kind == "ratio" else dim.channel
        xf = None if dim.transform is None else self.strategy.transforms[dim.transform]
        return (dim.kind, what, self._comp_key(dim.compensation), xf)

    def _base_key(self, channel: str, compensation: str) -> Hashable:
        return (channel, self._comp_key(compensation))

    # -- planning -----------------------------------------------------------------------------

    def plan(self, gates: Sequence[Gate]) -> None:
        """Count uses so that columns are released after their last gate, and batch compensation."""
        for gate in gates:
            for dim in gate.dimensions:
                self._column_uses[dim] += 1
        for dim in self._column_uses:
            for key in self._base_keys(dim):
                self._base_uses[key] += 1
                if key[1] != UNCOMPENSATED:
                    self._wanted.setdefault(key[1], set()).add(key[0])

    def _base_keys(self, dim: Dimension) -> list[BaseKey]:
        if dim.kind == "ratio":
            ratio = self.strategy.transforms[dim.channel]
            assert isinstance(ratio, RatioTransform)
            return [(ratio.numerator, dim.compensation), (ratio.denominator, dim.compensation)]
        return [(dim.channel, dim.compensation)]

    def release(self, gate: Gate) -> None:
        """Forget columns that no later gate uses (keeps peak memory low), unless the values are shared."""
        for dim in gate.dimensions:
            self._column_uses[dim] -= 1
            if self._column_uses[dim] <= 0 and not self._keep:
                self._store.columns.pop(self._column_key(dim), None)
                for key in self._base_keys(dim):
                    self._base_uses[key] -= 1
                    if self._base_uses[key] <= 0:
                        self._store.bases.pop(self._base_key(*key), None)

    # -- values -------------------------------------------------------------------------------

    def column(self, dim: Dimension, rows: IndexArray | None = None) -> FloatArray:
        """Values of one dimension (compensated, then transformed) for all events or for ``rows``.

        Values are computed once per event and cached, so a column asked for the events of one parent and
        later for those of another computes only the events not seen before.
        """
        ckey = self._column_key(dim)
        col = self._store.columns.get(ckey)
        n = self.sample.n_events
        if col is None:
            col = _Column(np.empty(n, dtype=np.float64), np.zeros(n, dtype=bool))
            if self._column_uses[dim] > 0 or self._keep:
                self._store.columns[ckey] = col
        if col.done is None:
            return col.values if rows is None else col.values[rows]
        if rows is None or rows.size > _SUBSET_FRACTION * n:
            need = None if not col.done.any() else np.flatnonzero(~col.done)
        else:
            need = rows[~col.done[rows]]
        if need is None:
            col.values = self._compute(dim, None)
            col.done = None
        elif need.size:
            col.values[need] = self._compute(dim, need)
            col.done[need] = True
            if col.done.all():
                col.done = None
        return col.values if rows is None else col.values[rows]

    def _compute(self, dim: Dimension, rows: IndexArray | None) -> FloatArray:
        def base(channel: str) -> FloatArray:
            values = self.base(channel, dim.compensation)
            return values if rows is None else values[rows]

        if dim.kind == "ratio":
            ratio = self.strategy.transforms[dim.channel]
            assert isinstance(ratio, RatioTransform)
            values = ratio.apply_pair(base(ratio.numerator), base(ratio.denominator))
        else:
            values = base(dim.channel)
        if dim.transform is None:
            return np.asarray(values, dtype=np.float64)
        xf = self.strategy.transforms[dim.transform]
        if isinstance(xf, RatioTransform):
            raise GateError(
                f"Dimension {dim}: transform {dim.transform!r} is a ratio, not a scale transform."
            )
        if isinstance(xf, LogicleTransform | HyperlogTransform):
            return xf.apply(values, fast=self.fast)
        return xf.apply(values)

    def base(self, channel: str, compensation: str) -> FloatArray:
        """Channel-to-scale values of ``channel``, compensated as asked (not transformed)."""
        bkey = self._base_key(channel, compensation)
        cached = self._store.bases.get(bkey)
        if cached is not None:
            return cached
        spill = self._spillover(compensation)
        if spill is None or spill.fluorochrome_for(channel) is None:
            values = self._scaled(channel)
        else:
            wanted = self._wanted.get(compensation, set()) | {channel}
            self._compensate_block(compensation, spill, sorted(wanted))
            values = self._store.bases[bkey]
        keep = self._keep or self._base_uses[(channel, compensation)] > 0
        if keep:
            self._store.bases[bkey] = values
        else:
            self._store.bases.pop(bkey, None)
        return values

    def _scaled(self, channel: str) -> FloatArray:
        try:
            index = self.sample.channel_index(channel)
        except CytometryError as exc:
            where = f" ({self.sample.path})" if self.sample.path else ""
            raise GateError(f"cannot gate sample {self.sample.name!r}{where}: {exc}") from None
        return self.sample.scaled_column(index)

    def _spillover(self, compensation: str) -> Spillover | None:
        if compensation == UNCOMPENSATED:
            return None
        if compensation == FCS:
            if self.sample.spillover is None:
                note = (
                    f"compensation 'FCS' requested but {self.sample.name!r} has no $SPILLOVER/$SPILL; "
                    "values were left uncompensated"
                )
                if note not in self._store.notes:
                    self._store.notes.append(note)
            return self.sample.spillover
        return self.strategy.spillovers[compensation]

    def _compensate_block(self, compensation: str, spill: Spillover, names: list[str]) -> None:
        """Compensate the wanted dimensions of one matrix with a single matrix product."""
        try:
            cols, unmix = compensation_operator(self.sample.channels, spill)
        except CytometryError as exc:
            raise GateError(f"cannot compensate sample {self.sample.name!r}: {exc}") from None
        targets = [
            n
            for n in names
            if spill.fluorochrome_for(n) and self._base_key(n, compensation) not in self._store.bases
        ]
        if not targets:
            return
        which = [spill.fluorochromes.index(str(spill.fluorochrome_for(n))) for n in targets]
        op = np.ascontiguousarray(unmix[:, which])
        detectors = self._detector_matrix(cols)
        # (k x d) @ (d x n): one BLAS call; each result row is one fluorochrome, contiguous in memory
        out = np.ascontiguousarray(op.T) @ detectors.T
        for k, name in enumerate(targets):
            self._store.bases[self._base_key(name, compensation)] = out[k]

    def _detector_matrix(self, cols: list[int]) -> FloatArray:
        """Scaled values of the detector columns, (n_events, n_detectors); a view when possible."""
        sample = self.sample
        if all(sample.column_is_unscaled(c) for c in cols):
            if cols == list(range(cols[0], cols[0] + len(cols))):
                return sample.raw[:, cols[0] : cols[0] + len(cols)]
            return sample.raw[:, cols]
        return np.column_stack([sample.scaled_column(c) for c in cols])


def _finite_rows(columns: Sequence[FloatArray]) -> BoolArray | None:
    """Rows where every column is finite, or None when all are (checked with one cheap sum per column)."""
    if all(np.isfinite(np.add.reduce(c)) for c in columns):
        return None
    ok = np.isfinite(columns[0])
    for col in columns[1:]:
        ok &= np.isfinite(col)
    return ok


def evaluate_gate(gate: Gate, columns: Sequence[FloatArray]) -> BoolArray:
    """Membership of events (rows of ``columns``) in one geometric gate, ignoring its parent."""
    if isinstance(gate, RectangleGate):
        mask = np.ones(columns[0].shape[0], dtype=bool)
        for col, lo, hi in zip(columns, gate.minimums, gate.maximums, strict=True):
            if lo is not None:
                mask &= col >= lo
            if hi is not None:
                mask &= col < hi
        return mask
    if isinstance(gate, PolygonGate):
        points = np.column_stack(columns)
        ok = _finite_rows(columns)
        inside = np.asarray(
            fu_gating.points_in_polygon(np.array(gate.vertices, dtype=np.float64), points), dtype=bool
        )
        return inside if ok is None else inside & ok
    if isinstance(gate, EllipsoidGate):
        points = np.column_stack(columns)
        inside = fu_gating.points_in_ellipsoid(
            np.array(gate.covariance, dtype=np.float64),
            np.array(gate.mean, dtype=np.float64),
            gate.distance_square,
            points,
        )
        return np.asarray(inside, dtype=bool)
    raise GateError(f"Gate {gate.id!r} of type {type(gate).__name__} is not a single-region geometric gate.")


def evaluate_quadrants(gate: QuadrantGate, columns: Sequence[FloatArray]) -> dict[str, BoolArray]:
    """Membership in each quadrant of a quadrant gate (rows of ``columns``), ignoring the parent."""
    intervals = []
    for divider, col in zip(gate.dividers, columns, strict=True):
        idx = np.searchsorted(np.asarray(divider.values), col, side="right")
        idx[np.isnan(col)] = -1
        intervals.append(idx)
    out: dict[str, BoolArray] = {}
    for quadrant in gate.quadrants:
        mask = np.ones(columns[0].shape[0], dtype=bool)
        for divider_id, location in quadrant.positions:
            k = gate.divider_index(divider_id)
            mask &= intervals[k] == gate.dividers[k].interval(location)
        out[quadrant.id] = mask
    return out


def _boolean(gate: BooleanGate, membership: dict[str, BoolArray]) -> BoolArray:
    masks = [~membership[ref] if complement else membership[ref] for ref, complement in gate.operands]
    if gate.op == "not":
        return ~masks[0]
    result = masks[0].copy()
    for m in masks[1:]:
        if gate.op == "and":
            result &= m
        else:
            result |= m
    return result


def _geometric(gate: Gate, values: EventValues, parent: BoolArray | None) -> dict[str, BoolArray]:
    """Membership of a geometric gate (or each quadrant), restricted to the parent's events.

    When the parent holds a minority of events, values are computed and the gate evaluated on the parent's
    events only; otherwise on all events, and the result is intersected with the parent.
    """
    n = values.sample.n_events
    rows: IndexArray | None = None
    if parent is not None and np.count_nonzero(parent) < _SUBSET_FRACTION * n:
        rows = np.flatnonzero(parent)
    try:
        columns = [values.column(dim, rows) for dim in gate.dimensions]
    except GateError as exc:
        source = values.strategy.source
        raise GateError(f"Gate {gate.id!r}{f' of {source}' if source else ''}: {exc}") from None
    if isinstance(gate, QuadrantGate):
        local = evaluate_quadrants(gate, columns)
    else:
        local = {gate.id: evaluate_gate(gate, columns)}
    out: dict[str, BoolArray] = {}
    for gid, mask in local.items():
        if rows is not None:
            full = np.zeros(n, dtype=bool)
            full[rows] = mask
            out[gid] = full
        elif parent is not None:
            out[gid] = mask & parent
        else:
            out[gid] = mask
    return out


def _evaluate_all(
    gates: Sequence[Gate], values: EventValues, on_progress: ProgressCallback | None
) -> tuple[dict[str, BoolArray], dict[str, str | None]]:
    """Membership of every population, gates in order (parents and operands first)."""
    values.plan(gates)
    membership: dict[str, BoolArray] = {}
    parents: dict[str, str | None] = {}
    for done, gate in enumerate(gates, start=1):
        parent = None if gate.parent is None else membership[gate.parent]
        if isinstance(gate, BooleanGate):
            mask = _boolean(gate, membership)
            new = {gate.id: mask if parent is None else mask & parent}
        else:
            new = _geometric(gate, values, parent)
        for gid, mask in new.items():
            membership[gid] = mask
            parents[gid] = gate.parent
        values.release(gate)
        if on_progress is not None:
            on_progress(f"gating {values.sample.name}", done, len(gates))
    return membership, parents


def gate_sample(
    strategy: GatingStrategy,
    sample: Sample,
    *,
    on_progress: ProgressCallback | None = None,
    values: EventValues | None = None,
) -> GatingResults:
    """Evaluate every gate of ``strategy`` on ``sample``.

    Parameters
    ----------
    strategy : GatingStrategy
        Gates, transforms and spillover matrices.
    sample : Sample
        Events to gate (channel-to-scale values are used).
    on_progress : callable, optional
        ``on_progress(task, done, total)`` after each gate.
    values : EventValues, optional
        Values already computed for this sample (by this or another strategy); reused and extended.

    Returns
    -------
    GatingResults
        Absolute membership (parents included) of every population.

    Raises
    ------
    GateError
        A gate uses a channel the sample does not have, or a spillover matrix whose detectors are missing.
    """
    if values is not None and values.sample is not sample:
        raise GateError(f"values were computed for sample {values.sample.name!r}, not for {sample.name!r}.")
    values = EventValues(strategy, sample) if values is None else values.for_strategy(strategy)
    membership, parents = _evaluate_all(strategy.gates, values, on_progress)
    return GatingResults(
        sample_name=sample.name,
        n_events=sample.n_events,
        membership=membership,
        parents=parents,
        order=strategy.gate_ids,
        strategy_sha256=strategy.sha256,
        notes=tuple(values.notes),
    )
