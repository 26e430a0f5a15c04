"""Exports of gated samples: per-event membership (Parquet), AnnData (.h5ad), gated subsets (FCS).

Every export is written to a temporary file beside the target and renamed over it, and
refuses to replace an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from immunorehab.study.export import atomic_write

if TYPE_CHECKING:
    from .pipeline import SampleAnalysis
    from .results import GatingResults
    from .sample import Sample
    from .strategy import GatingStrategy

__all__ = [
    "export_gate_fcs",
    "membership_frame",
    "sample_outputs",
    "to_anndata",
    "write_h5ad",
    "write_membership",
]

_MANAGED = re.compile(
    r"^(p\d+[bengrs]|par|tot|byteord|datatype|mode|nextdata|(begin|end)(data|stext|analysis))$"
)


def membership_frame(results: GatingResults, gates: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per event (column ``event``, 0-based file order) and one boolean column per gate."""
    columns: dict[str, object] = {"event": np.arange(results.n_events, dtype=np.int64)}
    for gate in gates or results.gate_ids:
        columns[gate] = np.asarray(results.membership(gate), dtype=bool)
    return pd.DataFrame(columns)


def write_membership(
    results: GatingResults, path: str | Path, *, gates: Sequence[str] | None = None, overwrite: bool = False
) -> Path:
    """Per-event membership as Parquet (see :func:`membership_frame`); ``sample`` in the file metadata."""
    frame = membership_frame(results, gates)
    frame.attrs["sample"] = results.sample_name

    def writer(tmp: Path) -> None:
        frame.to_parquet(tmp, index=False)

    return atomic_write(path, writer, overwrite=overwrite)


def _display_values(strategy: GatingStrategy, sample: Sample) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(gating-scale values, compensated linear values, transform id per channel) of every channel."""
    from .gates import FCS, UNCOMPENSATED, Dimension

    spill = sample.spillover
    compensated = set(spill.fluorochromes or spill.detectors) if spill is not None else set()
    used = {d.channel: d for d in strategy.dimensions_used() if d.kind == "fcs"}
    linear_dims, display_dims, names = [], [], []
    for channel in sample.channels:
        comp = FCS if channel in compensated else UNCOMPENSATED
        linear = Dimension(channel, compensation=comp)
        shown = used.get(channel, linear)
        linear_dims.append(linear)
        display_dims.append(Dimension(channel, compensation=comp, transform=shown.transform))
        names.append(shown.transform or "")
    linear_values = strategy.dimension_values(sample, linear_dims)
    display = strategy.dimension_values(sample, display_dims)
    return display, linear_values, names


def to_anndata(strategy: GatingStrategy, sample: Sample, results: GatingResults) -> object:
    """An :class:`anndata.AnnData` of the sample's events.

    ``X``: values on the gating scale (compensated, then the strategy's transform of each
    channel; channels no gate uses stay linear); ``layers["compensated"]``: compensated linear
    values; ``layers["raw"]``: channel-to-scale values as read. ``obs``: one boolean column
    per gate (absolute membership). ``var``: index = channel (``$PnN``), columns ``marker``
    (``$PnS``) and ``transform``. ``uns``: sample name, file SHA-256, strategy SHA-256.
    """
    import anndata

    display, linear, transforms = _display_values(strategy, sample)
    obs = membership_frame(results).drop(columns="event")
    obs.index = [str(i) for i in range(sample.n_events)]
    var = pd.DataFrame({"marker": list(sample.markers), "transform": transforms}, index=list(sample.channels))
    return anndata.AnnData(
        X=display.astype(np.float32),
        obs=obs,
        var=var,
        layers={"compensated": linear.astype(np.float32), "raw": np.asarray(sample.scaled, dtype=np.float32)},
        uns={"sample": sample.name, "file_sha256": sample.sha256, "strategy_sha256": strategy.sha256},
    )


def write_h5ad(
    strategy: GatingStrategy,
    sample: Sample,
    results: GatingResults,
    path: str | Path,
    *,
    overwrite: bool = False,
) -> Path:
    """Write :func:`to_anndata` as ``.h5ad`` (temp file + rename)."""
    adata = to_anndata(strategy, sample, results)

    def writer(tmp: Path) -> None:
        adata.write_h5ad(tmp)  # type: ignore[attr-defined]

    return atomic_write(path, writer, overwrite=overwrite)


def _subset_values(sample: Sample, mask: np.ndarray) -> np.ndarray:
    """Channel-to-scale values of the selected events; Time keeps its raw ticks ($TIMESTEP is kept)."""
    values = np.array(sample.scaled[mask], dtype=np.float64)
    for i, channel in enumerate(sample.channels):
        if channel.lower() == "time":
            values[:, i] = sample.raw[mask, i]
    return values


def export_gate_fcs(
    sample: Sample,
    results: GatingResults,
    gate: str,
    path: str | Path,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the events of population ``gate`` as an FCS 3.1 file through flowio.

    Values are the channel-to-scale values (gain and log amplification already applied, so
    the new file carries ``$PnE=0,0`` and ``$PnG=1``), in float32 (the only type flowio
    writes). Channel names, markers, ``$PnR`` and the other TEXT keywords are kept
    (``$SPILLOVER`` included), plus ``IMMUNOREHAB_GATE`` and ``IMMUNOREHAB_SOURCE_SHA256``.

    Raises
    ------
    GateError
        ``gate`` is not a population of ``results``.
    ConfigError
        ``path`` exists (pass ``overwrite=True``) or its folder does not.
    """
    import flowio

    mask = np.asarray(results.membership(gate), dtype=bool)
    values = _subset_values(sample, mask)
    meta = {k: v for k, v in sample.metadata.items() if not _MANAGED.match(k) and v != ""}
    for i in range(1, len(sample.channels) + 1):
        if sample.metadata.get(f"p{i}r"):
            meta[f"p{i}r"] = sample.metadata[f"p{i}r"]
    meta["immunorehab_gate"] = gate
    meta["immunorehab_source_sha256"] = sample.sha256
    data = array("f", np.ascontiguousarray(values, dtype="<f4").tobytes())

    def writer(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            flowio.create_fcs(
                fh, data, list(sample.channels), opt_channel_names=list(sample.markers), metadata_dict=meta
            )

    return atomic_write(path, writer, overwrite=overwrite)


def sample_outputs(
    analysis: SampleAnalysis,
    out: str | Path,
    *,
    plot_format: str | None = "png",
    membership: bool = False,
    h5ad: bool = False,
    export_gates: Sequence[str] = (),
    overwrite: bool = False,
) -> list[Path]:
    """Write one gated sample's files into folder ``out``; return their paths.

    ``<sample>.gating.xml`` (the per-sample Gating-ML: edit it to fix a gate and gate again
    with it, auto-placement off), ``<sample>.gates.<png|svg>`` (density plots with gates),
    and on request ``<sample>.membership.parquet``, ``<sample>.h5ad`` and
    ``<sample>.<gate>.fcs`` for each gate in ``export_gates``.
    """
    from .plots import write_gate_plot

    out = Path(out)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in analysis.sample.name)
    sample, results, strategy = analysis.sample, analysis.results, analysis.strategy
    for gate in export_gates:
        results.membership(gate)  # unknown gate: fail before writing anything
    written = [strategy.to_gatingml(out / f"{stem}.gating.xml", overwrite=overwrite)]
    if plot_format:
        written.append(
            write_gate_plot(
                strategy, sample, results, out / f"{stem}.gates.{plot_format}", overwrite=overwrite
            )
        )
    if membership:
        written.append(write_membership(results, out / f"{stem}.membership.parquet", overwrite=overwrite))
    if h5ad:
        written.append(write_h5ad(strategy, sample, results, out / f"{stem}.h5ad", overwrite=overwrite))
    for gate in export_gates:
        written.append(
            export_gate_fcs(sample, results, gate, out / f"{stem}.{gate}.fcs", overwrite=overwrite)
        )
    return written
