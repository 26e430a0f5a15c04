"""MMRM (unstructured covariance).

No published mmrm/SAS PROC MIXED example with its data could be loaded offline (the mmrm
package's ``fev_data`` ships only as an .rda inside the R package; SAS's Pothoff-Roy output was
not retrievable). The tests therefore check (1) an exact identity -- with complete data and no
covariates the unstructured GLS equals per-visit OLS ANCOVA (Zellner's seemingly-unrelated-
regressions result) and REML df are n - p -- against our ANCOVA, itself tested against R; and
(2) recovery of known parameters on simulated trials with missing-at-random dropout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunorehab.analysis import ancova, mmrm
from immunorehab.errors import AnalysisDataError

SIGMA = np.array([[1.0, 0.6, 0.4], [0.6, 1.2, 0.7], [0.4, 0.7, 1.5]])
EFFECT = np.array([0.5, 1.0, 1.5])


def _trial(rng: np.random.Generator, n: int, *, dropout: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    arm = np.repeat(["UC", "EX"], n // 2)
    base = rng.normal(10, 2, n)
    Y = (
        2
        + 0.5 * base[:, None]
        + (arm == "EX")[:, None] * EFFECT
        + rng.multivariate_normal(np.zeros(3), SIGMA, n)
    )
    if dropout:
        # monotone MAR dropout: the chance to miss later visits rises with the last observed value
        for v in (1, 2):
            p = dropout / (1 + np.exp(-(Y[:, v - 1] - np.nanmean(Y[:, v - 1]))))
            gone = (rng.random(n) < p) | np.isnan(Y[:, v - 1])
            Y[gone, v:] = np.nan
    rows = [(i, v, Y[i, v], arm[i], base[i]) for i in range(n) for v in range(3) if np.isfinite(Y[i, v])]
    long = pd.DataFrame(rows, columns=["id", "visit", "y", "arm", "base"])
    wide = pd.DataFrame({"arm": arm, "base": base, **{f"y{v}": Y[:, v] for v in range(3)}})
    return long, wide


@pytest.mark.parametrize("df_method", ["kenward-roger", "satterthwaite"])
def test_complete_data_equals_per_visit_ancova(df_method: str) -> None:
    long, wide = _trial(np.random.default_rng(3), 60)
    r = mmrm(
        long,
        outcome="y",
        subject="id",
        visit="visit",
        arm="arm",
        baseline="base",
        reference="UC",
        df_method=df_method,
    )  # type: ignore[arg-type]
    assert r.converged and r.n_subjects == 60 and r.n_obs == 180
    for v in range(3):
        a = ancova(wide, outcome=f"y{v}", baseline="base", arm="arm", reference="UC")
        row = r.table.iloc[v]
        assert row.visit == v and row.contrast == "EX vs UC"
        assert row.estimate == pytest.approx(a.table.estimate[0], abs=1e-6)
        assert row.se == pytest.approx(a.table.se[0], rel=1e-5)
        assert row.df == pytest.approx(a.df_resid, rel=1e-5)
        assert row.p_value == pytest.approx(a.table.p_value[0], rel=1e-4)


def test_lsmeans_difference_is_the_contrast() -> None:
    long, _ = _trial(np.random.default_rng(5), 80, dropout=0.5)
    r = mmrm(long, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="UC")
    ls = r.lsmeans.set_index(["visit", "arm"])["estimate"]
    for v in range(3):
        assert ls[(v, "EX")] - ls[(v, "UC")] == pytest.approx(r.table.estimate[v])


def test_missing_data_kenward_roger_inflates_se_and_lowers_df() -> None:
    long, _ = _trial(np.random.default_rng(7), 80, dropout=0.6)
    kr = mmrm(long, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="UC")
    sw = mmrm(
        long,
        outcome="y",
        subject="id",
        visit="visit",
        arm="arm",
        baseline="base",
        reference="UC",
        df_method="satterthwaite",
    )
    assert kr.n_obs < 240
    assert kr.table.estimate.to_numpy() == pytest.approx(sw.table.estimate.to_numpy())
    assert (kr.table.se >= sw.table.se - 1e-12).all()
    assert (kr.table.df < 80 - 3 + 1e-9).all()


def test_recovers_covariance_with_many_participants() -> None:
    long, _ = _trial(np.random.default_rng(11), 1200, dropout=0.4)
    r = mmrm(long, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="UC")
    assert r.covariance.to_numpy() == pytest.approx(SIGMA, abs=0.15)
    assert r.table.estimate.to_numpy() == pytest.approx(EFFECT, abs=0.2)


def test_ci_covers_the_true_effect_in_most_seeded_trials() -> None:
    rng = np.random.default_rng(2026)
    covered = []
    for _ in range(25):
        long, _ = _trial(rng, 60, dropout=0.6)
        r = mmrm(long, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="UC")
        last = r.table.iloc[2]
        covered.append(last.ci_low <= EFFECT[2] <= last.ci_high)
    assert sum(covered) >= 21  # nominal 95%: P(>= 21 of 25) > 0.96 under correct coverage


def test_log_scale_reports_ratios() -> None:
    long, _ = _trial(np.random.default_rng(9), 60)
    pos = long.assign(y=np.exp(long.y / 5), base=np.exp(long.base / 5))
    r = mmrm(
        pos, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="UC", log=True
    )
    lin = mmrm(
        pos.assign(y=np.log(pos.y), base=np.log(pos.base)),
        outcome="y",
        subject="id",
        visit="visit",
        arm="arm",
        baseline="base",
        reference="UC",
    )
    assert r.table.estimate.to_numpy() == pytest.approx(np.exp(lin.table.estimate.to_numpy()), rel=1e-6)
    assert r.log and (r.table.estimate > 0).all()


def test_three_arms_and_covariate() -> None:
    rng = np.random.default_rng(1)
    long, _ = _trial(rng, 90)
    ids = long.id.unique()
    arm3 = dict(zip(ids, np.tile(["UC", "EX", "EX+ED"], len(ids) // 3 + 1), strict=False))
    site = {i: "A" if i % 2 else "B" for i in ids}
    df = long.assign(arm=long.id.map(arm3), site=long.id.map(site))
    r = mmrm(
        df,
        outcome="y",
        subject="id",
        visit="visit",
        arm="arm",
        baseline="base",
        reference="UC",
        covariates=["site"],
    )
    assert sorted(set(r.table.contrast)) == ["EX vs UC", "EX+ED vs UC"]
    assert len(r.table) == 6 and "site[B]" in set(r.coefficients.term)


def test_bad_input_is_named() -> None:
    long, _ = _trial(np.random.default_rng(3), 20)
    dup = pd.concat([long, long.iloc[[0]]])
    with pytest.raises(AnalysisDataError, match="has two rows for visit"):
        mmrm(dup, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="UC")
    with pytest.raises(AnalysisDataError, match="reference arm 'PBO' does not occur"):
        mmrm(long, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="PBO")
    with pytest.raises(AnalysisDataError, match="df_method"):
        mmrm(
            long,
            outcome="y",
            subject="id",
            visit="visit",
            arm="arm",
            baseline="base",
            reference="UC",
            df_method="residual",
        )  # type: ignore[arg-type]
