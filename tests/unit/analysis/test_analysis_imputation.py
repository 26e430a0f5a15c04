"""MICE, Rubin's rules (Barnard-Rubin df) and the completers analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunorehab.analysis import ancova, ancova_mi, completers_ancova, mice_impute, rubin_pool
from immunorehab.errors import AnalysisDataError


def _trial(rng: np.random.Generator, n: int = 120, effect: float = 1.0) -> pd.DataFrame:
    arm = np.repeat(["UC", "EX"], n // 2)
    base = rng.normal(10, 2, n)
    y = 2 + 0.6 * base + effect * (arm == "EX") + rng.normal(0, 1.5, n)
    miss = rng.random(n) < 0.6 / (1 + np.exp(-(base - 11)))  # MAR on baseline
    return pd.DataFrame({"arm": arm, "base": base, "y": np.where(miss, np.nan, y), "completer": ~miss})


def test_rubin_rules_by_hand() -> None:
    q = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0]])
    u = np.array([[0.5, 2.0], [0.5, 2.0], [0.5, 2.0]])
    t = rubin_pool(q, u, df_complete=50)
    # parameter 1: qbar 2, B 1, T = 0.5 + 4/3, lambda = (4/3)/T
    T = 0.5 + 4 / 3
    lam = (4 / 3) / T
    df_old = 2 / lam**2
    df_obs = 51 / 53 * 50 * (1 - lam)
    assert t.estimate[0] == 2 and t.se[0] == pytest.approx(np.sqrt(T))
    assert t.df[0] == pytest.approx(df_old * df_obs / (df_old + df_obs))
    assert t.riv[0] == pytest.approx((4 / 3) / 0.5)
    # parameter 2: no between-imputation variance -> lambda floored at 1e-4 (as mice)
    assert t.se[1] == pytest.approx(np.sqrt(2.0)) and t.lambda_[1] == pytest.approx(1e-4)
    assert t.df[1] == pytest.approx(51 / 53 * 50 * (1 - 1e-4), rel=1e-3)


def test_observed_values_untouched_and_seed_reproducible() -> None:
    df = _trial(np.random.default_rng(1))
    a = mice_impute(df, columns=["y", "base", "arm"], rng=np.random.default_rng(5), m=3, n_iter=3)
    b = mice_impute(df, columns=["y", "base", "arm"], rng=np.random.default_rng(5), m=3, n_iter=3)
    obs = df.y.notna()
    for s, t in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(s, t)
        assert (s.loc[obs, "y"] == df.loc[obs, "y"]).all() and s.y.notna().all()
        # PMM donates observed values only
        assert set(s.loc[~obs, "y"]) <= set(df.loc[obs, "y"])
    assert not a[0].loc[~obs, "y"].equals(a[1].loc[~obs, "y"])
    assert df.y.isna().any()  # caller's data not modified


@pytest.mark.parametrize("method", ["norm", "pmm"])
def test_mi_ancova_recovers_effect_under_mar(method: str) -> None:
    rng = np.random.default_rng(2024)
    covered, estimates = 0, []
    for _ in range(20):
        r = ancova_mi(
            _trial(rng),
            outcome="y",
            baseline="base",
            arm="arm",
            reference="UC",
            rng=rng,
            m=10,
            n_iter=5,
            method=method,  # type: ignore[arg-type]
        )
        c = r.contrasts.iloc[0]
        covered += c.ci_low <= 1.0 <= c.ci_high
        estimates.append(c.estimate)
    assert covered >= 17
    # PMM borrows observed values, so where dropout concentrates (high baselines) donors are
    # scarce and the effect shrinks a little (as with R's mice); the normal model is unbiased.
    assert np.mean(estimates) == pytest.approx(1.0, abs=0.15 if method == "norm" else 0.25)
    assert list(r.contrasts.columns) == ["contrast", "estimate", "se", "ci_low", "ci_high", "p_value"]
    assert r.m == 10 and r.df_complete == pytest.approx(120 - 3)


def test_mi_with_complete_data_equals_ancova() -> None:
    df = _trial(np.random.default_rng(3)).dropna()
    mi = ancova_mi(
        df,
        outcome="y",
        baseline="base",
        arm="arm",
        reference="UC",
        rng=np.random.default_rng(0),
        m=3,
        n_iter=1,
    )
    cc = ancova(df, outcome="y", baseline="base", arm="arm", reference="UC")
    assert mi.contrasts.estimate[0] == pytest.approx(cc.table.estimate[0])
    assert mi.contrasts.se[0] == pytest.approx(cc.table.se[0])


def test_norm_method_and_log_scale() -> None:
    df = _trial(np.random.default_rng(4))
    pos = df.assign(y=np.exp(df.y / 10), base=np.exp(df.base / 10))
    r = ancova_mi(
        pos,
        outcome="y",
        baseline="base",
        arm="arm",
        reference="UC",
        rng=np.random.default_rng(1),
        m=5,
        n_iter=3,
        method="norm",
        log=True,
    )
    assert r.log and r.contrasts.estimate[0] > 1


def test_completers_analysis_is_ancova_on_completers() -> None:
    df = _trial(np.random.default_rng(6))
    pp = completers_ancova(df, completer="completer", outcome="y", baseline="base", arm="arm", reference="UC")
    ref = ancova(df[df.completer], outcome="y", baseline="base", arm="arm", reference="UC")
    assert pp.table.estimate[0] == ref.table.estimate[0] and pp.n == int(df.completer.sum())


def test_errors_are_clear() -> None:
    df = _trial(np.random.default_rng(6))
    with pytest.raises(AnalysisDataError, match="categorical column 'arm' has 1 missing"):
        mice_impute(
            df.assign(arm=df.arm.where(df.index != 0)),
            columns=["y", "arm"],
            rng=np.random.default_rng(0),
            m=2,
        )
    with pytest.raises(AnalysisDataError, match="m must be at least 2"):
        mice_impute(df, columns=["y"], rng=np.random.default_rng(0), m=1)
    with pytest.raises(AnalysisDataError, match="must be True/False"):
        completers_ancova(
            df.assign(completer="yes"),
            completer="completer",
            outcome="y",
            baseline="base",
            arm="arm",
            reference="UC",
        )
