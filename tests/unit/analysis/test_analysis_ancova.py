"""ANCOVA against R's lm(Postwt ~ Prewt + Treat, data = anorexia) (MASS)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import agrees

from immunorehab.analysis import ancova
from immunorehab.errors import AnalysisDataError


def test_anorexia_matches_r_lm_with_control_reference(anorexia: pd.DataFrame) -> None:
    # R (commres.net ANCOVA page): Treat releveled to Cont; summary(lm(Postwt ~ Prewt + Treat))
    r = ancova(anorexia, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont")
    t = r.table
    assert list(t.columns) == ["contrast", "estimate", "se", "ci_low", "ci_high", "p_value"]
    assert list(t.contrast) == ["CBT vs Cont", "FT vs Cont"]
    assert agrees(t.estimate[0], "4.0971") and agrees(t.se[0], "1.8935") and agrees(t.p_value[0], "0.033999")
    assert agrees(t.estimate[1], "8.6601") and agrees(t.se[1], "2.1931") and agrees(t.p_value[1], "0.000189")
    coef = r.coefficients.set_index("term")
    assert agrees(coef.loc["Intercept", "estimate"], "45.6740") and agrees(
        coef.loc["Intercept", "se"], "13.2167"
    )
    assert agrees(coef.loc["Prewt", "estimate"], "0.4345") and agrees(coef.loc["Prewt", "se"], "0.1612")
    assert agrees(coef.loc["Prewt", "p_value"], "0.008850")
    assert agrees(coef.loc["Prewt", "t_value"], "2.695")
    assert agrees(r.residual_sd, "6.978") and r.df_resid == 68
    assert agrees(r.r_squared, "0.2777")
    assert r.n == 72 and r.n_excluded == 0


def test_confidence_interval_is_t_based(anorexia: pd.DataFrame) -> None:
    r = ancova(anorexia, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont", conf_level=0.9)
    from scipy import stats

    q = stats.t.ppf(0.95, 68)
    assert r.table.ci_low[0] == pytest.approx(r.table.estimate[0] - q * r.table.se[0])
    assert r.table.ci_high[1] == pytest.approx(r.table.estimate[1] + q * r.table.se[1])


def test_two_arm_and_reference_choice(anorexia: pd.DataFrame) -> None:
    two = anorexia[anorexia.Treat != "FT"]
    a = ancova(two, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont")
    b = ancova(two, outcome="Postwt", baseline="Prewt", arm="Treat", reference="CBT")
    assert len(a.table) == 1 and a.table.contrast[0] == "CBT vs Cont"
    assert b.table.estimate[0] == pytest.approx(-a.table.estimate[0])
    assert b.table.p_value[0] == pytest.approx(a.table.p_value[0])


def test_log_gives_geometric_mean_ratio(anorexia: pd.DataFrame) -> None:
    r = ancova(anorexia, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont", log=True)
    lin = anorexia.assign(Postwt=np.log(anorexia.Postwt), Prewt=np.log(anorexia.Prewt))
    ref = ancova(lin, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont")
    assert r.table.estimate.to_numpy() == pytest.approx(np.exp(ref.table.estimate.to_numpy()))
    assert r.table.ci_low.to_numpy() == pytest.approx(np.exp(ref.table.ci_low.to_numpy()))
    assert r.table.se.to_numpy() == pytest.approx(ref.table.se.to_numpy())
    assert (r.table.ci_low < r.table.estimate).all() and (r.table.estimate < r.table.ci_high).all()
    assert r.adjusted_means.estimate.gt(0).all()


def test_categorical_covariate_and_missing_rows(anorexia: pd.DataFrame) -> None:
    df = anorexia.copy()
    df["site"] = np.where(np.arange(len(df)) % 2 == 0, "A", "B")
    df.loc[[0, 5], "Postwt"] = np.nan
    r = ancova(df, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont", covariates=["site"])
    assert "site[B]" in set(r.coefficients.term)
    assert r.n == 70 and r.n_excluded == 2 and r.df_resid == 70 - 5


def test_adjusted_means_difference_equals_contrast(anorexia: pd.DataFrame) -> None:
    r = ancova(anorexia, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont")
    means = r.adjusted_means.set_index("arm")["estimate"]
    assert means["FT"] - means["Cont"] == pytest.approx(r.table.estimate[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "Weight"}, "column(s) 'Weight' not found"),
        ({"reference": "Placebo"}, "reference arm 'Placebo' does not occur"),
    ],
)
def test_bad_input_names_the_problem(anorexia: pd.DataFrame, kwargs: dict[str, str], message: str) -> None:
    args = {"outcome": "Postwt", "baseline": "Prewt", "arm": "Treat", "reference": "Cont"} | kwargs
    with pytest.raises(AnalysisDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ancova(anorexia, **args)


def test_non_numeric_and_non_positive_values_are_rejected(anorexia: pd.DataFrame) -> None:
    df = anorexia.astype({"Postwt": object})
    df.loc[3, "Postwt"] = "n/a"
    with pytest.raises(AnalysisDataError, match="row 3 holds 'n/a'"):
        ancova(df, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont")
    neg = anorexia.copy()
    neg.loc[4, "Prewt"] = 0.0
    with pytest.raises(AnalysisDataError, match="log=True needs 'Prewt' > 0"):
        ancova(neg, outcome="Postwt", baseline="Prewt", arm="Treat", reference="Cont", log=True)


def test_too_few_observations() -> None:
    df = pd.DataFrame({"arm": ["A", "B", "A"], "pre": [1.0, 2.0, 3.0], "post": [1.0, 2.0, 2.5]})
    with pytest.raises(AnalysisDataError, match="complete observation"):
        ancova(df, outcome="post", baseline="pre", arm="arm", reference="A")
