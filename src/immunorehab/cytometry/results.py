"""Results of gating one sample: absolute membership per population and a tidy counts table."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import pandas as pd

from immunorehab.errors import GateError

__all__ = ["GatingResults", "BoolArray"]

BoolArray = npt.NDArray[np.bool_]


class GatingResults:
    """Membership of every event in every population of a strategy, for one sample.

    Attributes
    ----------
    sample_name : str
        Name of the sample gated.
    n_events : int
        Number of events in the sample.
    strategy_sha256 : str
        Hash of the strategy's canonical Gating-ML (provenance).
    notes : tuple of str
        Things worth knowing about this evaluation (e.g. ``"FCS"`` compensation requested but the file has
        no ``$SPILLOVER``, so values were left uncompensated).
    """

    __slots__ = ("sample_name", "n_events", "strategy_sha256", "notes", "_membership", "_parents", "_order")

    def __init__(
        self,
        *,
        sample_name: str,
        n_events: int,
        membership: Mapping[str, BoolArray],
        parents: Mapping[str, str | None],
        order: Sequence[str],
        strategy_sha256: str = "",
        notes: Sequence[str] = (),
    ) -> None:
        self.sample_name = sample_name
        self.n_events = int(n_events)
        self.strategy_sha256 = strategy_sha256
        self.notes: tuple[str, ...] = tuple(notes)
        for mask in membership.values():
            mask.setflags(write=False)
        self._membership: Mapping[str, BoolArray] = MappingProxyType(dict(membership))
        self._parents: Mapping[str, str | None] = MappingProxyType(dict(parents))
        self._order: tuple[str, ...] = tuple(order)

    @property
    def gate_ids(self) -> tuple[str, ...]:
        """Population ids, parents first."""
        return self._order

    def parent_of(self, gate_id: str) -> str | None:
        """Parent population of ``gate_id`` (None at the top)."""
        self._check(gate_id)
        return self._parents[gate_id]

    def membership(self, gate_id: str) -> BoolArray:
        """Absolute membership (parents included) of every event, a read-only bool array."""
        self._check(gate_id)
        return self._membership[gate_id]

    def count(self, gate_id: str) -> int:
        """Number of events in the population."""
        return int(np.count_nonzero(self.membership(gate_id)))

    def _check(self, gate_id: str) -> None:
        if gate_id not in self._membership:
            raise GateError(
                f"Population {gate_id!r} was not gated for sample {self.sample_name!r}; populations are "
                f"{', '.join(self._order)}."
            )

    def counts(self) -> pd.DataFrame:
        """One row per population, parents first.

        Returns
        -------
        DataFrame
            Columns ``sample`` (str), ``gate`` (str), ``parent`` (str or None at the top), ``count`` (int),
            ``parent_count`` (int), ``pct_parent`` and ``pct_total`` (percent, 0-100; NaN when the
            parent is empty).
        """
        rows = []
        cache: dict[str, int] = {}
        for gid in self._order:
            cache[gid] = self.count(gid)
        for gid in self._order:
            parent = self._parents[gid]
            parent_count = self.n_events if parent is None else cache[parent]
            count = cache[gid]
            rows.append(
                {
                    "sample": self.sample_name,
                    "gate": gid,
                    "parent": parent,
                    "count": count,
                    "parent_count": parent_count,
                    "pct_parent": 100.0 * count / parent_count if parent_count else float("nan"),
                    "pct_total": 100.0 * count / self.n_events if self.n_events else float("nan"),
                }
            )
        columns = ["sample", "gate", "parent", "count", "parent_count", "pct_parent", "pct_total"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.astype({"count": "int64", "parent_count": "int64"})

    def __reduce__(self) -> tuple[Callable[..., GatingResults], tuple[dict[str, object]]]:
        """Picklable (worker processes)."""
        state: dict[str, object] = {
            "sample_name": self.sample_name,
            "n_events": self.n_events,
            "membership": dict(self._membership),
            "parents": dict(self._parents),
            "order": self._order,
            "strategy_sha256": self.strategy_sha256,
            "notes": self.notes,
        }
        return (_restore, (state,))

    def __repr__(self) -> str:
        return f"GatingResults({self.sample_name!r}, {self.n_events} events, {len(self._order)} populations)"


def _restore(state: dict[str, object]) -> GatingResults:
    return GatingResults(**state)  # type: ignore[arg-type]
