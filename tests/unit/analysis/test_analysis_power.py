"""Power and sample size against R's ?power.t.test examples; simulation against analytic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import agrees

from immunorehab.analysis import ancova, planning_model, power_ancova, power_t_test, simulated_power
from immunorehab.analysis.power import TrialModel
from immunorehab.errors import AnalysisDataError


def test_power_t_test_matches_r_examples() -> None:
    # stats-Ex.Rout.save, ?power.t.test
    assert agrees(power_t_test(n=20, delta=1).power, "0.8689528")
    assert agrees(power_t_test(power=0.90, delta=1).n, "22.02110")
    assert agrees(power_t_test(power=0.90, delta=1, alternative="one.sided").n, "17.84713")


def test_exact_root_differs_from_rs_tolerance_only_slightly() -> None:
    exact = power_t_test(power=0.90, delta=1, alternative="one.sided", tol=1e-12).n
    assert exact == pytest.approx(17.84713, abs=2e-5)
    assert power_t_test(n=exact, delta=1, alternative="one.sided").power == pytest.approx(0.9, abs=1e-9)


def test_solve_for_delta_round_trips() -> None:
    r = power_t_test(n=20, power=0.9)
    assert r.solved_for == "delta"
    assert power_t_test(n=20, delta=r.delta).power == pytest.approx(0.9, abs=1e-4)  # R tol eps^0.25


def test_ancova_power_uses_residual_sd() -> None:
    rho0 = power_ancova(power=0.9, delta=1, rho=0.0)
    plain = power_t_test(power=0.9, delta=1)
    assert rho0.n == pytest.approx(plain.n, abs=0.1)  # one df lost for the baseline slope
    rho6 = power_ancova(power=0.9, delta=1, rho=0.6)
    assert rho6.n < rho0.n
    big = power_ancova(power=0.9, delta=0.2, rho=0.6).n / power_t_test(power=0.9, delta=0.2).n
    assert big == pytest.approx(1 - 0.6**2, abs=0.01)  # Borm et al. design factor
    assert rho6.table.sd_residual[0] == pytest.approx(0.8)


def test_simulated_power_agrees_with_analytic_and_is_reproducible() -> None:
    model = TrialModel(baseline_mean=0, baseline_sd=1, intercept=0, slope=0.6, effect=0.5, residual_sd=0.8)
    a = simulated_power(model, n_per_arm=[20, 50], rng=np.random.default_rng(11), n_sim=3000)
    b = simulated_power(model, n_per_arm=[20, 50], rng=np.random.default_rng(11), n_sim=3000)
    pd.testing.assert_frame_equal(a.table, b.table)
    for _, row in a.table.iterrows():
        analytic = power_ancova(n=row.n_per_arm, delta=0.5, sd=1.0, rho=0.6).power
        assert row.power_ci_low - 0.01 <= analytic <= row.power_ci_high + 0.01
        assert row.coverage == pytest.approx(0.95, abs=0.015)
        assert row.mean_estimate == pytest.approx(0.5, abs=0.02)


def test_planning_from_fitted_study_and_smaller_effect(anorexia: pd.DataFrame) -> None:
    fit = ancova(
        anorexia[anorexia.Treat != "CBT"], outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont"
    )
    model = planning_model(fit, anorexia[anorexia.Treat != "CBT"])
    assert model.effect == pytest.approx(fit.table.estimate[0]) and model.residual_sd == pytest.approx(
        fit.residual_sd
    )
    rng = np.random.default_rng(4)
    full = simulated_power(model, n_per_arm=30, rng=rng, n_sim=500)
    half = simulated_power(model, n_per_arm=30, rng=rng, n_sim=500, effect=model.effect / 2)
    assert half.table.power[0] < full.table.power[0]
    assert half.effect == pytest.approx(model.effect / 2)
    seen: list[tuple[str, int, int]] = []
    simulated_power(model, n_per_arm=[10, 20], rng=rng, n_sim=50, on_progress=lambda *a: seen.append(a))
    assert seen == [("simulated power", 1, 2), ("simulated power", 2, 2)]


def test_bad_arguments() -> None:
    with pytest.raises(AnalysisDataError, match="exactly two of n, delta and power"):
        power_t_test(n=20)
    with pytest.raises(AnalysisDataError, match="rho must be strictly between"):
        power_ancova(n=20, delta=1, rho=1.0)
    with pytest.raises(AnalysisDataError, match="power must be strictly between 0 and 1"):
        power_t_test(delta=1, power=1.2)
