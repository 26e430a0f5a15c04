"""Latent models of the presets against the seed studies' published figures (domain.md 0, F)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunorehab.simulate.latent import (
    HEALTHY_MEDIAN,
    cohort_concentrations,
    cohort_inflammation,
    draw_cohort_latents,
    questionnaires,
    trial_function,
)


@pytest.fixture(scope="module")
def big_cohort() -> tuple[list, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 20_000
    ages = np.clip(rng.normal(59, 12, n).round(), 18, 90)
    severity = rng.choice([4, 5, 6, 7, 8], size=n, p=[0.35, 0.35, 0.15, 0.1, 0.05])
    return draw_cohort_latents(rng, ages=ages, severities=severity), ages, severity


def test_symptom_prevalence_matches_fong_2023(big_cohort) -> None:
    """~37% symptomatic at 12 months and ~39% at 24 (Fong 2023); 54% of the inflamed cluster at 12 m."""
    people, _, _ = big_cohort
    share = {v: np.mean([p.symptomatic[v] for p in people]) for v in ("month6", "month12", "month24")}
    assert share["month12"] == pytest.approx(0.37, abs=0.01)
    assert share["month24"] == pytest.approx(0.39, abs=0.01)
    assert share["month6"] == pytest.approx(0.45, abs=0.01)
    cluster = [p for p in people if p.cluster]
    assert len(cluster) / len(people) == pytest.approx(0.30, abs=0.01)
    assert np.mean([p.symptomatic["month12"] for p in cluster]) == pytest.approx(0.54, abs=0.02)


def test_cluster_and_slow_normalisation_are_likelier_when_older_and_more_severe(big_cohort) -> None:
    people, ages, severity = big_cohort
    cluster = np.array([p.cluster for p in people])
    midpoint = np.array([p.midpoint_months for p in people])
    old = ages >= 70
    assert cluster[old].mean() > cluster[ages < 50].mean() + 0.1
    assert np.median(midpoint[old]) > np.median(midpoint[ages < 50]) + 2
    assert np.median(midpoint[severity >= 7]) > np.median(midpoint[severity == 4]) + 1


def test_inflammation_raised_in_the_symptomatic_and_normal_by_24_months(big_cohort) -> None:
    people, _, _ = big_cohort
    rng = np.random.default_rng(5)
    sample = people[:3000]

    def geo(group: bool, months: float) -> float:
        values = [
            cohort_concentrations(rng, p, months)["IL-6"] for p in sample if p.symptomatic["month12"] is group
        ]
        return float(np.exp(np.mean(np.log(values))))

    assert geo(True, 12) / geo(False, 12) > 1.5
    assert geo(True, 24) / geo(False, 24) < 1.15
    assert geo(False, 24) == pytest.approx(HEALTHY_MEDIAN["IL-6"], rel=0.15)
    acute, _ = cohort_inflammation(sample[0], 0.0)
    assert geo(False, 0.0) > 5 * HEALTHY_MEDIAN["IL-6"] and acute > 0.5  # acute admission
    il6_24 = np.array([cohort_concentrations(rng, p, 24.0)["IL-6"] for p in sample])
    assert np.mean(il6_24 <= 3.53) > 0.9  # most are below the CoLaus upper quartile by 24 months
    persistent_12 = np.array([cohort_inflammation(p, 12.0)[1] for p in sample])
    persistent_24 = np.array([cohort_inflammation(p, 24.0)[1] for p in sample])
    assert np.mean(persistent_24 < 0.1) > 0.85 and np.mean(persistent_12 > 0.5) > 0.3


def test_trial_function_gains_scale_with_dose() -> None:
    baseline = {"iswt_distance_m": 400, "eswt_time_s": 300, "sts_1min_reps": 20}

    def mean_iswt(dose: float) -> float:
        rng = np.random.default_rng(2)
        values = [
            trial_function(rng, baseline, dose=dose, iswt_m=60, eswt_s=150, sts_reps=2)[0]["iswt_distance_m"]
            for _ in range(3000)
        ]
        return float(np.mean(values))

    values, effects = trial_function(
        np.random.default_rng(1), baseline, dose=0.5, iswt_m=60, eswt_s=150, sts_reps=2
    )
    assert effects == {"iswt_distance_m": 30.0, "eswt_time_s": 75.0, "sts_1min_reps": 1.0}
    assert values["iswt_distance_m"] % 10 == 0  # 10-m shuttles
    assert mean_iswt(1.0) - mean_iswt(0.0) == pytest.approx(60, abs=1.5)  # same draws: the effect only


def test_questionnaires_stay_in_range_and_follow_the_burden() -> None:
    rng = np.random.default_rng(4)
    low = [questionnaires(rng, -1.5) for _ in range(500)]
    high = [questionnaires(rng, 1.5) for _ in range(500)]
    for row in low + high:
        assert 0 <= row["facit_fatigue"] <= 52 and 0 <= row["c19yrsm_symptom_severity"] <= 30
        assert -0.28 <= row["eq5d5l_index"] <= 1.0 and 0 <= row["eq_vas"] <= 100
    assert np.mean([r["facit_fatigue"] for r in low]) > np.mean([r["facit_fatigue"] for r in high]) + 15
    assert not math.isnan(np.mean([r["eq5d5l_index"] for r in high]))
