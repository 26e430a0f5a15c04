"""Median fluorescence intensity (MFI) of chosen markers in each gated population.

Medians are taken on compensated, untransformed values (the file's own spillover matrix;
uncompensated when the file has none), the scale MFIs are conventionally reported on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from immunorehab.errors import PanelError

if TYPE_CHECKING:
    from .engine import EventValues
    from .panel import Panel
    from .results import GatingResults
    from .sample import Sample
    from .strategy import GatingStrategy

__all__ = ["median_column", "median_intensities"]


def median_column(marker: str) -> str:
    """Column name of a marker's median in counts tables (``median_CD3``)."""
    return f"median_{marker}"


def median_intensities(
    strategy: GatingStrategy,
    sample: Sample,
    results: GatingResults,
    markers: Sequence[str],
    *,
    panel: Panel | None = None,
    gates: Sequence[str] | None = None,
    values: EventValues | None = None,
) -> pd.DataFrame:
    """Median compensated intensity of each marker in each population.

    Parameters
    ----------
    strategy, sample, results : the strategy, the sample and its gating results.
    markers : marker names (mapped to channels through ``panel``) or channel names.
    panel : Panel, optional
    gates : populations (default: every gate of ``results``).
    values : EventValues of ``sample`` to reuse (optional).

    Returns
    -------
    DataFrame
        One row per gate, column ``gate`` and one ``median_<marker>`` column per marker
        (NaN for an empty population).

    Raises
    ------
    PanelError
        A marker's channel is not in the sample.
    """
    from .gates import FCS, UNCOMPENSATED, Dimension
    from .panel import missing_channels_message

    channels = [panel.channel(m) if panel is not None else m for m in markers]
    message = missing_channels_message(
        needed=dict(zip(markers, channels, strict=True)),
        channels=sample.channels,
        markers=sample.markers,
        file=str(sample.path or sample.name),
        panel_source=panel.source if panel is not None else None,
    )
    if message is not None:
        raise PanelError(message)
    compensated = _compensated(sample)
    dims = [Dimension(c, compensation=FCS if c in compensated else UNCOMPENSATED) for c in channels]
    columns = (
        strategy.dimension_values(sample, dims, values=values) if dims else np.empty((sample.n_events, 0))
    )
    names = [median_column(m) for m in markers]
    by_marker = np.ascontiguousarray(columns.T)  # one contiguous row per marker: fast selection and partition
    rows = []
    for gate in gates or results.gate_ids:
        selected = by_marker[:, np.asarray(results.membership(gate))]
        medians = np.median(selected, axis=1) if selected.shape[1] else np.full(len(markers), np.nan)
        rows.append({"gate": gate, **{name: float(v) for name, v in zip(names, medians, strict=True)}})
    return pd.DataFrame(rows, columns=["gate", *names])


def _compensated(sample: Sample) -> frozenset[str]:
    spill = sample.spillover
    return frozenset(spill.fluorochromes or spill.detectors) if spill is not None else frozenset()
