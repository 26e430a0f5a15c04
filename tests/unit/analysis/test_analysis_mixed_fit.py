"""The mixed-model fit itself: analytic gradient, agreement with statsmodels' MixedLM on unbalanced
cohort-like data, boundary (singular) fits that reach the true optimum, and unit invariance.

The R oracles (lme4/lmerTest on sleepstudy) are in test_analysis_mixed.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM

from immunorehab.analysis import _lmm, mixed_model
from immunorehab.errors import SingularFitWarning

MONTHS = np.array([0.0, 6.0, 12.0, 24.0])


def _cohort(seed: int, n: int = 60, slope_sd: float = 0.02, corr: float = -0.3) -> pd.DataFrame:
    """Log-cytokine-like cohort: 4 visits over 24 months, ~10% of visits missed, two covariates."""
    rng = np.random.default_rng(seed)
    sd = np.array([0.4, slope_sd])
    G = np.outer(sd, sd) * np.array([[1.0, corr], [corr, 1.0]])
    u = rng.multivariate_normal(np.zeros(2), G, n)
    sick = rng.random(n) < 0.4
    age = rng.integers(30, 80, n).astype(float)
    rows = []
    for i in range(n):
        for t in MONTHS:
            if t > 0 and rng.random() < 0.1:
                continue
            mean = 1.0 + 0.8 * sick[i] - (0.02 + 0.02 * sick[i]) * t + 0.01 * (age[i] - 55)
            y = mean + u[i, 0] + u[i, 1] * t + rng.normal(0, 0.5)
            rows.append((f"P{i:03d}", t, float(sick[i]), float(sick[i]) * t, age[i], y))
    return pd.DataFrame(rows, columns=["pid", "month", "sick", "sick_t", "age", "y"])


def _fit(df: pd.DataFrame, **kw: object) -> tuple[object, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = mixed_model(
            df, outcome="y", time="month", subject="pid", covariates=["sick", "sick_t", "age"], **kw
        )  # type: ignore[arg-type]
    return r, list(caught)


def _statsmodels(df: pd.DataFrame, method: str, reml: bool = True) -> object:
    X = np.column_stack([np.ones(len(df)), df[["month", "sick", "sick_t", "age"]].to_numpy()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MixedLM(df["y"].to_numpy(), X, groups=df["pid"], exog_re=X[:, :2]).fit(
            reml=reml, method=[method]
        )


@pytest.mark.parametrize(("q", "reml"), [(1, True), (2, True), (2, False)])
def test_analytic_gradient_matches_finite_differences(q: int, reml: bool) -> None:
    df = _cohort(3)
    X = np.column_stack([np.ones(len(df)), df[["month", "sick", "age"]].to_numpy()])
    cross = _lmm.cross_products(df["y"].to_numpy(), X, X[:, :q], pd.factorize(df["pid"])[0])
    theta = np.array([0.7, -0.2, 0.3])[: q * (q + 1) // 2]
    _, grad = _lmm.profiled(theta, cross, reml)
    for k in range(len(theta)):
        h = np.zeros_like(theta)
        h[k] = 1e-6
        fd = (_lmm.profiled(theta + h, cross, reml)[0] - _lmm.profiled(theta - h, cross, reml)[0]) / 2e-6
        assert grad[k] == pytest.approx(fd, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("reml", [True, False])
def test_matches_statsmodels_mixedlm_on_unbalanced_cohort(reml: bool) -> None:
    df = _cohort(11, slope_sd=0.02)
    r, caught = _fit(df, reml=reml)
    sm = _statsmodels(df, "lbfgs", reml=reml)
    assert not any(issubclass(w.category, SingularFitWarning) for w in caught)
    assert r.log_likelihood == pytest.approx(sm.llf, abs=1e-5)  # type: ignore[attr-defined]
    assert r.log_likelihood >= sm.llf - 1e-7  # type: ignore[attr-defined]
    np.testing.assert_allclose(r.table.estimate, sm.fe_params, rtol=1e-4, atol=1e-7)  # type: ignore[attr-defined]
    G = np.asarray(sm.cov_re)  # type: ignore[attr-defined]
    np.testing.assert_allclose(r.random_effects.variance, np.diag(G), rtol=1e-3)
    assert r.residual_sd**2 == pytest.approx(sm.scale, rel=1e-4)  # type: ignore[attr-defined]
    # standard errors are lme4's (X'V^-1 X)^-1, from a dense V built with statsmodels' estimates
    # (statsmodels' own bse_fe use the full observed information instead)
    X = np.column_stack([np.ones(len(df)), df[["month", "sick", "sick_t", "age"]].to_numpy()])
    Z = X[:, :2]
    same = (df["pid"].to_numpy()[:, None] == df["pid"].to_numpy()[None, :]).astype(float)
    V = same * (Z @ G @ Z.T) + sm.scale * np.eye(len(df))  # type: ignore[attr-defined]
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ np.linalg.solve(V, X))))
    np.testing.assert_allclose(r.table.se, se, rtol=2e-5)


def test_boundary_fit_warns_and_reaches_the_optimum() -> None:
    # no random slope at all: the REML optimum has a zero (or perfectly correlated) slope variance
    df = _cohort(5, slope_sd=0.0)
    r, caught = _fit(df)
    assert any(issubclass(w.category, SingularFitWarning) for w in caught)
    slope = r.random_effects.iloc[1]
    assert slope.variance < 1e-6 or abs(slope["corr"]) > 1 - 1e-6
    # no statsmodels optimizer finds a higher REML likelihood (the old fit stopped short here)
    for method in ("lbfgs", "bfgs", "powell"):
        assert r.log_likelihood >= _statsmodels(df, method).llf - 1e-7  # type: ignore[attr-defined]


def test_a_spurious_zero_variance_is_left() -> None:
    """The deviance is even in the last diagonal entry of L, so its gradient vanishes at zero
    whether or not zero is the minimum: a quasi-Newton run started there stays there."""
    df = _cohort(11, slope_sd=0.02)
    X = np.column_stack([np.ones(len(df)), df[["month", "sick", "sick_t", "age"]].to_numpy()])
    cross = _lmm.cross_products(df["y"].to_numpy(), X, X[:, :2], pd.factorize(df["pid"])[0])

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        return _lmm.profiled(t, cross, True)

    dev, stuck = _lmm._local(fun, np.array([1.0, 0.0, 0.0]))
    assert stuck[2] == 0.0
    diag = np.array([True, False, True])
    assert _lmm._escape_boundary(fun, dev, stuck, diag) is not None
    theta, _ = _lmm.fit_theta(cross, True)  # type: ignore[misc]
    assert theta[2] > 1e-2 and fun(theta)[0] < dev - 1e-3


def test_time_unit_does_not_change_the_inference() -> None:
    df = _cohort(11)
    months, _ = _fit(df)
    days, _ = _fit(df.assign(month=df.month * 30.4375, sick_t=df.sick_t * 30.4375))
    scale = np.array([1.0, 30.4375, 1.0, 30.4375, 1.0])
    np.testing.assert_allclose(days.table.estimate * scale, months.table.estimate, rtol=1e-6)  # type: ignore[attr-defined]
    for col in ("t_value", "df", "p_value"):
        np.testing.assert_allclose(days.table[col], months.table[col], rtol=1e-5)  # type: ignore[attr-defined]
