"""mixed_model against lme4 (sleepstudy) and lmerTest's Satterthwaite df."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import agrees

from immunorehab.analysis import mixed_model
from immunorehab.errors import AnalysisDataError, SingularFitWarning


def test_sleepstudy_reml_matches_lme4_and_lmertest(sleepstudy: pd.DataFrame) -> None:
    # lmer(Reaction ~ Days + (Days | Subject), sleepstudy), REML; lmerTest summary
    r = mixed_model(sleepstudy, outcome="Reaction", time="Days", subject="Subject")
    assert r.reml_criterion is not None and agrees(r.reml_criterion, "1743.6")
    fe = r.table.set_index("term")
    assert agrees(fe.loc["(Intercept)", "estimate"], "251.405") and agrees(
        fe.loc["(Intercept)", "se"], "6.825"
    )
    assert agrees(fe.loc["Days", "estimate"], "10.467") and agrees(fe.loc["Days", "se"], "1.546")
    assert agrees(fe.loc["(Intercept)", "t_value"], "36.838") and agrees(fe.loc["Days", "t_value"], "6.771")
    assert agrees(fe.loc["(Intercept)", "df"], "17.000") and agrees(fe.loc["Days", "df"], "17.000")
    assert agrees(fe.loc["Days", "p_value"], "3.26e-06")
    # lme4 tests/lmer-1.R: fixef to 1e-13 (we reach the same optimum to ~1e-8)
    assert fe.loc["(Intercept)", "estimate"] == pytest.approx(251.405104848485, rel=1e-9)
    assert fe.loc["Days", "estimate"] == pytest.approx(10.467285959595, rel=1e-8)
    re = r.random_effects.set_index("term")
    # lme4 versions print 24.741 / 612.10 (lme4 docs, Barr slides) or 24.740 / 612.09 (lmerTest
    # output): the optimum sits on the rounding boundary, so either printed value is accepted.
    sd0 = re.loc["(Intercept)", "sd"]
    assert agrees(sd0, "24.741") or agrees(sd0, "24.740")
    assert agrees(re.loc["Days", "sd"], "5.922")
    assert agrees(re.loc["(Intercept)", "variance"], "612.09") or agrees(
        re.loc["(Intercept)", "variance"], "612.10"
    )
    assert agrees(re.loc["Days", "variance"], "35.07")
    assert agrees(re.loc["Days", "corr"], "0.066") and agrees(re.loc["Days", "corr"], "0.07")
    assert agrees(r.residual_sd, "25.592") and agrees(r.residual_sd**2, "654.94")
    assert r.n_obs == 180 and r.n_groups == 18


def test_sleepstudy_ml_matches_lme4(sleepstudy: pd.DataFrame) -> None:
    # anova(fm1ML...) / lmer-1.Rout.save: logLik -875.97, AIC 1763.9, BIC 1783.1, deviance 1751.9;
    # SDs 23.78, 5.72, corr 0.08, residual 25.59
    r = mixed_model(sleepstudy, outcome="Reaction", time="Days", subject="Subject", reml=False)
    assert r.reml_criterion is None
    assert agrees(r.log_likelihood, "-875.97") and agrees(-2 * r.log_likelihood, "1751.9")
    assert agrees(r.aic, "1763.9") and agrees(r.bic, "1783.1")
    re = r.random_effects.set_index("term")
    assert agrees(re.loc["(Intercept)", "sd"], "23.78") and agrees(re.loc["Days", "sd"], "5.72")
    assert agrees(re.loc["Days", "corr"], "0.08") and agrees(r.residual_sd, "25.59")
    fe = r.table.set_index("term")
    assert agrees(fe.loc["(Intercept)", "estimate"], "251.4") and agrees(fe.loc["Days", "estimate"], "10.5")


def test_confidence_intervals_use_satterthwaite_t(sleepstudy: pd.DataFrame) -> None:
    from scipy import stats

    r = mixed_model(sleepstudy, outcome="Reaction", time="Days", subject="Subject", conf_level=0.9)
    row = r.table.iloc[1]
    q = stats.t.ppf(0.95, row["df"])
    assert row["ci_low"] == pytest.approx(row["estimate"] - q * row["se"])


def test_random_intercept_matches_lmertest(sleepstudy: pd.DataFrame) -> None:
    # lmer(Reaction ~ Days + (1 | Subject), sleepstudy) with lmerTest
    r = mixed_model(sleepstudy, outcome="Reaction", time="Days", subject="Subject", random_slope=False)
    assert list(r.random_effects.term) == ["(Intercept)"]
    assert r.reml_criterion is not None and agrees(r.reml_criterion, "1786.5")
    assert agrees(r.random_effects.sd[0], "37.12") and agrees(r.random_effects.variance[0], "1378.2")
    assert agrees(r.residual_sd, "30.99") and agrees(r.residual_sd**2, "960.5")
    fe = r.table.set_index("term")
    assert agrees(fe.loc["(Intercept)", "estimate"], "251.4051") and agrees(
        fe.loc["(Intercept)", "se"], "9.7467"
    )
    assert agrees(fe.loc["(Intercept)", "df"], "22.8102") and agrees(
        fe.loc["(Intercept)", "t_value"], "25.79"
    )
    assert agrees(fe.loc["Days", "estimate"], "10.4673") and agrees(fe.loc["Days", "se"], "0.8042")
    assert agrees(fe.loc["Days", "df"], "161.0000") and agrees(fe.loc["Days", "t_value"], "13.02")


def test_covariate_enters_fixed_effects(sleepstudy: pd.DataFrame) -> None:
    df = sleepstudy.assign(group=np.where(sleepstudy.Subject.astype(int) % 2 == 0, "even", "odd"))
    r = mixed_model(df, outcome="Reaction", time="Days", subject="Subject", covariates=["group"])
    assert list(r.table.term) == ["(Intercept)", "Days", "group[odd]"]


def test_zero_between_subject_variance_warns_singular() -> None:
    rng = np.random.default_rng(1)
    subj = np.repeat(np.arange(10), 5)
    t = np.tile(np.arange(5.0), 10)
    y = 5 + 0.5 * t + rng.normal(0, 1, len(t))  # no subject effect at all
    with pytest.warns(SingularFitWarning, match="boundary"):
        r = mixed_model(
            pd.DataFrame({"y": y, "t": t, "s": subj}), outcome="y", time="t", subject="s", random_slope=False
        )
    assert r.random_effects.variance[0] < 1e-6


def test_too_few_subjects() -> None:
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "t": [0, 1, 0, 1], "s": [1, 1, 2, 2]})
    with pytest.raises(AnalysisDataError, match="at least 3 subjects"):
        mixed_model(df, outcome="y", time="t", subject="s")
