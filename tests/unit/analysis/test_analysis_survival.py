"""Kaplan-Meier, log-rank and Cox against R's survival package output (aml, lung)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import R_REFERENCE, agrees

from immunorehab.analysis import cox, kaplan_meier, log_rank, survival_at
from immunorehab.errors import AnalysisDataError


def _compare(ours: pd.DataFrame, truth_file: str) -> None:
    truth = pd.read_csv(R_REFERENCE / truth_file, dtype=str, keep_default_na=False)
    assert len(ours) == len(truth)
    for (_, o), (_, t) in zip(ours.iterrows(), truth.iterrows(), strict=True):
        assert str(o["group"]) == t["group"]
        for col in ("time", "n_risk", "n_event", "survival", "std_err", "ci_low", "ci_high"):
            assert agrees(float(o[col]), t[col]), (t["group"], t["time"], col, o[col], t[col])


def test_aml_survfit_summary_matches_r(aml: pd.DataFrame) -> None:
    # survival tests/doaml.Rout.save: summary(survfit(Surv(time, status) ~ x, aml))
    k = kaplan_meier(aml, time="time", event="status", group="x")
    _compare(k.table, "survfit_aml.csv")
    s = k.summary.set_index("group")
    assert s.loc["Maintained", ["n", "events", "median", "median_ci_low"]].tolist() == [11, 7, 31, 18]
    assert math.isnan(s.loc["Maintained", "median_ci_high"])
    assert s.loc["Nonmaintained", ["n", "events", "median", "median_ci_low"]].tolist() == [12, 11, 23, 8]
    assert math.isnan(s.loc["Nonmaintained", "median_ci_high"])


def test_lung_medians_match_r(lung: pd.DataFrame) -> None:
    # survfit(Surv(time, status) ~ 1, lung): 228 165 310 285 363; ~ sex: 270 (212, 310), 426 (348, 550)
    one = kaplan_meier(lung, time="time", event="status").summary.iloc[0]
    assert one[["n", "events", "median", "median_ci_low", "median_ci_high"]].tolist() == [
        228,
        165,
        310,
        285,
        363,
    ]
    by_sex = kaplan_meier(lung, time="time", event="status", group="sex").summary.set_index("group")
    assert by_sex.loc["1", ["n", "events", "median", "median_ci_low", "median_ci_high"]].tolist() == [
        138,
        112,
        270,
        212,
        310,
    ]
    assert by_sex.loc["2", ["n", "events", "median", "median_ci_low", "median_ci_high"]].tolist() == [
        90,
        53,
        426,
        348,
        550,
    ]


def test_lung_summary_at_times_matches_r(lung: pd.DataFrame) -> None:
    # Lalanne & Mesbah ch. 7 transcript: summary(s, times = seq(1, 200, by = 20)) and by sex
    k = kaplan_meier(lung, time="time", event="status")
    _compare(survival_at(k, lung, range(1, 200, 20)), "survfit_lung_times.csv")
    k2 = kaplan_meier(lung, time="time", event="status", group="sex")
    _compare(survival_at(k2, lung, [5, 10, 15, 20]), "survfit_lung_sex_times.csv")
    # summary(m0, times = 365.25): 365 65 121 0.409 0.0358 0.345 0.486
    row = survival_at(k, lung, [365.25]).iloc[0]
    assert (row.n_risk, row.n_event) == (65, 121)
    for col, val in [("survival", "0.409"), ("std_err", "0.0358"), ("ci_low", "0.345"), ("ci_high", "0.486")]:
        assert agrees(row[col], val)
    # summary(s, times = 300)$surv
    assert survival_at(k, lung, [300]).survival[0] == pytest.approx(0.5306081, abs=5e-8)


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
def test_conf_types_bracket_the_curve(aml: pd.DataFrame, conf_type: str) -> None:
    k = kaplan_meier(aml, time="time", event="status", group="x", conf_type=conf_type)  # type: ignore[arg-type]
    ok = k.table.dropna(subset=["ci_low", "ci_high"])
    assert (ok.ci_low <= ok.survival + 1e-12).all() and (ok.survival <= ok.ci_high + 1e-12).all()
    assert ok.ci_low.ge(0).all() and ok.ci_high.le(1).all()


def test_plain_and_log_log_formulas(aml: pd.DataFrame) -> None:
    plain = kaplan_meier(aml, time="time", event="status", group="x", conf_type="plain").table.iloc[3]
    z = 1.959963984540054
    assert plain.ci_low == pytest.approx(plain.survival - z * plain.std_err)
    loglog = kaplan_meier(aml, time="time", event="status", group="x", conf_type="log-log").table.iloc[3]
    sigma = loglog.std_err / loglog.survival
    w = z * sigma / abs(math.log(loglog.survival))
    assert loglog.ci_low == pytest.approx(math.exp(-math.exp(math.log(-math.log(loglog.survival)) + w)))


def test_aml_logrank_matches_survdiff(aml: pd.DataFrame) -> None:
    # doaml.Rout.save: Chisq= 3.4 on 1 df, p= 0.0653; O 7/11, E 10.69/7.31,
    # (O-E)^2/E 1.27/1.86, (O-E)^2/V 3.40
    r = log_rank(aml, time="time", event="status", group="x")
    assert agrees(r.chisq, "3.4") and agrees(r.p_value, "0.0653") and r.df == 1
    t = r.table.set_index("group")
    assert t.observed.tolist() == [7, 11] and t.n.tolist() == [11, 12]
    assert agrees(t.expected.iloc[0], "10.69") and agrees(t.expected.iloc[1], "7.31")
    assert agrees(t.oe2_e.iloc[0], "1.27") and agrees(t.oe2_e.iloc[1], "1.86")
    assert agrees(t.oe2_v.iloc[0], "3.40") and agrees(t.oe2_v.iloc[1], "3.40")


def test_lung_logrank_and_peto_match_survdiff(lung: pd.DataFrame) -> None:
    # Packt/Lalanne: survdiff(Surv(time, status) ~ sex, lung):
    # E 91.5817 / 73.4183, chisq 10.3267, p 0.00131116
    r = log_rank(lung, time="time", event="status", group="sex")
    assert agrees(r.chisq, "10.3267") and agrees(r.p_value, "0.00131116")
    assert agrees(r.table.expected[0], "91.5817") and agrees(r.table.expected[1], "73.4183")
    assert agrees(r.table.oe2_e[0], "4.55228") and agrees(r.table.oe2_e[1], "5.67850")
    # rho = 1: O 70.4 / 28.7, E 55.6 / 43.5, (O-E)^2/E 3.95 / 5.04, chisq 12.7, p 0.000363
    p = log_rank(lung, time="time", event="status", group="sex", rho=1)
    assert agrees(p.table.observed[0], "70.4") and agrees(p.table.observed[1], "28.7")
    assert agrees(p.table.expected[0], "55.6") and agrees(p.table.expected[1], "43.5")
    assert agrees(p.table.oe2_e[0], "3.95") and agrees(p.table.oe2_e[1], "5.04")
    assert agrees(p.chisq, "12.7") and agrees(p.p_value, "0.000363")


def test_aml_cox_efron_matches_coxph(aml: pd.DataFrame) -> None:
    # doaml.Rout.save: coxph(Surv(time, status) ~ x, aml, method='efron')
    r = cox(aml, time="time", event="status", covariates=["x"])
    row = r.table.iloc[0]
    assert row.term == "x[Nonmaintained]"
    assert agrees(row.coef, "0.916") and agrees(row.hazard_ratio, "2.5") and agrees(row.se, "0.512")
    assert agrees(row.z, "1.79") and agrees(row.p_value, "0.074")
    assert agrees(r.lr_chisq, "3.38") and agrees(r.lr_p_value, "0.0658") and (r.n, r.n_events) == (23, 18)
    assert r.ties == "efron"


def test_lung_cox_sex_matches_coxph(lung: pd.DataFrame) -> None:
    # Lalanne & Mesbah: summary(coxph(st ~ sex, lung))
    r = cox(lung, time="time", event="status", covariates=["sex"])
    row = r.table.iloc[0]
    assert agrees(row.coef, "-0.5310") and agrees(row.hazard_ratio, "0.5880") and agrees(row.se, "0.1672")
    assert agrees(row.z, "-3.176") and agrees(row.p_value, "0.00149")
    assert agrees(row.hr_ci_low, "0.4237") and agrees(row.hr_ci_high, "0.816")
    assert agrees(r.lr_chisq, "10.63") and agrees(r.lr_p_value, "0.001111")
    assert agrees(r.wald_chisq, "10.09") and agrees(r.wald_p_value, "0.001491")
    assert agrees(r.concordance, "0.579")


def test_lung_cox_age_sex_matches_coxph(lung: pd.DataFrame) -> None:
    # summary(coxph(Surv(time, status) ~ sex + age, lung))
    r = cox(lung, time="time", event="status", covariates=["age", "sex"])
    t = r.table.set_index("term")
    assert agrees(t.loc["sex", "coef"], "-0.513219") and agrees(t.loc["sex", "hazard_ratio"], "0.598566")
    assert agrees(t.loc["sex", "se"], "0.167458") and agrees(t.loc["sex", "z"], "-3.065")
    assert agrees(t.loc["sex", "p_value"], "0.00218")
    assert agrees(t.loc["age", "coef"], "0.017045") and agrees(t.loc["age", "hazard_ratio"], "1.017191")
    assert agrees(t.loc["age", "se"], "0.009223") and agrees(t.loc["age", "z"], "1.848")
    assert agrees(t.loc["age", "p_value"], "0.06459")
    assert agrees(t.loc["sex", "hr_ci_low"], "0.4311") and agrees(t.loc["sex", "hr_ci_high"], "0.8311")
    assert agrees(t.loc["age", "hr_ci_low"], "0.9990") and agrees(t.loc["age", "hr_ci_high"], "1.0357")
    assert agrees(r.lr_chisq, "14.12") and r.lr_df == 2 and agrees(r.lr_p_value, "9e-04")
    assert agrees(r.wald_chisq, "13.47") and agrees(r.wald_p_value, "0.001")
    assert agrees(r.concordance, "0.603")
    assert (r.n, r.n_events) == (228, 165)


def test_event_column_must_be_binary(aml: pd.DataFrame) -> None:
    with pytest.raises(AnalysisDataError, match="must be 0 \\(censored\\) or 1 \\(event\\)"):
        kaplan_meier(aml.assign(status=aml.status + 1), time="time", event="status")
    with pytest.raises(AnalysisDataError, match="at least one covariate"):
        cox(aml, time="time", event="status", covariates=[])
    with pytest.raises(AnalysisDataError, match="at least two groups"):
        log_rank(aml.assign(x="a"), time="time", event="status", group="x")


def test_missing_rows_are_dropped(lung: pd.DataFrame) -> None:
    r = cox(lung, time="time", event="status", covariates=["ph.ecog"])
    assert r.n == 227  # one missing ph.ecog, as R's na.omit
    assert np.isfinite(r.table.coef).all()
