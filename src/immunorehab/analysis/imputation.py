"""Multiple imputation by chained equations (MICE) and Rubin's rules for the ITT analysis.

Each incomplete numeric variable is imputed in turn from all other variables by a Bayesian
linear regression (van Buuren, *Flexible Imputation of Missing Data*, algorithm 3.1): draw
``sigma*^2 = RSS / chi2(n_obs - p)`` and ``beta* ~ N(beta_hat, sigma*^2 (X'X)^-1)``, then either
predictive mean matching (``"pmm"``, default: donate the observed value of one of the
``donors`` closest predicted means, type-1 matching as R's mice) or the normal model
(``"norm"``). Categorical predictors (e.g. the arm, so imputation respects randomisation) enter
as dummies. The cycle is repeated ``n_iter`` times per imputed data set; ``m`` data sets are
produced from one seeded :class:`numpy.random.Generator`.

Estimates are pooled with Rubin's rules; the degrees of freedom are the Barnard-Rubin (1999)
small-sample ones as in R's ``mice::pool``::

    T = U + (1 + 1/m) B,  lambda = (1 + 1/m) B / T,
    df_old = (m - 1) / lambda^2,  df_obs = (df_com + 1) / (df_com + 3) df_com (1 - lambda),
    df = df_old df_obs / (df_old + df_obs)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from immunorehab.analysis._validation import (
    design_columns,
    require_columns,
    require_numeric,
    require_probability,
)
from immunorehab.analysis.ancova import ancova, build_ancova_design
from immunorehab.analysis.results import AncovaResult, PooledResult
from immunorehab.errors import AnalysisDataError

__all__ = ["ancova_mi", "completers_ancova", "mice_impute", "rubin_pool"]

ImputeMethod = Literal["pmm", "norm"]
ProgressCallback = Callable[[str, int, int], None]


def _draw_regression(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """beta_hat, a posterior draw beta*, and sigma* for y ~ X (tiny ridge for stability)."""
    p = X.shape[1]
    xtx = X.T @ X + 1e-5 * np.diag(np.maximum(np.diag(X.T @ X), 1e-8))
    xtx_inv = np.linalg.inv(xtx)
    beta = xtx_inv @ X.T @ y
    df = max(len(y) - p, 1)
    rss = float(np.sum((y - X @ beta) ** 2))
    sigma = np.sqrt(rss / rng.chisquare(df))
    chol = np.linalg.cholesky((xtx_inv + xtx_inv.T) / 2)
    return beta, beta + sigma * chol @ rng.standard_normal(p), float(sigma)


def _impute_column(
    X: np.ndarray,
    y: np.ndarray,
    miss: np.ndarray,
    method: ImputeMethod,
    donors: int,
    rng: np.random.Generator,
) -> np.ndarray:
    obs = ~miss
    beta, beta_star, sigma = _draw_regression(X[obs], y[obs], rng)
    pred_mis = X[miss] @ beta_star
    if method == "norm":
        drawn: np.ndarray = pred_mis + sigma * rng.standard_normal(miss.sum())
        return drawn
    pred_obs = X[obs] @ beta
    y_obs = y[obs]
    k = min(donors, obs.sum())
    dist = np.abs(pred_obs[None, :] - pred_mis[:, None])
    nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
    pick = nearest[np.arange(len(pred_mis)), rng.integers(0, k, size=len(pred_mis))]
    donated: np.ndarray = y_obs[pick]
    return donated


def mice_impute(
    data: pd.DataFrame,
    *,
    columns: Sequence[str],
    rng: np.random.Generator,
    m: int = 20,
    n_iter: int = 10,
    method: ImputeMethod = "pmm",
    donors: int = 5,
    on_progress: ProgressCallback | None = None,
) -> list[pd.DataFrame]:
    """``m`` completed copies of ``data`` with the missing numeric values of ``columns`` imputed.

    Parameters
    ----------
    data : DataFrame
        One row per participant.
    columns : sequence of str
        Variables of the imputation model. Numeric ones with missing values are imputed; the
        others (categorical allowed, e.g. the arm) must be complete and serve as predictors.
    rng : numpy.random.Generator
        Randomness for the draws (seed it for reproducible imputations).
    m, n_iter : int
        Number of imputed data sets and of chained-equation cycles per set.
    method : {"pmm", "norm"}
        Predictive mean matching or the Bayesian normal model.
    donors : int
        Donor pool size for PMM (mice's default 5).
    on_progress : callable, optional
        ``on_progress(task, done, total)`` after each imputed data set.
    """
    if m < 2:
        raise AnalysisDataError(f"m must be at least 2 imputations; got {m!r}.")
    if method not in ("pmm", "norm"):
        raise AnalysisDataError(f"method must be 'pmm' or 'norm'; got {method!r}.")
    require_columns(data, columns, context="mice_impute")
    numeric = [
        c
        for c in columns
        if pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])
    ]
    other = [c for c in columns if c not in numeric]
    for c in other:
        if data[c].isna().any():
            raise AnalysisDataError(
                f"mice_impute: only numeric columns can be imputed; categorical column {c!r} has "
                f"{int(data[c].isna().sum())} missing value(s)."
            )
    values = np.column_stack([require_numeric(data, c, context="mice_impute") for c in numeric])
    fixed = (
        design_columns(data, other, context="mice_impute").to_numpy(float)
        if other
        else np.zeros((len(data), 0))
    )
    miss = np.isnan(values)
    targets = [j for j in range(len(numeric)) if miss[:, j].any()]
    for j in targets:
        if (~miss[:, j]).sum() < 3:
            raise AnalysisDataError(f"mice_impute: column {numeric[j]!r} has fewer than 3 observed values.")
    out = []
    for i in range(m):
        cur = values.copy()
        for j in targets:
            obs = cur[~miss[:, j], j]
            cur[miss[:, j], j] = rng.choice(obs, size=miss[:, j].sum())
        for _ in range(n_iter):
            for j in targets:
                X = np.column_stack([np.ones(len(cur)), np.delete(cur, j, axis=1), fixed])
                cur[miss[:, j], j] = _impute_column(X, cur[:, j], miss[:, j], method, donors, rng)
        done = data.copy()
        for j, c in enumerate(numeric):
            done[c] = cur[:, j]
        out.append(done)
        if on_progress is not None:
            on_progress("multiple imputation", i + 1, m)
    return out


def rubin_pool(
    estimates: np.ndarray, variances: np.ndarray, *, df_complete: float, conf_level: float = 0.95
) -> pd.DataFrame:
    """Pool ``m`` x ``k`` estimates and their variances by Rubin's rules (Barnard-Rubin df).

    Returns one row per parameter with ``estimate, se, df, ci_low, ci_high, p_value, riv,
    lambda_, fmi, within, between``.
    """
    level = require_probability(conf_level, "conf_level")
    q = np.atleast_2d(np.asarray(estimates, dtype=float))
    u = np.atleast_2d(np.asarray(variances, dtype=float))
    m = q.shape[0]
    if m < 2 or q.shape != u.shape:
        raise AnalysisDataError(
            "rubin_pool needs m >= 2 rows of estimates and variances of equal shape; "
            f"got {q.shape}, {u.shape}."
        )
    qbar, ubar = q.mean(axis=0), u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    t = ubar + (1 + 1 / m) * b
    riv = (1 + 1 / m) * b / ubar
    lam = np.maximum((1 + 1 / m) * b / t, 1e-4)
    df_old = (m - 1) / lam**2
    df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
    df = df_old * df_obs / (df_old + df_obs)
    se = np.sqrt(t)
    crit = stats.t.ppf(0.5 + level / 2, df)
    return pd.DataFrame(
        {
            "estimate": qbar,
            "se": se,
            "df": df,
            "ci_low": qbar - crit * se,
            "ci_high": qbar + crit * se,
            "p_value": 2 * stats.t.sf(np.abs(qbar / se), df),
            "riv": riv,
            "lambda_": lam,
            "fmi": (riv + 2 / (df + 3)) / (1 + riv),
            "within": ubar,
            "between": b,
        }
    )


def ancova_mi(
    data: pd.DataFrame,
    *,
    outcome: str,
    baseline: str,
    arm: str,
    reference: object,
    rng: np.random.Generator,
    covariates: Sequence[str] = (),
    auxiliary: Sequence[str] = (),
    log: bool = False,
    m: int = 20,
    n_iter: int = 10,
    method: ImputeMethod = "pmm",
    conf_level: float = 0.95,
    on_progress: ProgressCallback | None = None,
) -> PooledResult:
    """ITT ANCOVA with missing follow-up (or baseline/covariate) values multiply imputed.

    The imputation model holds the outcome, baseline, arm, covariates and any ``auxiliary``
    variables (e.g. adherence, an intermediate visit). With ``log=True`` outcome and baseline
    are imputed and analysed on the log scale and contrasts are reported as ratios.
    ``contrasts`` of the result has the columns of :attr:`AncovaResult.table`.
    """
    level = require_probability(conf_level, "conf_level")
    covariates, auxiliary = tuple(covariates), tuple(auxiliary)
    require_columns(data, (outcome, baseline, arm, *covariates, *auxiliary), context="ancova_mi")
    work = data.copy()
    if log:
        for col in (outcome, baseline):
            vals = require_numeric(work, col, context="ancova_mi")
            if np.any(vals[np.isfinite(vals)] <= 0):
                raise AnalysisDataError(f"ancova_mi: log=True needs {col!r} > 0 where observed.")
            work[col] = np.log(vals)
    if work[arm].isna().any():
        raise AnalysisDataError(
            f"ancova_mi: column {arm!r} (allocated arm) must be complete for an ITT analysis."
        )
    cols = list(dict.fromkeys((outcome, baseline, arm, *covariates, *auxiliary)))
    sets = mice_impute(
        work, columns=cols, rng=rng, m=m, n_iter=n_iter, method=method, on_progress=on_progress
    )
    est, var, terms, df_com = [], [], [], 0.0
    for s in sets:
        y, X, levels, _ = build_ancova_design(
            s, outcome=outcome, baseline=baseline, arm=arm, reference=reference, covariates=covariates
        )
        fit = sm.OLS(y, X.to_numpy()).fit()
        est.append(np.asarray(fit.params))
        var.append(np.asarray(fit.bse) ** 2)
        terms, df_com = list(X.columns), float(fit.df_resid)
    pooled = rubin_pool(np.array(est), np.array(var), df_complete=df_com, conf_level=level)
    pooled.insert(0, "term", terms)
    k = len(levels)
    rows = pooled.iloc[1:k].reset_index(drop=True)
    contrasts = pd.DataFrame(
        {
            "contrast": [f"{lvl} vs {levels[0]}" for lvl in levels[1:]],
            **{c: rows[c] for c in ("estimate", "se", "ci_low", "ci_high", "p_value")},
        }
    )
    if log:
        for col in ("estimate", "ci_low", "ci_high"):
            contrasts[col] = np.exp(contrasts[col])
    return PooledResult(
        table=pooled,
        contrasts=contrasts,
        m=m,
        n=int(len(data)),
        df_complete=df_com,
        method=method,
        log=log,
        conf_level=level,
    )


def completers_ancova(data: pd.DataFrame, *, completer: str, **kwargs: object) -> AncovaResult:
    """Per-protocol sensitivity analysis: :func:`ancova` on the rows flagged as completers.

    ``completer`` names a boolean (or 0/1) column, e.g. the rehab programme's completer
    definition (attended enough sessions); all other keyword arguments go to :func:`ancova`.
    """
    require_columns(data, (completer,), context="completers_ancova")
    flag = data[completer]
    valid = flag.dropna()
    if not valid.isin([0, 1, True, False]).all():
        raise AnalysisDataError(
            f"completers_ancova: column {completer!r} must be True/False or 1/0; "
            f"found {sorted(set(valid.astype(str)))[:3]!r}."
        )
    subset = data.loc[flag.fillna(False).astype(bool)]
    if subset.empty:
        raise AnalysisDataError(f"completers_ancova: no row has {completer!r} true.")
    return ancova(subset, **kwargs)  # type: ignore[arg-type]
