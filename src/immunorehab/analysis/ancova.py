"""ANCOVA of the follow-up value adjusted for baseline: the primary analysis of a trial.

Model (ordinary least squares, statsmodels)::

    y_i = b0 + sum_k d_k [arm_i = k] + g * baseline_i + c' z_i + e_i,   e_i ~ N(0, s^2)

with treatment coding against the ``reference`` arm, so ``d_k`` is the adjusted difference of
arm ``k`` from the reference (Vickers & Altman, BMJ 2001). With ``log=True`` both the outcome
and the baseline are natural-log transformed and ``exp(d_k)`` is the ratio of geometric means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from immunorehab.analysis._validation import (
    design_columns,
    require_columns,
    require_numeric,
    require_positive,
    require_probability,
)
from immunorehab.analysis.results import AncovaResult
from immunorehab.errors import AnalysisDataError

__all__ = ["ancova", "arm_levels", "build_ancova_design"]

_CTX = "ancova"


def arm_levels(values: pd.Series, reference: object, *, context: str = _CTX) -> list[object]:
    """Levels of the arm column with the reference first (others in sorted order)."""
    levels = sorted(pd.unique(values.dropna()), key=str)
    match = [lvl for lvl in levels if lvl == reference] or [
        lvl for lvl in levels if str(lvl) == str(reference)
    ]
    if not match:
        raise AnalysisDataError(
            f"{context}: reference arm {reference!r} does not occur in column {values.name!r}; "
            f"arms present: {', '.join(map(str, levels))}."
        )
    if len(levels) < 2:
        raise AnalysisDataError(
            f"{context}: column {values.name!r} needs at least two arms, found {levels!r}."
        )
    ref = match[0]
    return [ref] + [lvl for lvl in levels if lvl != ref]


def build_ancova_design(
    data: pd.DataFrame,
    *,
    outcome: str,
    baseline: str,
    arm: str,
    reference: object,
    covariates: Sequence[str] = (),
    log: bool = False,
    context: str = _CTX,
) -> tuple[np.ndarray, pd.DataFrame, list[object], pd.Index]:
    """Response vector and design matrix (complete cases) for the ANCOVA model.

    Returns ``(y, X, levels, used_index)`` where ``X`` has columns ``Intercept``,
    ``arm[<level>]`` for each non-reference level, the baseline and the covariate columns.
    """
    covariates = tuple(covariates)
    require_columns(data, (outcome, baseline, arm, *covariates), context=context)
    levels = arm_levels(data[arm], reference, context=context)
    y_all = require_numeric(data, outcome, context=context)
    b_all = require_numeric(data, baseline, context=context)
    cov = design_columns(data, covariates, context=context)
    arm_dummies = pd.DataFrame(
        {f"{arm}[{lvl}]": (data[arm] == lvl).astype(float) for lvl in levels[1:]}, index=data.index
    )
    arm_dummies[data[arm].isna().to_numpy()] = np.nan
    X = pd.concat(
        [
            pd.DataFrame({"Intercept": 1.0}, index=data.index),
            arm_dummies,
            pd.Series(b_all, data.index, name=baseline),
            cov,
        ],
        axis=1,
    )
    keep = np.isfinite(y_all) & X.notna().all(axis=1).to_numpy()
    y, X = y_all[keep], X.loc[keep]
    if log:
        require_positive(y, list(X.index), outcome, context=context)
        require_positive(X[baseline].to_numpy(), list(X.index), baseline, context=context)
        y = np.log(y)
        X[baseline] = np.log(X[baseline])
    present = set(data.loc[X.index, arm])
    absent = [lvl for lvl in levels if lvl not in present]
    if absent:
        raise AnalysisDataError(f"{context}: arm(s) {absent!r} have no complete observation of {outcome!r}.")
    if len(y) <= X.shape[1]:
        raise AnalysisDataError(
            f"{context}: {len(y)} complete observation(s) for {X.shape[1]} model coefficients; need more."
        )
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise AnalysisDataError(
            f"{context}: the design is rank deficient (a covariate is constant or collinear with arm/"
            f"baseline); columns: {', '.join(X.columns)}."
        )
    return y, X, levels, X.index


def ancova(
    data: pd.DataFrame,
    *,
    outcome: str,
    baseline: str,
    arm: str,
    reference: object,
    covariates: Sequence[str] = (),
    log: bool = False,
    conf_level: float = 0.95,
) -> AncovaResult:
    """Adjusted difference (or ratio) of follow-up values between arms.

    Parameters
    ----------
    data : DataFrame
        One row per participant (wide), holding the outcome, baseline, arm and covariates.
    outcome, baseline : str
        Columns of the follow-up and baseline value of the same measure (any unit; with
        ``log=True`` both must be > 0).
    arm : str
        Column of the allocated arm; 2 or more arms.
    reference : object
        The comparator arm (e.g. usual care); every other arm is contrasted with it.
    covariates : sequence of str
        Further adjustment terms, by default the stratification factors. Numeric columns enter
        linearly, categorical ones as treatment-coded dummies.
    log : bool
        Analyse log(outcome) on log(baseline) and report geometric-mean ratios.
    conf_level : float
        Confidence level of the intervals (t distribution on the residual df).

    Returns
    -------
    AncovaResult
        ``.table`` with one row per contrast: ``contrast, estimate, se, ci_low, ci_high,
        p_value``.

    Raises
    ------
    AnalysisDataError
        Missing column, non-numeric value, unknown reference arm, non-positive value with
        ``log=True``, or too few complete observations.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["A", "A", "A", "B", "B", "B"], "pre": [1, 2, 3, 1, 2, 3],
    ...                    "post": [1.1, 2.0, 3.2, 2.0, 3.1, 4.0]})
    >>> round(float(ancova(df, outcome="post", baseline="pre", arm="arm", reference="A")
    ...       .table.estimate[0]), 3)
    0.933
    """
    level = require_probability(conf_level, "conf_level")
    covariates = tuple(covariates)
    y, X, levels, used = build_ancova_design(
        data, outcome=outcome, baseline=baseline, arm=arm, reference=reference, covariates=covariates, log=log
    )
    fit = sm.OLS(y, X.to_numpy()).fit()
    df_resid = float(fit.df_resid)
    q = float(stats.t.ppf(0.5 + level / 2, df_resid))
    coef = pd.DataFrame(
        {
            "term": list(X.columns),
            "estimate": fit.params,
            "se": fit.bse,
            "t_value": fit.tvalues,
            "df": df_resid,
            "p_value": fit.pvalues,
        }
    )
    coef["ci_low"] = coef["estimate"] - q * coef["se"]
    coef["ci_high"] = coef["estimate"] + q * coef["se"]
    arm_rows = coef.iloc[1 : len(levels)].reset_index(drop=True)
    table = pd.DataFrame(
        {
            "contrast": [f"{lvl} vs {levels[0]}" for lvl in levels[1:]],
            "estimate": arm_rows["estimate"],
            "se": arm_rows["se"],
            "ci_low": arm_rows["ci_low"],
            "ci_high": arm_rows["ci_high"],
            "p_value": arm_rows["p_value"],
        }
    )
    if log:
        for col in ("estimate", "ci_low", "ci_high"):
            table[col] = np.exp(table[col])
    means = _adjusted_means(fit, X, levels, arm, q, log)
    return AncovaResult(
        table=table,
        coefficients=coef.reset_index(drop=True),
        adjusted_means=means,
        outcome=outcome,
        baseline=baseline,
        arm=arm,
        reference=str(levels[0]),
        covariates=covariates,
        log=log,
        n=int(len(y)),
        n_excluded=int(len(data) - len(used)),
        df_resid=df_resid,
        residual_sd=float(np.sqrt(fit.scale)),
        r_squared=float(fit.rsquared),
        conf_level=level,
    )


def _adjusted_means(
    fit: sm.regression.linear_model.RegressionResultsWrapper,
    X: pd.DataFrame,
    levels: list[object],
    arm: str,
    q: float,
    log: bool,
) -> pd.DataFrame:
    """Arm means at the mean of baseline and covariates (least-squares means)."""
    center = X.mean(axis=0).to_numpy()
    rows = []
    cov = np.asarray(fit.cov_params())
    for i, lvl in enumerate(levels):
        x = center.copy()
        x[1 : len(levels)] = 0.0
        if i > 0:
            x[i] = 1.0
        est = float(x @ fit.params)
        se = float(np.sqrt(x @ cov @ x))
        rows.append(
            {"arm": str(lvl), "estimate": est, "se": se, "ci_low": est - q * se, "ci_high": est + q * se}
        )
    out = pd.DataFrame(rows)
    if log:
        for col in ("estimate", "ci_low", "ci_high"):
            out[col] = np.exp(out[col])
    return out
