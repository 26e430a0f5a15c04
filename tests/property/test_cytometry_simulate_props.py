"""Properties of the simulator: any valid fractions give consistent labels, and the FCS file reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunorehab.cytometry import read_fcs
from immunorehab.simulate.fcs import (
    TRUTH_PARENTS,
    MemoryFractions,
    PanelFractions,
    simulate_panel,
    write_panel_fcs,
)


@st.composite
def memory(draw: st.DrawFn) -> MemoryFractions:
    w = np.array([draw(st.floats(0.02, 1.0)) for _ in range(4)])
    w = w / w.sum()
    return MemoryFractions(*(float(v) for v in w[:3]), float(1.0 - w[:3].sum()))


@st.composite
def fractions(draw: st.DrawFn) -> PanelFractions:
    cd4_memory, cd8_memory = draw(memory()), draw(memory())
    t = draw(st.floats(0.3, 0.8))
    nk = draw(st.floats(0.0, 1.0 - t - 0.05))
    cd4 = draw(st.floats(0.1, 0.8))
    return PanelFractions(
        debris=draw(st.floats(0.0, 0.2)),
        doublets=draw(st.floats(0.0, 0.1)),
        lymphocytes=draw(st.floats(0.1, 0.8)),
        monocytes=draw(st.floats(0.0, 0.15)),
        dead=draw(st.floats(0.0, 0.3)),
        t_cells=t,
        b_cells=0.05,
        nk=nk,
        cd4=cd4,
        cd8=draw(st.floats(0.05, 0.95 - cd4)),
        cd4_memory=cd4_memory,
        cd8_memory=cd8_memory,
        cd4_activated=draw(st.floats(0, 1 - cd4_memory.naive)),
        cd8_activated=draw(st.floats(0, 1 - cd8_memory.naive)),
        cd4_senescent=draw(st.floats(0, cd4_memory.em + cd4_memory.temra)),
        cd8_senescent=draw(st.floats(0, cd8_memory.em + cd8_memory.temra)),
        nk_cd56bright=draw(st.floats(0, 1)),
    )


@settings(max_examples=25, deadline=None)
@given(f=fractions(), seed=st.integers(0, 2**31), n=st.integers(100, 3000))
def test_truth_membership_is_nested_and_partitions(f: PanelFractions, seed: int, n: int) -> None:
    assert f.problems() == []
    panel = simulate_panel(n, rng=np.random.default_rng(seed), fractions=f)
    truth = panel.truth
    assert len(truth.labels) == n == panel.n_events
    for gate, parent in TRUTH_PARENTS.items():
        if parent is not None:
            assert not (truth.membership(gate) & ~truth.membership(parent)).any(), gate
    for subset in ("cd4", "cd8"):
        parts = sum(truth.membership(f"{subset}_{m}").astype(int) for m in ("naive", "cm", "em", "temra"))
        assert np.array_equal(parts, truth.membership(subset).astype(int))
    counts = truth.gates.set_index("gate")["count"]
    assert counts["cd4_senescent"] <= counts["cd4_em"] + counts["cd4_temra"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), n=st.integers(100, 2000))
def test_written_file_reads_back_identically(tmp_path: Path, seed: int, n: int) -> None:
    panel = simulate_panel(n, rng=np.random.default_rng(seed))
    path = write_panel_fcs(panel, tmp_path / f"{seed}-{n}.fcs", overwrite=True)
    sample = read_fcs(path)
    np.testing.assert_array_equal(sample.raw, panel.events.astype(np.float64))
    assert sample.channels == panel.channels
