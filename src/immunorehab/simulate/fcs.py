"""Synthetic T-cell memory panel FCS files with exact ground truth.

The simulator draws every event from a labelled population model and records the
labels, so gated results can be checked event by event:

- **scatter**: lymphocytes, monocytes and granulocytes of a lysed whole-blood sample,
  debris at low FSC, doublets (two cells: FSC-A and SSC-A add up, FSC-H does not) and dead
  cells (lower FSC, higher SSC, bright viability dye);
- **lineages**: T cells (CD4, CD8, double-negative, double-positive), B cells, NK cells
  (CD56bright CD16-/dim and CD56dim CD16+) and other CD3-CD56- lymphocytes;
- **T-cell phenotype**: naive CCR7+CD45RA+, central memory CCR7+CD45RA-, effector memory
  CCR7-CD45RA-, TEMRA CCR7-CD45RA+ (fractions chosen by the caller), activation
  (HLA-DR+CD38+, drawn from memory cells) and senescence (CD57+CD28-, drawn from EM and
  TEMRA cells), as in domain.md section C1;
- **instrument**: 12 fluorochromes on a BD LSRFortessa-like detector layout, spillover
  applied (``detected = true @ S``) and recorded in ``$SPILLOVER``, photon and electronic
  noise (so compensation leaves the usual spreading error), saturation at 2^18, a Time
  channel in 10 ms ticks with optional flow disturbance, optional counting beads.

Values are in linear instrument units (0 .. 262,144). Files are FCS 3.1 written through
:func:`flowio.create_fcs` (temp file + rename).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from array import array
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from immunorehab.errors import FcsSimulationError
from immunorehab.study.export import atomic_write

from .fcs_model import (
    CHANNELS,
    FLUORESCENCE,
    MARKERS,
    TIMESTEP_S,
    MemoryFractions,
    PanelFractions,
    blank_labels,
    draw_beads,
    draw_cells,
    draw_debris,
    event_times,
    labels_frame,
    pick,
    spillover_matrix,
    spillover_text,
)

if TYPE_CHECKING:
    from immunorehab.cytometry import Sample

__all__ = [
    "CHANNELS",
    "FLUORESCENCE",
    "BeadSpec",
    "MemoryFractions",
    "PanelFractions",
    "PanelTruth",
    "SimulatedPanel",
    "TRUTH_PARENTS",
    "simulate_panel",
    "simulate_panel_sample",
    "spillover_text",
    "write_panel_fcs",
    "write_truth",
]

_RANGE = 262144.0
#: Events with FSC-A or SSC-A at or above this share of the range are off scale (saturated).
_OFF_SCALE = 0.999


@dataclass(frozen=True, slots=True)
class BeadSpec:
    """Counting beads for single-platform absolute counts (e.g. BD Trucount).

    ``lymphocytes_per_ul`` is the sample's true concentration of live lymphocytes; the
    number of bead events follows from it: beads/lymphocytes = (beads_per_tube / volume_ul)
    / lymphocytes_per_ul.
    """

    beads_per_tube: float = 50_000.0
    volume_ul: float = 50.0
    lymphocytes_per_ul: float = 1_800.0


@dataclass(frozen=True, slots=True)
class PanelTruth:
    """The ground truth of a simulated file: per-event labels and per-gate fractions."""

    labels: pd.DataFrame
    gates: pd.DataFrame
    fractions: PanelFractions
    beads: BeadSpec | None
    seed: int | None

    def membership(self, gate: str) -> np.ndarray:
        """Events that truly belong to ``gate`` (absolute: parents included)."""
        return _truth_membership(self.labels, gate)

    def expected_fraction(self, gate: str) -> float:
        """The fraction of the parent set by the caller (0..1)."""
        rows = self.gates.loc[self.gates["gate"] == gate, "expected_pct_parent"]
        if rows.empty:
            raise FcsSimulationError(f"no ground truth for gate {gate!r}")
        return float(rows.iloc[0]) / 100.0


@dataclass(frozen=True, slots=True)
class SimulatedPanel:
    """A simulated sample: raw events (spillover applied), channel layout and truth."""

    events: np.ndarray
    channels: tuple[str, ...]
    markers: tuple[str, ...]
    spillover: np.ndarray
    truth: PanelTruth
    name: str

    @property
    def n_events(self) -> int:
        return int(self.events.shape[0])

    def metadata(self) -> dict[str, str]:
        """FCS TEXT keywords (without ``$``) of this sample, spillover included."""
        now = dt.datetime.now(dt.UTC)
        meta = {
            "CYT": "immunorehab simulator (BD LSRFortessa-like layout)",
            "FIL": f"{self.name}.fcs",
            "SRC": "synthetic",
            "DATE": now.strftime("%d-%b-%Y").upper(),
            "TIMESTEP": str(TIMESTEP_S),
            "SPILLOVER": spillover_text(self.spillover),
            "IMMUNOREHAB_SIMULATOR": "immunorehab.simulate.fcs",
        }
        if self.truth.seed is not None:
            meta["IMMUNOREHAB_SEED"] = str(self.truth.seed)
        for i, channel in enumerate(self.channels, start=1):
            meta[f"P{i}R"] = "262144" if channel != "Time" else str(int(self.events[:, -1].max()) + 1)
        return meta


# -- ground truth ---------------------------------------------------------------------------

#: The gates of the tcell-memory template with their parents, in template order.
TRUTH_PARENTS: dict[str, str | None] = {
    "beads": None,
    "qc": None,
    "lymphocytes": "qc",
    "singlets": "lymphocytes",
    "live": "singlets",
    "t_cells": "live",
    "cd4": "t_cells",
    "cd8": "t_cells",
    **{f"{s}_{m}": s for s in ("cd4", "cd8") for m in ("naive", "cm", "em", "temra")},
    **{f"{s}_{k}": s for s in ("cd4", "cd8") for k in ("activated", "senescent")},
    "nk": "live",
    "nk_cd56bright": "nk",
    "nk_cd56dim": "nk",
}


def _code(labels: pd.DataFrame, column: str, value: str) -> np.ndarray:
    return np.asarray(labels[column] == value)


def _truth_membership(labels: pd.DataFrame, gate: str) -> np.ndarray:
    if gate not in TRUTH_PARENTS:
        raise FcsSimulationError(
            f"no ground truth for gate {gate!r}: expected one of {', '.join(TRUTH_PARENTS)}"
        )
    if gate == "beads":
        return _code(labels, "cell_type", "bead")
    if gate == "qc":
        stable: np.ndarray = ~np.asarray(labels["unstable"], dtype=bool) & ~np.asarray(
            labels["off_scale"], dtype=bool
        )
        return stable
    parent = TRUTH_PARENTS[gate]
    assert parent is not None
    base = _truth_membership(labels, parent)
    if gate in ("lymphocytes", "singlets"):
        own = _code(labels, "cell_type", "lymphocyte")
    elif gate == "live":
        own = ~np.asarray(labels["dead"], dtype=bool)
    elif gate == "t_cells":
        own = np.asarray(labels["lineage"].isin(["t_cd4", "t_cd8", "t_dn", "t_dp"]))
    elif gate in ("cd4", "cd8"):
        own = _code(labels, "lineage", f"t_{gate}")
    elif gate == "nk":
        own = _code(labels, "lineage", "nk")
    elif gate.startswith("nk_cd56"):
        own = _code(labels, "nk_subset", gate.removeprefix("nk_cd56"))
    else:
        kind = gate.partition("_")[2]
        own = (
            np.asarray(labels[kind], dtype=bool)
            if kind in ("activated", "senescent")
            else _code(labels, "memory", kind)
        )
    member: np.ndarray = base & own
    return member


def _expected_pct(gate: str, f: PanelFractions, bead_share: float, disturbed: bool) -> float:
    memory = {
        f"{s}_{m}": getattr(getattr(f, f"{s}_memory"), m)
        for s in ("cd4", "cd8")
        for m in ("naive", "cm", "em", "temra")
    }
    values: dict[str, float] = {
        "beads": bead_share,
        "qc": math.nan if disturbed else 1.0,
        "lymphocytes": (1.0 - bead_share) * (1.0 - f.debris - f.doublets) * f.lymphocytes,
        "singlets": 1.0,
        "live": 1.0 - f.dead,
        "t_cells": f.t_cells,
        "nk": f.nk,
        "cd4": f.cd4,
        "cd8": f.cd8,
        "nk_cd56bright": f.nk_cd56bright,
        "nk_cd56dim": 1.0 - f.nk_cd56bright,
        **memory,
        **{f"{s}_{k}": getattr(f, f"{s}_{k}") for s in ("cd4", "cd8") for k in ("activated", "senescent")},
    }
    return 100.0 * values[gate]


def _gate_table(
    labels: pd.DataFrame, f: PanelFractions, beads: BeadSpec | None, disturbed: bool
) -> pd.DataFrame:
    n = len(labels)
    members = {g: _truth_membership(labels, g) for g in TRUTH_PARENTS}
    counts = {g: int(m.sum()) for g, m in members.items()}
    bead_share = counts["beads"] / n if n else 0.0
    rows = []
    for gate, parent in TRUTH_PARENTS.items():
        parent_count = n if parent is None else counts[parent]
        row: dict[str, Any] = {
            "gate": gate,
            "parent": parent or "root",
            "expected_pct_parent": _expected_pct(gate, f, bead_share, disturbed),
            "count": counts[gate],
            "pct_parent": 100.0 * counts[gate] / parent_count if parent_count else math.nan,
            "pct_total": 100.0 * counts[gate] / n if n else math.nan,
        }
        if beads is not None and counts["beads"]:
            row["cells_per_ul"] = counts[gate] / counts["beads"] * beads.beads_per_tube / beads.volume_ul
        rows.append(row)
    return pd.DataFrame(rows)


# -- assembling a sample ----------------------------------------------------------------------


def _check(
    n_events: int,
    f: PanelFractions,
    beads: BeadSpec | None,
    disturbance: tuple[float, float, float] | None,
    events_per_second: float,
) -> None:
    problems = f.problems()
    if n_events < 100:
        problems.append(f"n_events must be at least 100, got {n_events}")
    if beads is not None and min(beads.beads_per_tube, beads.volume_ul, beads.lymphocytes_per_ul) <= 0:
        problems.append(f"bead settings must be positive, got {beads}")
    if disturbance is not None:
        start, end, factor = disturbance
        if not (0.0 <= start < end <= 1.0) or not (0.0 < factor):
            problems.append(
                "flow_disturbance must be (start, end, rate factor) with 0 <= start < end <= 1 "
                f"and factor > 0, got {disturbance}"
            )
    if not events_per_second > 0:
        problems.append(f"events_per_second must be positive, got {events_per_second}")
    if problems:
        raise FcsSimulationError("cannot simulate this sample: " + "; ".join(problems))


def simulate_panel(
    n_events: int,
    *,
    rng: np.random.Generator,
    fractions: PanelFractions | None = None,
    beads: BeadSpec | None = None,
    flow_disturbance: tuple[float, float, float] | None = None,
    spillover: bool = True,
    events_per_second: float = 2_000.0,
    name: str = "synthetic",
    seed: int | None = None,
    brightness: Mapping[str, float] | None = None,
) -> SimulatedPanel:
    """Simulate one tube of the T-cell memory panel.

    Parameters
    ----------
    n_events : total number of events in the file (beads included).
    rng : random generator (seed it for reproducible files).
    fractions : population fractions (default :class:`PanelFractions`).
    beads : add counting beads for single-platform absolute counts.
    flow_disturbance : ``(start, end, factor)``: between fractions ``start`` and ``end`` of
        the run the event rate is multiplied by ``factor`` (a clog or bubble); those events
        are labelled ``unstable``.
    spillover : apply the spillover matrix (False: an uncompensated-free file, no ``$SPILLOVER``).
    events_per_second : acquisition rate (the Time channel counts 10 ms ticks).
    name : sample name (``$FIL`` is ``name.fcs``).
    seed : recorded in the file and truth for provenance (the randomness comes from ``rng``).
    brightness : scale the stained intensity of markers, e.g. ``{"CCR7": 0.3}`` for a dim
        reagent lot (the situation per-sample gate placement is for).

    Returns
    -------
    SimulatedPanel
        Raw events (float32, n_events x 16, detector values with spillover and noise), the
        spillover matrix and the :class:`PanelTruth`.

    Raises
    ------
    FcsSimulationError
        Fractions out of range or inconsistent, fewer than 100 events, bad bead settings.
    """
    f = fractions or PanelFractions()
    _check(n_events, f, beads, flow_disturbance, events_per_second)
    markers = [m for _, m in FLUORESCENCE]
    bad = {k: v for k, v in (brightness or {}).items() if k not in markers or not v > 0}
    if bad:
        raise FcsSimulationError(
            f"brightness {bad} invalid: expected positive factors for markers among {', '.join(markers)}"
        )
    n_beads = 0
    if beads is not None:
        ratio = beads.beads_per_tube / (beads.volume_ul * beads.lymphocytes_per_ul)
        p_live_lymph = (1.0 - f.debris - f.doublets) * f.lymphocytes * (1.0 - f.dead)
        n_beads = int(round(n_events * p_live_lymph * ratio / (1.0 + p_live_lymph * ratio)))
    kind = pick(rng, (f.debris, f.doublets, max(0.0, 1.0 - f.debris - f.doublets)), n_events - n_beads)
    n_debris, n_doublets, n_single = (int((kind == k).sum()) for k in range(3))
    cell_scatter, cell_x, cell_labels = draw_cells(n_single + 2 * n_doublets, rng, f, brightness)
    single = slice(0, n_single)
    a = slice(n_single, n_single + 2 * n_doublets, 2)
    b = slice(n_single + 1, n_single + 2 * n_doublets, 2)
    doublet_scatter = np.column_stack(
        [
            cell_scatter[a, 0] + cell_scatter[b, 0],
            np.maximum(cell_scatter[a, 1], cell_scatter[b, 1])
            * 1.15
            * (1.0 + rng.normal(0, 0.03, n_doublets)),
            cell_scatter[a, 2] + cell_scatter[b, 2],
        ]
    )
    debris_scatter, debris_x = draw_debris(n_debris, rng)
    bead_scatter, bead_x = draw_beads(n_beads, rng)
    scatter = np.concatenate([cell_scatter[single], doublet_scatter, debris_scatter, bead_scatter])
    true_x = np.concatenate([cell_x[single], cell_x[a] + cell_x[b], debris_x, bead_x])
    parts = [
        {k: v[single] for k, v in cell_labels.items()},
        blank_labels(n_doublets, "doublet"),
        blank_labels(n_debris, "debris"),
        blank_labels(n_beads, "bead"),
    ]
    order = rng.permutation(n_events)
    matrix = spillover_matrix() if spillover else np.eye(len(FLUORESCENCE))
    detected = true_x[order] @ matrix
    detected += rng.normal(0.0, 1.0, detected.shape) * np.sqrt(35.0**2 + 18.0 * np.maximum(detected, 0.0))
    scatter = scatter[order] * (1.0 + rng.normal(0.0, 0.01, (n_events, 3)))
    ticks, unstable = event_times(n_events, rng, events_per_second, flow_disturbance)
    events = np.empty((n_events, len(CHANNELS)), dtype=np.float32)
    events[:, :3] = np.clip(scatter, 1.0, _RANGE - 1.0)
    events[:, 3:-1] = np.minimum(detected, _RANGE - 1.0)
    events[:, -1] = ticks
    off_scale = (events[:, 0] >= _OFF_SCALE * _RANGE) | (events[:, 2] >= _OFF_SCALE * _RANGE)
    labels = labels_frame(parts, order, unstable, off_scale)
    table = _gate_table(labels, f, beads, flow_disturbance is not None)
    truth = PanelTruth(labels=labels, gates=table, fractions=f, beads=beads, seed=seed)
    return SimulatedPanel(events, CHANNELS, MARKERS, matrix, truth, name)


# -- writing -----------------------------------------------------------------------------------


def write_panel_fcs(panel: SimulatedPanel, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``panel`` as an FCS 3.1 file through flowio (temp file + rename).

    Raises
    ------
    ConfigError
        ``path`` exists (pass ``overwrite=True``) or its folder does not.
    """
    import flowio

    meta = panel.metadata()
    if not np.any(panel.spillover - np.eye(panel.spillover.shape[0])):
        meta.pop("SPILLOVER")
    data = array("f", np.ascontiguousarray(panel.events, dtype="<f4").tobytes())

    def writer(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            flowio.create_fcs(
                fh, data, list(panel.channels), opt_channel_names=list(panel.markers), metadata_dict=meta
            )

    return atomic_write(path, writer, overwrite=overwrite)


def write_truth(
    truth: PanelTruth, path: str | Path, *, labels_path: str | Path | None = None, overwrite: bool = False
) -> list[Path]:
    """Write the truth: per-gate fractions as JSON at ``path``; per-event labels as CSV or Parquet.

    The JSON holds the fractions chosen, the bead settings and, per gate, the expected
    fraction of the parent with the realised count, pct_parent and pct_total (and
    cells/uL with beads). Labels are one row per event in file order.
    """
    payload = {
        "generator": "immunorehab.simulate.fcs",
        "seed": truth.seed,
        "n_events": int(len(truth.labels)),
        "fractions": asdict(truth.fractions),
        "beads": asdict(truth.beads) if truth.beads is not None else None,
        "gates": json.loads(truth.gates.to_json(orient="records")),
    }
    text = json.dumps(payload, indent=2)

    def write_json(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    written = [atomic_write(path, write_json, overwrite=overwrite)]
    if labels_path is not None:
        labels_path = Path(labels_path)
        frame = truth.labels.rename_axis("event").reset_index()
        if labels_path.suffix.lower() in (".parquet", ".pq"):
            written.append(
                atomic_write(labels_path, lambda tmp: frame.to_parquet(tmp, index=False), overwrite=overwrite)
            )
        else:
            written.append(
                atomic_write(labels_path, lambda tmp: frame.to_csv(tmp, index=False), overwrite=overwrite)
            )
    return written


def simulate_panel_sample(
    n_events: int,
    *,
    rng: np.random.Generator,
    fractions: PanelFractions | None = None,
    path: str | Path | None = None,
    overwrite: bool = False,
    **options: Any,
) -> tuple[Sample | Path, PanelTruth]:
    """A simulated sample as a :class:`~immunorehab.cytometry.Sample`, or written to ``path``.

    ``options`` go to :func:`simulate_panel` (``beads``, ``flow_disturbance``, ``spillover``,
    ``events_per_second``, ``name``, ``seed``). With ``path`` the FCS file is written and
    its path returned; otherwise an in-memory sample.
    """
    panel = simulate_panel(n_events, rng=rng, fractions=fractions, **options)
    if path is not None:
        return write_panel_fcs(panel, path, overwrite=overwrite), panel.truth
    from immunorehab.cytometry import Sample

    meta = {k.lower(): v for k, v in panel.metadata().items()}
    sample = Sample.from_array(
        panel.events.astype(np.float64), panel.channels, markers=panel.markers, metadata=meta, name=panel.name
    )
    return sample, panel.truth
