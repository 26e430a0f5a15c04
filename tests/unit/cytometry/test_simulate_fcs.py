"""Synthetic panel files: chosen fractions, consistent labels, spillover applied and recorded, round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunorehab.cytometry import compensate, read_fcs
from immunorehab.errors import ConfigError, FcsSimulationError
from immunorehab.simulate.fcs import (
    CHANNELS,
    FLUORESCENCE,
    BeadSpec,
    MemoryFractions,
    PanelFractions,
    simulate_panel,
    simulate_panel_sample,
    write_panel_fcs,
    write_truth,
)

N = 60_000


@pytest.fixture(scope="module")
def panel() -> object:
    return simulate_panel(N, rng=np.random.default_rng(11), beads=BeadSpec(), seed=11)


def _within_binomial(count: int, total: int, p: float, z: float = 4.5) -> bool:
    se = math.sqrt(p * (1 - p) / total)
    return abs(count / total - p) <= z * se + 1e-12


def test_shape_channels_and_markers(panel: object) -> None:
    assert panel.events.shape == (N, 16)
    assert panel.channels == CHANNELS
    assert [m for m in panel.markers if m] == [m for _, m in FLUORESCENCE]
    assert panel.events.dtype == np.float32
    # time is acquisition order: non-decreasing ticks
    assert np.all(np.diff(panel.events[:, -1]) >= 0)


def test_realised_fractions_match_the_chosen_ones(panel: object) -> None:
    """Each truth population's share of its parent is a binomial draw around the chosen fraction."""
    table = panel.truth.gates.set_index("gate")
    checked = 0
    for gate, row in table.iterrows():
        if gate in ("qc", "singlets", "beads") or math.isnan(row["expected_pct_parent"]):
            continue
        parent = row["parent"]
        parent_count = N if parent == "root" else int(table.loc[parent, "count"])
        assert _within_binomial(int(row["count"]), parent_count, row["expected_pct_parent"] / 100), gate
        checked += 1
    assert checked >= 18


def test_labels_partition_the_subsets(panel: object) -> None:
    truth = panel.truth
    for subset in ("cd4", "cd8"):
        parts = sum(truth.membership(f"{subset}_{m}").astype(int) for m in ("naive", "cm", "em", "temra"))
        assert np.array_equal(parts.astype(bool), truth.membership(subset))
        assert parts.max() == 1
    nk = truth.membership("nk_cd56bright").astype(int) + truth.membership("nk_cd56dim").astype(int)
    assert np.array_equal(nk.astype(bool), truth.membership("nk"))
    # senescent cells are drawn from EM/TEMRA, activated from memory cells only
    labels = truth.labels
    assert not (labels["senescent"] & labels["memory"].isin(["naive", "cm"])).any()
    assert not (labels["activated"] & (labels["memory"] == "naive")).any()


def test_bead_count_gives_the_true_concentration(panel: object) -> None:
    """beads/uL over live lymphocytes/uL is the bead/lymphocyte event ratio (Poisson noise only)."""
    table = panel.truth.gates.set_index("gate")
    live_per_ul = table.loc["live", "cells_per_ul"]
    n_beads = table.loc["beads", "count"]
    assert abs(live_per_ul / 1800.0 - 1) < 4.5 * math.sqrt(1 / n_beads + 1 / table.loc["live", "count"])


def test_spillover_is_applied_and_recorded(panel: object) -> None:
    """FITC (CD45RA) spills into PE (CD56): visible raw, gone after compensating with the file's matrix."""
    sample, truth = simulate_panel_sample(40_000, rng=np.random.default_rng(5))
    t_cells = truth.membership("t_cells")
    ra_pos = t_cells & truth.labels["memory"].isin(["naive", "temra"]).to_numpy()
    ra_neg = t_cells & truth.labels["memory"].isin(["cm", "em"]).to_numpy()
    pe = sample.channels.index("PE-A")
    raw_shift = np.median(sample.raw[ra_pos, pe]) - np.median(sample.raw[ra_neg, pe])
    assert raw_shift > 1000  # 0.18 x ~9000 units of FITC
    comp = compensate(sample.raw, sample.channels, sample.spillover)
    comp_shift = np.median(comp[ra_pos, pe]) - np.median(comp[ra_neg, pe])
    assert abs(comp_shift) < 60
    assert sample.spillover.matrix[FLUORESCENCE.index(("FITC-A", "CD45RA")), 10] == pytest.approx(0.18)


def test_fcs_round_trip(tmp_path: Path, panel: object) -> None:
    path = write_panel_fcs(panel, tmp_path / "x.fcs")
    sample = read_fcs(path)
    assert sample.version == "3.1"
    assert sample.channels == CHANNELS
    assert sample.n_events == N
    np.testing.assert_array_equal(sample.raw, panel.events.astype(np.float64))
    np.testing.assert_allclose(sample.spillover.matrix, panel.spillover, rtol=1e-6)
    assert sample.metadata["timestep"] == "0.01"
    with pytest.raises(ConfigError, match="exists"):
        write_panel_fcs(panel, path)


def test_file_without_spillover_has_no_keyword(tmp_path: Path) -> None:
    path, _ = simulate_panel_sample(
        500, rng=np.random.default_rng(1), spillover=False, path=tmp_path / "n.fcs"
    )
    sample = read_fcs(path)
    assert sample.spillover is None


def test_truth_files(tmp_path: Path, panel: object) -> None:
    written = write_truth(panel.truth, tmp_path / "t.json", labels_path=tmp_path / "t.labels.csv")
    assert [p.name for p in written] == ["t.json", "t.labels.csv"]
    payload = json.loads((tmp_path / "t.json").read_text())
    assert payload["n_events"] == N
    gates = {g["gate"]: g for g in payload["gates"]}
    assert gates["cd8_naive"]["parent"] == "cd8"
    labels = pd.read_csv(tmp_path / "t.labels.csv")
    assert len(labels) == N
    assert int((labels["cell_type"] == "bead").sum()) == gates["beads"]["count"]
    write_truth(panel.truth, tmp_path / "t2.json", labels_path=tmp_path / "t.parquet")
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == N


def test_flow_disturbance_is_labelled_and_slows_the_rate() -> None:
    panel = simulate_panel(20_000, rng=np.random.default_rng(2), flow_disturbance=(0.4, 0.6, 0.2))
    unstable = panel.truth.labels["unstable"].to_numpy()
    time = panel.events[:, -1]
    assert unstable.any()
    lo, hi = time[unstable].min(), time[unstable].max()
    window_rate = unstable.sum() / (hi - lo)
    steady_rate = (~unstable).sum() / (time.max() - time.min() - (hi - lo))
    assert window_rate < 0.35 * steady_rate
    assert not panel.truth.membership("qc")[unstable].any()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"debris": 1.5}, "debris must be between 0 and 1"),
        ({"t_cells": 0.8, "nk": 0.3}, "t_cells \\+ b_cells \\+ nk must be at most 1"),
        ({"cd8_naive": 0.9}, "cd8_memory fractions must sum to 1"),
    ],
)
def test_impossible_fractions_are_refused(changes: dict[str, float], message: str) -> None:
    with pytest.raises(FcsSimulationError, match=message):
        simulate_panel(1000, rng=np.random.default_rng(1), fractions=PanelFractions().with_values(**changes))


def test_senescence_cannot_exceed_late_memory() -> None:
    fractions = PanelFractions(cd8_memory=MemoryFractions(0.7, 0.2, 0.05, 0.05), cd8_senescent=0.2)
    assert any("cd8_senescent cannot exceed" in p for p in fractions.problems())


def test_unknown_fraction_name_lists_the_allowed_ones() -> None:
    with pytest.raises(FcsSimulationError, match="unknown fraction 'cd9'.*cd4_naive"):
        PanelFractions().with_values(cd9=0.1)


def test_too_few_events() -> None:
    with pytest.raises(FcsSimulationError, match="at least 100"):
        simulate_panel(10, rng=np.random.default_rng(1))


def test_same_seed_same_file() -> None:
    a = simulate_panel(2000, rng=np.random.default_rng(3))
    b = simulate_panel(2000, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.events, b.events)
