"""QC flags: too few events, unstable flow, missing compensation, no clear valley, beads, exercise."""

from __future__ import annotations

import numpy as np
import pytest

from immunorehab.cytometry import Sample
from immunorehab.cytometry.absolute import SinglePlatform
from immunorehab.cytometry.pipeline import GateOptions, analyse_sample
from immunorehab.cytometry.qc import QcSettings, exercise_flag
from immunorehab.simulate.fcs import BeadSpec, PanelFractions, simulate_panel, simulate_panel_sample

OPTIONS = GateOptions.create(mfi_markers=())


def _codes(analysis: object) -> set[str]:
    return {f.code for f in analysis.flags}


def test_a_clean_sample_raises_no_flag() -> None:
    sample, _ = simulate_panel_sample(30_000, rng=np.random.default_rng(1))
    assert _codes(analyse_sample(sample, OPTIONS)) == set()


def test_too_few_events() -> None:
    sample, _ = simulate_panel_sample(1_500, rng=np.random.default_rng(2))
    analysis = analyse_sample(sample, OPTIONS)
    details = [f.detail for f in analysis.flags if f.code == "too_few_events"]
    assert "1500 events (at least 10000 expected)" in details
    assert any("in 'live'" in d for d in details)


def test_unstable_flow_in_the_middle_of_the_run_is_flagged() -> None:
    sample, _ = simulate_panel_sample(
        30_000, rng=np.random.default_rng(3), flow_disturbance=(0.4, 0.55, 0.15)
    )
    flags = [f for f in analyse_sample(sample, OPTIONS).flags if f.code == "unstable_flow"]
    assert len(flags) == 1 and "rate departs from the median" in flags[0].detail


def test_unstable_start_is_trimmed_by_the_time_gate() -> None:
    sample, truth = simulate_panel_sample(
        30_000, rng=np.random.default_rng(4), flow_disturbance=(0.0, 0.1, 0.2)
    )
    analysis = analyse_sample(sample, OPTIONS)
    qc = analysis.results.membership("qc")
    unstable = truth.labels["unstable"].to_numpy()
    assert qc[unstable].mean() < 0.2  # most of the slow start is cut
    assert qc[~unstable].mean() > 0.97
    assert "unstable_flow" in _codes(analysis)


def test_missing_and_identity_compensation() -> None:
    panel = simulate_panel(20_000, rng=np.random.default_rng(5), spillover=False)
    bare = Sample.from_array(panel.events, panel.channels, markers=panel.markers, name="bare")
    flags = [f.detail for f in analyse_sample(bare, OPTIONS).flags if f.code == "missing_compensation"]
    assert flags and "no $SPILLOVER" in flags[0]
    identity = Sample.from_array(
        panel.events, panel.channels, markers=panel.markers, metadata=panel.metadata(), name="identity"
    )
    assert identity.spillover is not None
    flags = [f.detail for f in analyse_sample(identity, OPTIONS).flags if f.code == "missing_compensation"]
    assert flags and "identity" in flags[0]


def test_no_clear_valley_names_the_threshold() -> None:
    sample, _ = simulate_panel_sample(
        30_000, rng=np.random.default_rng(6), fractions=PanelFractions(nk_cd56bright=0.0)
    )
    flags = [f.detail for f in analyse_sample(sample, OPTIONS).flags if f.code == "no_clear_valley"]
    assert flags == ["template position kept for nk:CD56, nk:CD16"]  # no bright NK: CD16 is unimodal too


def test_too_few_beads() -> None:
    sample, _ = simulate_panel_sample(
        20_000, rng=np.random.default_rng(7), beads=BeadSpec(beads_per_tube=2_000, lymphocytes_per_ul=2_000)
    )
    analysis = analyse_sample(sample, OPTIONS, absolute=SinglePlatform(2_000, 50))
    assert "too_few_beads" in _codes(analysis)
    assert "too_few_beads" not in _codes(analyse_sample(sample, OPTIONS))  # no bead counts asked for


def test_limits_are_settings() -> None:
    sample, _ = simulate_panel_sample(12_000, rng=np.random.default_rng(8))
    strict = GateOptions.create(mfi_markers=(), qc=QcSettings(min_events=50_000))
    assert "too_few_events" in _codes(analyse_sample(sample, strict))
    assert strict.sha256() != OPTIONS.sha256()


@pytest.mark.parametrize(("hours", "flagged"), [(0.0, True), (23.9, True), (24.0, False), (72.0, False)])
def test_exercise_flag_24_hours(hours: float, flagged: bool) -> None:
    flag = exercise_flag(hours, source="visit measure")
    assert (flag is not None) == flagged
    if flag is not None:
        assert flag.code == "draw_after_exercise" and f"{hours:.1f} h after exercise" in flag.detail
    assert exercise_flag(None, source="x") is None
