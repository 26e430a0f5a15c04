"""The analysis implementations before the speed-up (commit 6af240f), kept as benchmark yardsticks.

``previous_mixed_model``: statsmodels ``MixedLM`` tried with up to four optimizers (kept when two
agree), a tight Nelder-Mead polish of the deviance computed from each subject's n_i x n_i
covariance matrix, and a numerical Hessian of that deviance for the Satterthwaite df.
``previous_mice_impute`` / ``previous_ancova_mi``: one set after the other, one regression per
variable and cycle, and a pandas design plus a statsmodels OLS fit per imputed set.

Not used by the package; only ``benchmarks/test_bench_analysis.py`` imports it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from immunorehab.analysis._validation import (
    design_columns,
    require_columns,
    require_numeric,
    require_probability,
)
from immunorehab.analysis.ancova import build_ancova_design
from immunorehab.analysis.imputation import rubin_pool
from immunorehab.analysis.results import MixedModelResult, PooledResult
from immunorehab.errors import AnalysisDataError, ModelFitError, SingularFitWarning

ImputeMethod = Literal["pmm", "norm"]
ProgressCallback = Callable[[str, int, int], None]

_MCTX = "mixed_model"
_OPTIMIZERS: tuple[tuple[str, ...], ...] = (("lbfgs",), ("bfgs",), ("powell", "lbfgs"), ("nm", "lbfgs"))


@dataclass(frozen=True, slots=True)
class _Blocks:
    """Subjects grouped by number of observations, stacked for batched linear algebra."""

    X: tuple[np.ndarray, ...]  # (g, n_i, p)
    Z: tuple[np.ndarray, ...]  # (g, n_i, q)
    y: tuple[np.ndarray, ...]  # (g, n_i)


def _blocks(y: np.ndarray, X: np.ndarray, Z: np.ndarray, groups: np.ndarray) -> _Blocks:
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(g_sorted)])
    xs, zs, ys = [], [], []
    for size in np.unique(sizes):
        idx = np.concatenate([order[s : s + size] for s in starts[sizes == size]]).reshape(-1, size)
        xs.append(X[idx])
        zs.append(Z[idx])
        ys.append(y[idx])
    return _Blocks(tuple(xs), tuple(zs), tuple(ys))


def _unpack(theta: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    G = np.zeros((q, q))
    G[np.tril_indices(q)] = theta[:-1]
    G = G + np.tril(G, -1).T
    return G, float(theta[-1])


def _pieces(theta: np.ndarray, b: _Blocks) -> tuple[float, np.ndarray, np.ndarray, list[np.ndarray]]:
    """log|V| summed, X'V^-1X, X'V^-1y and the per-block V^-1."""
    q = b.Z[0].shape[2]
    G, s2 = _unpack(theta, q)
    logdet, xvx, xvy, vinv = 0.0, 0.0, 0.0, []
    for X, Z, y in zip(b.X, b.Z, b.y, strict=True):
        V = Z @ G @ np.swapaxes(Z, 1, 2) + s2 * np.eye(Z.shape[1])
        sign, ld = np.linalg.slogdet(V)
        if np.any(sign <= 0):
            raise np.linalg.LinAlgError("V not positive definite")
        Vi = np.linalg.inv(V)
        logdet += float(ld.sum())
        XtVi = np.swapaxes(X, 1, 2) @ Vi
        xvx = xvx + (XtVi @ X).sum(axis=0)
        xvy = xvy + np.einsum("gpn,gn->p", XtVi, y)
        vinv.append(Vi)
    return logdet, np.asarray(xvx), np.asarray(xvy), vinv


def _deviance(theta: np.ndarray, b: _Blocks, reml: bool) -> float:
    """-2 log-likelihood (REML or ML) without the 2*pi constant."""
    try:
        logdet, xvx, xvy, vinv = _pieces(theta, b)
    except np.linalg.LinAlgError:
        return np.inf
    beta = np.linalg.solve(xvx, xvy)
    quad = 0.0
    for X, y, Vi in zip(b.X, b.y, vinv, strict=True):
        r = y - X @ beta
        quad += float(np.einsum("gn,gnm,gm->", r, Vi, r))
    dev = logdet + quad
    if reml:
        dev += float(np.linalg.slogdet(xvx)[1])
    return dev


def _hessian(fun: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Hessian by central differences with one Richardson extrapolation step (as numDeriv)."""

    def central(h: np.ndarray) -> np.ndarray:
        k = len(x)
        H = np.empty((k, k))
        f0 = fun(x)
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (fun(x + ei) - 2 * f0 + fun(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                val = fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)
                H[i, j] = H[j, i] = val / (4 * h[i] * h[j])
        return H

    h = 1e-2 * np.maximum(np.abs(x), 1e-3)
    out: np.ndarray = (4 * central(h / 2) - central(h)) / 3
    return out


def _polish(theta: np.ndarray, b: _Blocks, reml: bool) -> np.ndarray:
    """Refine the optimiser's variance parameters on the exact deviance (Nelder-Mead, tight).

    The deviance is flat near its minimum, so optimisers stop where the fixed effects agree
    but the Satterthwaite df (which depend on the curvature at the optimum) are still off in
    the 4th digit; lme4 converges further, and so do we here.
    """
    q = b.Z[0].shape[2]
    f0 = _deviance(theta, b, reml)
    scale = np.maximum(np.abs(theta), 1e-8)

    def f(z: np.ndarray) -> float:
        G, s2 = _unpack(z * scale, q)
        if s2 <= 0 or np.any(np.linalg.eigvalsh(G) < 0):
            return np.inf
        return _deviance(z * scale, b, reml)

    res = optimize.minimize(
        f,
        np.ones_like(theta),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    return res.x * scale if np.isfinite(res.fun) and res.fun <= f0 else theta


def _satterthwaite(theta: np.ndarray, b: _Blocks, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the fixed effects and Satterthwaite df for each coefficient."""
    q = b.Z[0].shape[2]
    _, xvx, _, vinv = _pieces(theta, b)
    phi = np.linalg.inv(xvx)
    k = len(theta)
    dphi = []
    for r in range(k):
        e = np.zeros(k)
        e[r] = 1.0
        dG, ds2 = _unpack(e, q)
        acc = 0.0
        for X, Z, Vi in zip(b.X, b.Z, vinv, strict=True):
            dV = Z @ dG @ np.swapaxes(Z, 1, 2) + ds2 * np.eye(Z.shape[1])
            XtVi = np.swapaxes(X, 1, 2) @ Vi
            acc = acc + (XtVi @ dV @ np.swapaxes(XtVi, 1, 2)).sum(axis=0)
        dphi.append(phi @ acc @ phi)  # d Phi / d theta_r
    H = _hessian(lambda t: _deviance(t, b, reml), theta)
    A = 2.0 * np.linalg.inv(H)
    df = np.empty(phi.shape[0])
    for j in range(phi.shape[0]):
        g = np.array([d[j, j] for d in dphi])
        df[j] = 2.0 * phi[j, j] ** 2 / float(g @ A @ g)
    return phi, df


def _fit_statsmodels(model: MixedLM, reml: bool) -> tuple[Any, str, list[str]]:
    """Try optimizers in turn; keep the best converged fit without convergence warnings."""
    best: tuple[float, Any, str, list[str]] | None = None
    for methods in _OPTIMIZERS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = model.fit(reml=reml, method=list(methods))
            except (np.linalg.LinAlgError, ValueError):
                continue
        messages = [str(w.message) for w in caught]
        if any(
            issubclass(w.category, ConvergenceWarning) and "boundary" not in str(w.message) for w in caught
        ):
            if not getattr(res, "converged", False):
                continue
        if not getattr(res, "converged", False) or not np.isfinite(res.llf):
            continue
        if best is not None and abs(res.llf - best[0]) < 1e-6:
            break  # two optimizers agree on the optimum
        if best is None or res.llf > best[0] + 1e-8:
            best = (float(res.llf), res, "+".join(methods), messages)
    if best is None:
        raise ModelFitError(
            f"{_MCTX}: the mixed model did not converge with any optimizer "
            f"({', '.join('+'.join(m) for m in _OPTIMIZERS)}). "
            "Try: 1) random_slope=False; 2) rescale time (e.g. weeks instead of days); "
            "3) check that subjects have at least two observations."
        )
    return best[1], best[2], best[3]


def previous_mixed_model(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    subject: str,
    covariates: Sequence[str] = (),
    random_slope: bool = True,
    reml: bool = True,
    conf_level: float = 0.95,
) -> MixedModelResult:
    """Fit ``outcome ~ time + covariates + (1 + time | subject)`` (lme4 notation).

    Parameters
    ----------
    data : DataFrame
        Long format: one row per subject and occasion.
    outcome : str
        Measured value (any unit).
    time : str
        Numeric time of the occasion (e.g. days or months since baseline).
    subject : str
        Participant identifier.
    covariates : sequence of str
        Further fixed effects (numeric or categorical).
    random_slope : bool
        Random slope of time per subject (correlated with the random intercept).
    reml : bool
        REML (default, as lme4) or maximum likelihood.
    conf_level : float
        Level of the Satterthwaite t intervals.

    Returns
    -------
    MixedModelResult

    Raises
    ------
    AnalysisDataError
        Missing/non-numeric columns or too few subjects.
    ModelFitError
        No optimizer reached a converged optimum.
    """
    level = require_probability(conf_level, "conf_level")
    covariates = tuple(covariates)
    require_columns(data, (outcome, time, subject, *covariates), context=_MCTX)
    y_all = require_numeric(data, outcome, context=_MCTX)
    t_all = require_numeric(data, time, context=_MCTX)
    cov = design_columns(data, covariates, context=_MCTX)
    X_df = pd.concat([pd.DataFrame({"(Intercept)": 1.0, time: t_all}, index=data.index), cov], axis=1)
    keep = np.isfinite(y_all) & X_df.notna().all(axis=1).to_numpy() & data[subject].notna().to_numpy()
    X_df = X_df.loc[keep]
    y = y_all[keep]
    groups = pd.factorize(data.loc[keep, subject])[0]
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    if n_groups < 3:
        raise AnalysisDataError(f"{_MCTX}: need at least 3 subjects with data, found {n_groups}.")
    X = X_df.to_numpy()
    Z = X[:, :2] if random_slope else X[:, :1]
    model = MixedLM(y, X, groups=groups, exog_re=Z)
    res, optimizer, messages = _fit_statsmodels(model, reml)
    q = Z.shape[1]
    G = np.asarray(res.cov_re)
    s2 = float(res.scale)
    blocks = _blocks(y, X, Z, groups)
    theta = _polish(np.r_[G[np.tril_indices(q)], s2], blocks, reml)
    G, s2 = _unpack(theta, q)
    phi, df = _satterthwaite(theta, blocks, reml)
    _, xvx, xvy, _ = _pieces(theta, blocks)
    table = _fixed_table(list(X_df.columns), np.linalg.solve(xvx, xvy), phi, df, level)
    re = _random_table(G, [str(c) for c in X_df.columns[:q]], subject)
    if any("singular" in m or "boundary" in m for m in messages) or np.any(np.diag(G) < 1e-8 * s2):
        warnings.warn(
            f"{_MCTX}: boundary (singular) fit: a random-effect variance is ~0 or the correlation is +/-1; "
            "consider random_slope=False.",
            SingularFitWarning,
            stacklevel=2,
        )
    llf = float(res.llf)
    n_par = X.shape[1] + len(theta)
    return MixedModelResult(
        table=table,
        random_effects=re,
        residual_sd=float(np.sqrt(s2)),
        log_likelihood=llf,
        reml_criterion=-2.0 * llf if reml else None,
        aic=-2.0 * llf + 2 * n_par,
        bic=-2.0 * llf + n_par * float(np.log(len(y))),
        n_obs=int(len(y)),
        n_groups=n_groups,
        reml=reml,
        random_slope=random_slope,
        outcome=outcome,
        time=time,
        subject=subject,
        optimizer=optimizer,
        conf_level=level,
    )


def _fixed_table(
    terms: list[str], beta: np.ndarray, phi: np.ndarray, df: np.ndarray, level: float
) -> pd.DataFrame:
    se = np.sqrt(np.diag(phi))
    tval = beta / se
    qt = stats.t.ppf(0.5 + level / 2, df)
    return pd.DataFrame(
        {
            "term": terms,
            "estimate": beta,
            "se": se,
            "df": df,
            "t_value": tval,
            "ci_low": beta - qt * se,
            "ci_high": beta + qt * se,
            "p_value": 2 * stats.t.sf(np.abs(tval), df),
        }
    )


def _random_table(G: np.ndarray, names: list[str], subject: str) -> pd.DataFrame:
    sd = np.sqrt(np.clip(np.diag(G), 0, None))
    rows = []
    for i, name in enumerate(names):
        corr = float(G[i, 0] / (sd[i] * sd[0])) if i > 0 and sd[i] * sd[0] > 0 else np.nan
        rows.append(
            {"group": subject, "term": name, "variance": float(G[i, i]), "sd": float(sd[i]), "corr": corr}
        )
    return pd.DataFrame(rows)


# ---- MICE


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


def previous_mice_impute(
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


def previous_ancova_mi(
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
    sets = previous_mice_impute(
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
