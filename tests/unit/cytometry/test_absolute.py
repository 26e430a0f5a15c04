"""Absolute counts: single-platform bead formula, dual platform multiplied down the tree (domain.md C3)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunorehab.cytometry.absolute import (
    DualPlatform,
    SinglePlatform,
    absolute_counts,
    dual_platform_per_ul,
    lymphocytes_per_ul,
    single_platform_per_ul,
)
from immunorehab.cytometry.pipeline import GateOptions, analyse_sample
from immunorehab.errors import CytometryError
from immunorehab.simulate.fcs import BeadSpec, simulate_panel_sample

COUNTS = pd.DataFrame(
    {
        "gate": ["beads", "qc", "lymphocytes", "live", "t_cells", "cd8", "cd8_naive"],
        "parent": [None, None, "qc", "lymphocytes", "live", "t_cells", "cd8"],
        "count": [1_000, 19_000, 6_000, 5_000, 3_500, 1_050, 367],
    }
)


def test_single_platform_formula() -> None:
    # 2,000 CD3 events against 1,000 beads; 50,000 beads in 50 uL of blood -> 2,000 cells/uL
    assert single_platform_per_ul(2_000, 1_000, 50_000, 50) == pytest.approx(2_000)
    assert math.isnan(float(single_platform_per_ul(10, 0, 50_000, 50)))


def test_dual_platform_multiplies_down_the_tree() -> None:
    per_ul = dict(zip(COUNTS["gate"], dual_platform_per_ul(COUNTS, 1_800.0, "live"), strict=True))
    assert per_ul["live"] == 1_800.0
    assert per_ul["t_cells"] == pytest.approx(1_800 * 0.70)
    assert per_ul["cd8"] == pytest.approx(1_800 * 0.70 * 0.30)
    assert per_ul["cd8_naive"] == pytest.approx(1_800 * 0.70 * 0.30 * 367 / 1_050)
    # equals ALC x count / count(reference) for every descendant
    assert per_ul["cd8_naive"] == pytest.approx(1_800 * 367 / 5_000)
    for above in ("beads", "qc", "lymphocytes"):
        assert math.isnan(per_ul[above])


def test_absolute_counts_dispatch_and_errors() -> None:
    single = absolute_counts(COUNTS, SinglePlatform(50_000, 50))
    assert single[COUNTS["gate"].tolist().index("t_cells")] == pytest.approx(3_500 / 1_000 * 1_000)
    assert np.isnan(absolute_counts(COUNTS, None)).all()
    with pytest.raises(CytometryError, match="bead gate 'tubebeads' is not among the gates"):
        absolute_counts(COUNTS, SinglePlatform(50_000, 50, bead_gate="tubebeads"))
    with pytest.raises(CytometryError, match="reference population 'lymph' is not among"):
        absolute_counts(COUNTS, DualPlatform(1_800, reference_gate="lymph"))
    with pytest.raises(CytometryError, match="volume_ul must be a positive number"):
        SinglePlatform(50_000, 0)
    with pytest.raises(CytometryError, match="lymphocytes_per_ul must be a positive number"):
        DualPlatform(-1)


def test_lymphocytes_from_a_blood_count() -> None:
    assert lymphocytes_per_ul(6.0, 30.0) == pytest.approx(1_800.0)
    with pytest.raises(CytometryError, match="lymphocytes 0-100 %"):
        lymphocytes_per_ul(6.0, 130.0)


def test_bead_counts_recover_the_simulated_concentration() -> None:
    """Single-platform cells/uL of gated live lymphocytes: the simulated 1,500/uL within counting error."""
    sample, _ = simulate_panel_sample(
        60_000, rng=np.random.default_rng(21), beads=BeadSpec(lymphocytes_per_ul=1_500)
    )
    analysis = analyse_sample(sample, GateOptions.create(mfi_markers=()), absolute=SinglePlatform(50_000, 50))
    per_ul = analysis.counts.set_index("gate")["cells_per_ul"]
    n_beads, n_live = analysis.results.count("beads"), analysis.results.count("live")
    poisson = math.sqrt(1 / n_beads + 1 / n_live)
    # the lymphocyte contour (1% of the peak density) keeps ~99% of lymphocytes: allow 2% on top
    assert per_ul["live"] == pytest.approx(1_500, rel=4 * poisson + 0.02)
    # sub-populations: same bead denominator, so their ratio to live equals the gated fraction
    assert per_ul["t_cells"] / per_ul["live"] == pytest.approx(analysis.results.count("t_cells") / n_live)
    dual = analyse_sample(sample, GateOptions.create(mfi_markers=()), absolute=DualPlatform(1_500))
    assert dual.counts.set_index("gate")["cells_per_ul"]["live"] == 1_500
