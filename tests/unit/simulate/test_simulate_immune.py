"""The count model behind the simulated FCS fractions: valid fractions, closure, age and CMV."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunorehab.simulate.immune import MEMORY_GATES, baseline_immune_state, outcome_value


def _states(n: int, *, age: float = 59, cmv: str = "positive", seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [baseline_immune_state(rng, age_years=age, cmv=cmv) for _ in range(n)]


def test_every_state_gives_valid_simulator_fractions() -> None:
    rng = np.random.default_rng(3)
    for _ in range(400):
        age = float(rng.uniform(18, 95))
        cmv = str(rng.choice(["positive", "negative", "unknown"]))
        state = baseline_immune_state(rng, age_years=age, cmv=cmv).jittered(rng, 0.3)
        assert state.panel_fractions().problems() == []
        for subset in ("cd4", "cd8"):
            shares = [state.fraction(f"{subset}_{m}") for m in ("naive", "cm", "em", "temra")]
            assert math.isclose(sum(shares), 1.0)
        assert math.isclose(state.count("lymphocytes"), sum(state.counts))


def test_count_ratios_move_counts_exactly_and_shares_by_closure() -> None:
    (state,) = _states(1)
    ratios = {"cd8_naive": 1.4, "cd8_cm": 1.3, "cd8_em": 1.2}
    treated = state.scaled(ratios)
    for gate in MEMORY_GATES:
        count_ratio = outcome_value(treated, gate, "per_ul") / outcome_value(state, gate, "per_ul")
        assert count_ratio == pytest.approx(ratios.get(gate, 1.0))
    # % of CD8: each subset's ratio divided by the CD8 compartment's growth
    growth = sum(ratios.get(g, 1.0) * state.fraction(g) for g in MEMORY_GATES if g.startswith("cd8"))
    for gate in ("cd8_naive", "cd8_cm", "cd8_em", "cd8_temra"):
        share_ratio = outcome_value(treated, gate, "pct_parent") / outcome_value(state, gate, "pct_parent")
        assert share_ratio == pytest.approx(ratios.get(gate, 1.0) / growth)
    assert treated.fraction("cd4_naive") == pytest.approx(state.fraction("cd4_naive"))  # CD4 untouched


def test_naive_cells_fall_with_age_and_cmv_expands_cd8_temra() -> None:
    """domain.md C2: naive CD8 falls about twice as fast as naive CD4; CMV expands CD8 TEMRA."""
    young = _states(300, age=30, cmv="negative")
    old = _states(300, age=80, cmv="negative")
    positive = _states(300, age=55, cmv="positive")
    negative = _states(300, age=55, cmv="negative")

    def mean(states: list, gate: str) -> float:
        return float(np.mean([s.fraction(gate) for s in states]))

    cd8_drop = mean(young, "cd8_naive") - mean(old, "cd8_naive")
    cd4_drop = mean(young, "cd4_naive") - mean(old, "cd4_naive")
    assert cd8_drop > 0.2 and cd4_drop > 0.1 and 1.2 < cd8_drop / cd4_drop < 2.2
    assert mean(positive, "cd8_temra") - mean(negative, "cd8_temra") > 0.12
    t_share = np.mean([s.fraction("t_cells") for s in young])
    assert 0.6 < t_share < 0.75  # domain.md C2: T cells 55-83% of lymphocytes


def test_within_person_variation_is_the_cv_asked_for() -> None:
    (state,) = _states(1)
    rng = np.random.default_rng(9)
    logs = [
        math.log(state.jittered(rng, 0.08).count("cd4_naive") / state.count("cd4_naive")) for _ in range(4000)
    ]
    assert np.std(logs) == pytest.approx(0.08, rel=0.05)
