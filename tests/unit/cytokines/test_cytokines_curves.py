"""Standard curves: failures are reported (not raised), weights, directions, parameter recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunorehab.cytokines import CurveStatus, fit_standard_curve
from immunorehab.cytokines.models import FivePL, FourPL, get_model
from immunorehab.errors import CurveFitError

CONC = np.repeat(10000 / 4.0 ** np.arange(8), 2)
TRUE_5PL = np.array([25.0, 1.05, 1500.0, 26000.0, 0.9])  # a, b, c, d, g


def signals(rng: np.random.Generator, cv: float = 0.04, params: np.ndarray = TRUE_5PL) -> np.ndarray:
    return FivePL().mean(CONC, params) * np.exp(rng.normal(0, cv, CONC.size))


def test_rising_and_falling_curves_both_fit() -> None:
    rng = np.random.default_rng(1)
    rising = fit_standard_curve(CONC, signals(rng), model="5PL", weights="1/y2")
    falling_params = np.array([26000.0, 1.05, 150.0, 25.0, 0.9])
    falling = fit_standard_curve(CONC, signals(rng, params=falling_params), model="5PL", weights="1/y2")
    assert rising.ok and rising.rising
    assert falling.ok and not falling.rising
    assert rising.r_squared > 0.99 and falling.r_squared > 0.97
    true_mid = FivePL().mean(np.array([150.0]), falling_params)
    assert float(falling.back_calculate(true_mid)[0]) == pytest.approx(150, rel=0.15)


def test_too_few_standards_fails_with_reason() -> None:
    curve = fit_standard_curve([1, 10, 100], [10, 100, 1000], model="4PL")
    assert curve.status is CurveStatus.FAILED
    assert "too few standards: 3" in curve.reason
    assert math.isnan(curve.params["a"]) and curve.n == 3


def test_flat_curve_fails() -> None:
    rng = np.random.default_rng(2)
    curve = fit_standard_curve(CONC, 500 + rng.normal(0, 5, CONC.size), model="4PL")
    assert curve.status is CurveStatus.FAILED
    assert curve.reason.startswith(("flat", "non-monotone"))


def test_constant_signal_is_flat() -> None:
    curve = fit_standard_curve(CONC, np.full(CONC.size, 321.0))
    assert curve.status is CurveStatus.FAILED and curve.reason.startswith("flat: the standards span only 0")


def test_non_monotone_fails() -> None:
    levels = 10000 / 4.0 ** np.arange(8)
    bell = np.array([100, 800, 3000, 9000, 9000, 3000, 800, 100], dtype=float)
    curve = fit_standard_curve(levels, bell, model="4PL")
    assert curve.status is CurveStatus.FAILED and "non-monotone" in curve.reason


def test_failed_curve_cannot_be_evaluated() -> None:
    curve = fit_standard_curve([1, 10, 100], [10, 100, 1000])
    with pytest.raises(CurveFitError, match="failed"):
        curve.back_calculate([50.0])


def test_back_calculate_outside_asymptotes_is_nan() -> None:
    rng = np.random.default_rng(3)
    curve = fit_standard_curve(CONC, signals(rng), model="4PL")
    lo, hi = sorted((curve.params["a"], curve.params["d"]))
    out = curve.back_calculate([lo - 1.0, hi + 1.0, (lo + hi) / 2])
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] > 0


def test_parameter_recovery_confidence_interval_covers_truth() -> None:
    rng = np.random.default_rng(4)
    truth = np.array([25.0, 1.05, 1500.0, 26000.0, 1.0])
    covered = 0
    for _ in range(60):
        curve = fit_standard_curve(CONC, signals(rng, cv=0.03, params=truth), model="4PL", weights="1/y2")
        lo, hi = curve.params["c"] - 1.96 * curve.se["c"], curve.params["c"] + 1.96 * curve.se["c"]
        covered += int(lo <= 1500.0 <= hi)
    assert 51 <= covered <= 60  # nominal 95%: 57 of 60 expected


def test_5pl_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(5)
    conc = np.repeat(10000 / 3.0 ** np.arange(10), 3)
    y = FivePL().mean(conc, TRUE_5PL) * np.exp(rng.normal(0, 0.01, conc.size))
    curve = fit_standard_curve(conc, y, model="5PL", weights="1/y2")
    for name, true in zip("abcdg", TRUE_5PL, strict=True):
        assert abs(curve.params[name] - true) <= 4 * curve.se[name] + 1e-9, name


def test_weight_schemes() -> None:
    rng = np.random.default_rng(6)
    y = signals(rng)
    w1 = fit_standard_curve(CONC, y, model="4PL", weights="1/y2")
    explicit = fit_standard_curve(CONC, y, model="4PL", weights=1.0 / y**2)
    scaled = fit_standard_curve(CONC, y, model="4PL", weights=1000.0 / y**2)
    assert w1.params == pytest.approx(explicit.params, rel=1e-8)
    assert w1.params == pytest.approx(scaled.params, rel=1e-6)  # scale of weights does not matter
    assert w1.se == pytest.approx(scaled.se, rel=1e-5)
    var = fit_standard_curve(CONC, y, model="4PL", weights="1/var")
    assert var.ok and var.weights == "1/var"
    unweighted = fit_standard_curve(CONC, y, model="4PL")
    assert abs(unweighted.params["a"] - 25.0) > abs(w1.params["a"] - 25.0)  # weights fix the low end


def test_1_over_var_needs_replicates() -> None:
    levels = 10000 / 4.0 ** np.arange(8)
    curve = fit_standard_curve(levels, FourPL().mean(levels, TRUE_5PL[:4]), weights="1/var")
    assert curve.status is CurveStatus.FAILED and "replicates" in curve.reason


def test_bad_inputs_raise_value_errors() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        fit_standard_curve([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=">= 0"):
        fit_standard_curve([-1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="model must be"):
        get_model("6PL")
    with pytest.raises(ValueError, match="weights must be"):
        fit_standard_curve(CONC, signals(np.random.default_rng(0)), weights="1/x")  # type: ignore[arg-type]


def test_summary_table_and_drc_names() -> None:
    rng = np.random.default_rng(7)
    curve = fit_standard_curve(CONC, signals(rng), model="5PL")
    table = curve.summary()
    assert list(table["parameter"]) == ["a", "b", "c", "d", "g"]
    assert set(curve.to_drc()) == {"b", "c", "d", "e", "f"}
    assert curve.to_drc()["e"] == curve.params["c"]


def test_nan_points_are_dropped() -> None:
    rng = np.random.default_rng(8)
    y = signals(rng)
    y[3] = np.nan
    curve = fit_standard_curve(CONC, y, model="4PL")
    assert curve.ok and curve.n == CONC.size - 1


def test_docstring_examples_run() -> None:
    import doctest

    import immunorehab.cytokines.curves as curves

    assert doctest.testmod(curves).failed == 0


def test_unidentifiable_5pl_falls_back_to_4pl_and_says_so() -> None:
    # a shallow (b = 0.6), strongly asymmetric (g = 0.5) curve: the 5PL runs off to c, g -> infinity
    rng = np.random.default_rng(322)
    y = FivePL().mean(CONC, np.array([10.79, 0.6, 1186.75, 23860.8, 0.5])) * np.exp(
        rng.normal(0, 0.03, CONC.size)
    )
    curve = fit_standard_curve(CONC, y, model="5PL")
    assert curve.ok and curve.model == "4PL"
    assert "not identifiable" in curve.note and "fitted the 4PL instead" in curve.note
    strict = fit_standard_curve(CONC, y, model="5PL", fallback_4pl=False)
    assert strict.status is CurveStatus.FAILED and "not identifiable" in strict.reason
