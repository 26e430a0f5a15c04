"""Standardised mean differences: Cohen's d and Hedges' g with confidence intervals.

``d = (mean_1 - mean_2) / s_pooled`` with the pooled SD on ``n1 + n2 - 2`` df. Hedges' g
multiplies d (and its limits) by the exact small-sample correction
``J = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2))``. The default interval inverts the noncentral
t distribution of the two-sample t statistic (as R's effectsize package); ``"normal"`` uses the
large-sample SE ``sqrt(1/n1 + 1/n2 + d^2 / (2 (n1 + n2)))`` (Hedges & Olkin 1985).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from immunorehab.analysis._validation import require_probability
from immunorehab.analysis.results import EffectSizeResult
from immunorehab.errors import AnalysisDataError

__all__ = ["cohens_d", "hedges_g", "standardised_difference"]


def _clean(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    out: np.ndarray = arr[np.isfinite(arr)]
    if out.size < 2:
        raise AnalysisDataError(f"{name} needs at least 2 non-missing values; got {out.size}.")
    return out


def _ncp_interval(t: float, df: float, level: float) -> tuple[float, float]:
    """Noncentrality parameters whose noncentral t puts ``t`` at the (1 +- level)/2 quantiles."""
    alpha = (1 - level) / 2

    def root(target: float) -> float:
        def f(ncp: float) -> float:
            cdf = float(stats.nct.cdf(t, df, ncp))
            if not np.isfinite(cdf):  # far tail: scipy returns NaN where the cdf is ~0 or ~1
                cdf = 0.0 if ncp > t else 1.0
            return cdf - target

        lo, hi = t - 10.0, t + 10.0
        while f(lo) < 0:
            lo -= 10.0
        while f(hi) > 0:
            hi += 10.0
        return float(optimize.brentq(f, lo, hi, xtol=1e-12))

    return root(1 - alpha), root(alpha)


def _d_table(x1: np.ndarray, x2: np.ndarray, level: float, ci_method: str, hedges: bool) -> pd.DataFrame:
    n1, n2 = len(x1), len(x2)
    df = n1 + n2 - 2
    sp = np.sqrt(((n1 - 1) * x1.var(ddof=1) + (n2 - 1) * x2.var(ddof=1)) / df)
    if sp == 0:
        raise AnalysisDataError("effect size undefined: both groups have zero variance.")
    diff = x1.mean() - x2.mean()
    d = diff / sp
    scale = np.sqrt(1 / n1 + 1 / n2)
    if ci_method == "noncentral-t":
        lo_ncp, hi_ncp = _ncp_interval(d / scale, df, level)
        lo, hi = lo_ncp * scale, hi_ncp * scale
    elif ci_method == "normal":
        se = np.sqrt(1 / n1 + 1 / n2 + d**2 / (2 * (n1 + n2)))
        z = stats.norm.ppf(0.5 + level / 2)
        lo, hi = d - z * se, d + z * se
    else:
        raise AnalysisDataError(f"ci_method must be 'noncentral-t' or 'normal'; got {ci_method!r}.")
    j = (
        float(np.exp(special.gammaln(df / 2) - np.log(np.sqrt(df / 2)) - special.gammaln((df - 1) / 2)))
        if hedges
        else 1.0
    )
    return pd.DataFrame(
        {
            "estimate": [d * j],
            "ci_low": [lo * j],
            "ci_high": [hi * j],
            "n1": [n1],
            "n2": [n2],
            "mean_difference": [diff],
            "sd_pooled": [sp],
        }
    )


def cohens_d(
    x1: object,
    x2: object,
    *,
    conf_level: float = 0.95,
    ci_method: Literal["noncentral-t", "normal"] = "noncentral-t",
) -> EffectSizeResult:
    """Cohen's d of group 1 minus group 2 (pooled SD) with confidence interval.

    Examples
    --------
    >>> round(float(cohens_d([1, 2, 3, 4], [2, 3, 4, 5]).table.estimate[0]), 4)
    -0.7746
    """
    level = require_probability(conf_level, "conf_level")
    table = _d_table(_clean(x1, "x1"), _clean(x2, "x2"), level, ci_method, hedges=False)
    return EffectSizeResult(table=table, measure="cohens_d", ci_method=ci_method, conf_level=level)


def hedges_g(
    x1: object,
    x2: object,
    *,
    conf_level: float = 0.95,
    ci_method: Literal["noncentral-t", "normal"] = "noncentral-t",
) -> EffectSizeResult:
    """Hedges' g (bias-corrected d) of group 1 minus group 2 with confidence interval."""
    level = require_probability(conf_level, "conf_level")
    table = _d_table(_clean(x1, "x1"), _clean(x2, "x2"), level, ci_method, hedges=True)
    return EffectSizeResult(table=table, measure="hedges_g", ci_method=ci_method, conf_level=level)


def standardised_difference(table: pd.DataFrame, sd: float) -> pd.DataFrame:
    """Divide an estimate table's ``estimate``/``ci_low``/``ci_high`` by a reference SD.

    Used to express adjusted (ANCOVA/MMRM) differences in SD units, e.g. dividing by the
    pooled baseline SD of the marker. The input must be on the difference scale (not ratios).
    """
    if not np.isfinite(sd) or sd <= 0:
        raise AnalysisDataError(f"the reference SD must be a positive number; got {sd!r}.")
    out = table.copy()
    for col in ("estimate", "ci_low", "ci_high", "se"):
        if col in out.columns:
            out[col] = out[col] / sd
    return out
