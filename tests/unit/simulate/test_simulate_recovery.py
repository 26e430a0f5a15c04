"""Comparing pipeline output with a simulation's truth (pure functions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunorehab.simulate.recovery import cohort_recovery, effect_recovery, gating_recovery, gating_tolerance


def test_gating_tolerance_is_the_oracle_bound_widened_for_small_parents() -> None:
    assert gating_tolerance(3_000) == pytest.approx(1.0)
    assert gating_tolerance(50_000) == pytest.approx(1.0)  # never tighter than the oracle's bound
    assert gating_tolerance(750) == pytest.approx(2.0)  # 1/sqrt(events): a quarter of the events, twice
    assert gating_tolerance(0) == pytest.approx(math.sqrt(3000))  # no parent: no division by zero


def test_gating_recovery_pairs_each_stored_result_with_its_truth() -> None:
    stored = pd.DataFrame(
        {
            "participant_id": ["LEI-0001", "LEI-0001", "LEI-0002"],
            "visit": ["baseline", "baseline", "week8"],
            "gate": ["cd8_naive", "cd4", "cd8_naive"],
            "pct_parent": [30.5, 60.0, 22.0],
        }
    )
    truth = pd.DataFrame(
        {
            "participant_id": ["LEI-0001", "LEI-0001", "LEI-0002", "LEI-0003"],
            "visit_id": ["baseline", "baseline", "week8", "week8"],
            "gate": ["cd8_naive", "cd4", "cd8_naive", "cd8_naive"],
            "true_pct_parent": [30.0, 60.2, 19.0, 25.0],
            "true_parent_count": [3_000, 9_000, 300, 500],
        }
    )
    out = gating_recovery(stored, truth).set_index(["participant_id", "gate"])
    assert len(out) == 3  # LEI-0003 has no stored result
    assert out.loc[("LEI-0001", "cd8_naive"), "diff"] == pytest.approx(0.5)
    assert out.loc[("LEI-0001", "cd4"), "within"]
    assert out.loc[("LEI-0002", "cd8_naive"), "tolerance"] == pytest.approx(math.sqrt(10))
    assert out.loc[("LEI-0002", "cd8_naive"), "within"]  # 3.0 points off, 300-event parent: 3.16 allowed
    stored.loc[2, "pct_parent"] = 23.0
    assert (
        not gating_recovery(stored, truth)
        .set_index(["participant_id", "gate"])
        .loc[("LEI-0002", "cd8_naive"), "within"]
    )


def test_effect_recovery_marks_intervals_that_hold_the_truth() -> None:
    results = pd.DataFrame(
        {
            "outcome": ["a", "a", "b"],
            "label": ["A", "A", "B"],
            "family": ["f", "f", "f"],
            "population": ["itt", "per_protocol", "itt"],
            "scale": ["ratio", "ratio", "difference"],
            "estimate": [1.2, 1.3, 50.0],
            "ci_low": [1.1, 1.25, 10.0],
            "ci_high": [1.3, 1.4, 90.0],
            "p_adjusted": [0.01, 0.01, 0.02],
        }
    )
    truth = pd.DataFrame(
        {
            "outcome": ["a", "a", "b"],
            "population": ["itt", "per_protocol", "itt"],
            "true_effect": [1.15, 1.2, 95],
        }
    )
    out = effect_recovery(results, truth)
    assert out["covered"].tolist() == [True, False, False]


def test_cohort_recovery_reads_prevalence_groups_and_survival() -> None:
    descriptives = pd.DataFrame(
        {
            "outcome": ["il6"] * 4,
            "visit": ["month12", "month12", "month24", "month24"],
            "arm": ["symptomatic", "asymptomatic"] * 2,
            "geo_mean": [4.0, 2.0, 1.8, 1.6],
        }
    )
    prevalence = pd.DataFrame(
        {"visit": ["month12"], "group": ["all"], "proportion": [0.4], "ci_low": [0.3], "ci_high": [0.5]}
    )
    km = pd.DataFrame(
        {"outcome": ["il6_normal"] * 2, "group": ["symptomatic", "asymptomatic"], "median": [12.0, 6.0]}
    )
    truth = {
        "summary": {
            "prevalence_recorded": {"month12": 0.41},
            "true_il6_geo_mean_by_symptoms_12m": {"month12/symptomatic": 4.2, "month12/asymptomatic": 2.1},
            "true_share_normal_at_24m": {"IL-6": 0.95},
        }
    }
    out = cohort_recovery(descriptives, prevalence, km, truth)
    assert out["prevalence"]["month12"] == (0.4, 0.3, 0.5, 0.41, 0.37)
    assert out["inflammation"]["month12"] == (4.0, 2.0, 2.0)
    assert out["true_inflammation"]["month12"] == (4.2, 2.1, 2.0)
    assert np.isnan(out["inflammation"]["month6"][0])
    assert out["median_months"] == {"symptomatic": 12.0, "asymptomatic": 6.0}
