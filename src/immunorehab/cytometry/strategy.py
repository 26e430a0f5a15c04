"""A gating strategy: gates in a hierarchy plus the transforms and spillover matrices they refer to.

:class:`GatingStrategy` is a declaration. It checks that every reference resolves (parents, boolean
operands, transforms, compensations) and orders gates parents-first; evaluation on a sample is
:mod:`immunorehab.cytometry.engine`; reading and writing Gating-ML is :mod:`~.gatingml`, FlowJo is
:mod:`~.flowjo`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from immunorehab.errors import GateError, Problem

from .compensation import Spillover
from .gates import FCS, UNCOMPENSATED, BooleanGate, Dimension, Gate, QuadrantGate
from .sample import Sample
from .transforms import RatioTransform, Transform

if TYPE_CHECKING:
    from .engine import EventValues
    from .results import GatingResults

__all__ = ["GatingStrategy", "ProgressCallback"]

ProgressCallback = Callable[[str, int, int], None]


class GatingStrategy:
    """Gates, transforms and spillover matrices; immutable.

    Parameters
    ----------
    gates : iterable of Gate
        Gate declarations in any order; parents must be among them.
    transforms : Mapping[str, Transform], optional
        Transforms by id, referred to by ``Dimension.transform`` (and ratio dimensions).
    spillovers : Mapping[str, Spillover], optional
        Spillover matrices by id, referred to by ``Dimension.compensation``.
    source : str, optional
        Where the strategy came from (a file path); named in error messages.

    Raises
    ------
    GateError
        Duplicate ids, unknown parents / operands / transforms / compensations, or cycles; the message
        lists every problem.
    """

    __slots__ = ("_gates", "_order", "_by_id", "_owner", "transforms", "spillovers", "source", "_sha")

    def __init__(
        self,
        gates: Iterable[Gate],
        transforms: Mapping[str, Transform] | None = None,
        spillovers: Mapping[str, Spillover] | None = None,
        *,
        source: str | None = None,
    ) -> None:
        self.source = source
        self._gates: tuple[Gate, ...] = tuple(gates)
        self.transforms: Mapping[str, Transform] = MappingProxyType(dict(transforms or {}))
        self.spillovers: Mapping[str, Spillover] = MappingProxyType(dict(spillovers or {}))
        self._sha: str | None = None
        problems = self._index()
        problems += self._check_references()
        if problems:
            raise GateError(
                f"Invalid gating strategy{self._from()}:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        order, cycle_problems = self._topological_order()
        if cycle_problems:
            raise GateError(
                f"Invalid gating strategy{self._from()}:\n" + "\n".join(f"  - {p}" for p in cycle_problems)
            )
        self._order = order

    def _from(self) -> str:
        return f" ({self.source})" if self.source else ""

    # -- construction helpers -----------------------------------------------------------------

    def _index(self) -> list[Problem]:
        problems: list[Problem] = []
        self._by_id: dict[str, Gate] = {}
        self._owner: dict[str, QuadrantGate] = {}
        for gate in self._gates:
            names = [gate.id] + (list(gate.quadrant_ids) if isinstance(gate, QuadrantGate) else [])
            for name in names:
                if name in self._by_id or name in self._owner:
                    problems.append(Problem(f"gate {name!r}", "id is used more than once"))
            self._by_id[gate.id] = gate
            if isinstance(gate, QuadrantGate):
                for qid in gate.quadrant_ids:
                    self._owner[qid] = gate
        return problems

    def _known(self, gate_id: str) -> bool:
        return gate_id in self._by_id or gate_id in self._owner

    def _check_references(self) -> list[Problem]:
        problems: list[Problem] = []
        for gate in self._gates:
            where = f"gate {gate.id!r}"
            if gate.parent is not None and not self._known(gate.parent):
                problems.append(Problem(where, f"parent {gate.parent!r} is not a gate of this strategy"))
            if (
                gate.parent is not None
                and gate.parent in self._by_id
                and isinstance(self._by_id[gate.parent], QuadrantGate)
            ):
                problems.append(
                    Problem(where, f"parent {gate.parent!r} is a quadrant gate; use one of its quadrants")
                )
            if isinstance(gate, BooleanGate):
                for ref, _ in gate.operands:
                    if not self._known(ref):
                        problems.append(
                            Problem(where, f"boolean operand {ref!r} is not a gate of this strategy")
                        )
                    elif ref in self._by_id and isinstance(self._by_id[ref], QuadrantGate):
                        problems.append(
                            Problem(where, f"boolean operand {ref!r} is a quadrant gate, not a region")
                        )
            for dim in gate.dimensions:
                problems.extend(self._check_dimension(where, dim))
        return problems

    def _check_dimension(self, where: str, dim: Dimension) -> list[Problem]:
        problems: list[Problem] = []
        if dim.compensation not in (UNCOMPENSATED, FCS) and dim.compensation not in self.spillovers:
            problems.append(
                Problem(
                    where,
                    f"compensation {dim.compensation!r} is not 'uncompensated', 'FCS' or a known matrix "
                    f"({', '.join(sorted(self.spillovers)) or 'none defined'})",
                )
            )
        if dim.transform is not None:
            xf = self.transforms.get(dim.transform)
            if xf is None:
                problems.append(
                    Problem(
                        where,
                        f"transform {dim.transform!r} is not defined "
                        f"({', '.join(sorted(self.transforms)) or 'none defined'})",
                    )
                )
            elif isinstance(xf, RatioTransform):
                problems.append(
                    Problem(where, f"transform {dim.transform!r} is a ratio; use it as a new dimension")
                )
        if dim.kind == "ratio" and not isinstance(self.transforms.get(dim.channel), RatioTransform):
            problems.append(
                Problem(where, f"ratio dimension {dim.channel!r} is not a defined fratio transform")
            )
        return problems

    def _dependencies(self, gate: Gate) -> list[str]:
        deps = [] if gate.parent is None else [gate.parent]
        if isinstance(gate, BooleanGate):
            deps += [ref for ref, _ in gate.operands]
        return [self._owner[d].id if d in self._owner else d for d in deps]

    def _topological_order(self) -> tuple[tuple[Gate, ...], list[Problem]]:
        order: list[Gate] = []
        state: dict[str, int] = {}
        problems: list[Problem] = []

        def visit(gate: Gate, path: list[str]) -> None:
            mark = state.get(gate.id, 0)
            if mark == 2:
                return
            if mark == 1:
                problems.append(
                    Problem(f"gate {gate.id!r}", f"reference cycle {' -> '.join(path + [gate.id])}")
                )
                return
            state[gate.id] = 1
            for dep in self._dependencies(gate):
                visit(self._by_id[dep], path + [gate.id])
            state[gate.id] = 2
            order.append(gate)

        for gate in self._gates:
            visit(gate, [])
        return tuple(order), problems

    # -- queries ------------------------------------------------------------------------------

    @property
    def gates(self) -> tuple[Gate, ...]:
        """Gate declarations, parents (and boolean operands) before the gates that use them."""
        return self._order

    @property
    def gate_ids(self) -> tuple[str, ...]:
        """Population ids in evaluation order; a quadrant gate contributes its quadrant ids."""
        ids: list[str] = []
        for gate in self._order:
            ids.extend(gate.quadrant_ids if isinstance(gate, QuadrantGate) else (gate.id,))
        return tuple(ids)

    def get_gate(self, gate_id: str) -> Gate:
        """The gate declaring ``gate_id`` (a quadrant id gives its quadrant gate)."""
        if gate_id in self._owner:
            return self._owner[gate_id]
        try:
            return self._by_id[gate_id]
        except KeyError:
            raise GateError(
                f"Gate {gate_id!r} is not in the strategy; gates are {', '.join(self.gate_ids)}."
            ) from None

    def parent_of(self, gate_id: str) -> str | None:
        """Parent population id of a gate or quadrant (None at the top)."""
        return self.get_gate(gate_id).parent

    def children_of(self, gate_id: str | None) -> tuple[str, ...]:
        """Population ids whose parent is ``gate_id`` (None: top-level populations)."""
        return tuple(g for g in self.gate_ids if self.parent_of(g) == gate_id)

    def replace_gate(self, new_gate: Gate) -> GatingStrategy:
        """A new strategy with the gate of the same id replaced by ``new_gate``."""
        if new_gate.id not in self._by_id:
            raise GateError(f"Cannot replace gate {new_gate.id!r}: no gate with that id in the strategy.")
        gates = [new_gate if g.id == new_gate.id else g for g in self._gates]
        return GatingStrategy(gates, self.transforms, self.spillovers, source=self.source)

    def with_gates(self, *gates: Gate) -> GatingStrategy:
        """A new strategy with ``gates`` added (ids must be new)."""
        return GatingStrategy(
            self._gates + tuple(gates), self.transforms, self.spillovers, source=self.source
        )

    def dimensions_used(self) -> tuple[Dimension, ...]:
        """Every distinct dimension the gates are drawn on, in evaluation order."""
        seen: dict[Dimension, None] = {}
        for gate in self._order:
            for dim in gate.dimensions:
                seen.setdefault(dim, None)
        return tuple(seen)

    # -- evaluation ---------------------------------------------------------------------------

    def dimension_values(
        self, sample: Sample, dimensions: Sequence[Dimension], *, values: EventValues | None = None
    ) -> npt.NDArray[np.float64]:
        """Compensated and transformed values of ``dimensions``, shape (n_events, len(dimensions)).

        ``values`` (an :class:`~immunorehab.cytometry.engine.EventValues` of the same sample) reuses columns
        already computed, e.g. by :meth:`gate` with the same object.
        """
        from .engine import EventValues

        if values is not None and values.sample is not sample:
            raise GateError(
                f"values were computed for sample {values.sample.name!r}, not for {sample.name!r}."
            )
        source = EventValues(self, sample) if values is None else values.for_strategy(self)
        out = np.empty((sample.n_events, len(dimensions)), dtype=np.float64)
        for j, dim in enumerate(dimensions):
            out[:, j] = source.column(dim)
        return out

    def gate(
        self,
        sample: Sample,
        *,
        on_progress: ProgressCallback | None = None,
        values: EventValues | None = None,
    ) -> GatingResults:
        """Evaluate every gate on ``sample``; see :func:`immunorehab.cytometry.engine.gate_sample`.

        Pass the same ``values=EventValues(strategy, sample)`` to several calls on one sample to compute each
        compensated/transformed column once.
        """
        from .engine import gate_sample

        return gate_sample(self, sample, on_progress=on_progress, values=values)

    # -- Gating-ML / FlowJo -------------------------------------------------------------------

    @classmethod
    def from_gatingml(cls, path: str | Path) -> GatingStrategy:
        """Read a Gating-ML 2.0 file (schema-validated); see :mod:`immunorehab.cytometry.gatingml`."""
        from .gatingml import read_gatingml

        return read_gatingml(path)

    def to_gatingml(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write Gating-ML 2.0, validated against the XSDs (temp file + rename)."""
        from .gatingml import write_gatingml

        return write_gatingml(self, path, overwrite=overwrite)

    def to_gatingml_string(self) -> str:
        """The strategy as Gating-ML 2.0 text (canonical: the same strategy gives the same text)."""
        from .gatingml import gatingml_string

        return gatingml_string(self)

    @classmethod
    def from_flowjo(cls, wsp_path: str | Path, sample: str) -> GatingStrategy:
        """Gates, compensation and transforms of one sample of a FlowJo 10 workspace."""
        from .flowjo import read_flowjo_strategy

        return read_flowjo_strategy(wsp_path, sample)

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical Gating-ML text (provenance of results)."""
        if self._sha is None:
            self._sha = hashlib.sha256(self.to_gatingml_string().encode("utf-8")).hexdigest()
        return self._sha

    def __reduce__(self) -> tuple[type[GatingStrategy], tuple[object, ...], dict[str, object]]:
        """Picklable (worker processes)."""
        return (
            GatingStrategy,
            (self._gates, dict(self.transforms), dict(self.spillovers)),
            {"source": self.source},
        )

    def __setstate__(self, state: dict[str, object]) -> None:
        self.source = state.get("source")  # type: ignore[assignment]

    def __repr__(self) -> str:
        ids = self.gate_ids
        shown = ", ".join(ids[:6]) + (", ..." if len(ids) > 6 else "")
        return f"GatingStrategy({len(ids)} populations: {shown})"
