"""Multiple imputation by chained equations (MICE) and Rubin's rules for the ITT analysis.

Each incomplete numeric variable is imputed in turn from all other variables by a Bayesian
linear regression (van Buuren, *Flexible Imputation of Missing Data*, algorithm 3.1): draw
``sigma*^2 = RSS / chi2(n_obs - p)`` and ``beta* ~ N(beta_hat, sigma*^2 (X'X)^-1)``, then either
predictive mean matching (``"pmm"``, default: donate the observed value of one of the
``donors`` closest predicted means, type-1 matching as R's mice) or the normal model
(``"norm"``). Categorical predictors (e.g. the arm, so imputation respects randomisation) enter
as dummies. The cycle is repeated ``n_iter`` times per imputed data set; ``m`` data sets are
produced from one seeded :class:`numpy.random.Generator`. The m sets are imputed together
(each regression is a batch of m small least-squares problems) with every random variate drawn
first in the order of the set-after-set algorithm, so the result is the same, draw for draw,
as imputing one set after the other; ``ancova_mi`` builds the ANCOVA design once and swaps
the imputed columns in for each set.

Estimates are pooled with Rubin's rules; the degrees of freedom are the Barnard-Rubin (1999)
small-sample ones as in R's ``mice::pool``::

    T = U + (1 + 1/m) B,  lambda = (1 + 1/m) B / T,
    df_old = (m - 1) / lambda^2,  df_obs = (df_com + 1) / (df_com + 3) df_com (1 - lambda),
    df = df_old df_obs / (df_old + df_obs)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
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
#: Largest PMM distance array (elements) built at once: 4M float64 = 32 MB.
_DIST_BUDGET = 1 << 22


@dataclass(frozen=True, slots=True)
class _Draws:
    """Every random variate of one MICE run, drawn up front in the order of the sequential
    algorithm (set by set, cycle by cycle, variable by variable), so the m sets can be imputed
    together and still equal, draw for draw, the sets imputed one after the other."""

    start: list[np.ndarray]  # [target] (m, n_miss): initial values sampled from the observed ones
    chi2: np.ndarray  # (m, n_iter, targets)
    z: np.ndarray  # (m, n_iter, targets, p) for beta*
    last: list[list[np.ndarray]]  # [cycle][target] (m, n_miss): normal noise or donor choice


def _draw_all(
    rng: np.random.Generator,
    observed: list[np.ndarray],
    n_miss: list[int],
    p: int,
    m: int,
    n_iter: int,
    method: ImputeMethod,
    donors: int,
) -> _Draws:
    T = len(observed)
    chi2, z = np.empty((m, n_iter, T)), np.empty((m, n_iter, T, p))
    start, last = [], []
    for i in range(m):
        start.append([rng.choice(observed[t], size=n_miss[t]) for t in range(T)])
        cycles = []
        for it in range(n_iter):
            row: list[np.ndarray] = []
            for t in range(T):
                chi2[i, it, t] = rng.chisquare(max(len(observed[t]) - p, 1))
                z[i, it, t] = rng.standard_normal(p)
                if method == "norm":
                    row.append(rng.standard_normal(n_miss[t]))
                else:
                    row.append(rng.integers(0, min(donors, len(observed[t])), size=n_miss[t]))
            cycles.append(row)
        last.append(cycles)
    return _Draws(
        [np.stack([start[i][t] for i in range(m)]) for t in range(T)],
        chi2,
        z,
        [[np.stack([last[i][it][t] for i in range(m)]) for t in range(T)] for it in range(n_iter)],
    )


def _impute_step(
    X: np.ndarray,
    y_obs: np.ndarray,
    miss: np.ndarray,
    method: ImputeMethod,
    donors: int,
    chi2: np.ndarray,
    z: np.ndarray,
    last: np.ndarray,
) -> np.ndarray:
    """One variable in all m chains: Bayesian regression draw, then PMM or normal draw.

    ``X`` is (m, n, p); ``beta_hat``, ``sigma* = sqrt(RSS / chi2(n_obs - p))`` and
    ``beta* = beta_hat + sigma* chol((X'X)^-1) z`` as van Buuren's algorithm 3.1 (tiny ridge
    for stability); returns the (m, n_miss) imputed values.
    """
    Xo, Xm = X[:, ~miss], X[:, miss]
    XoT = np.swapaxes(Xo, 1, 2)
    xtx = XoT @ Xo
    diag = np.diagonal(xtx, axis1=1, axis2=2)
    xtx_inv = np.linalg.inv(xtx + 1e-5 * (np.maximum(diag, 1e-8)[:, :, None] * np.eye(X.shape[2])))
    beta = ((xtx_inv @ XoT) @ y_obs[:, None])[:, :, 0]
    pred_obs = (Xo @ beta[:, :, None])[:, :, 0]
    sigma = np.sqrt(np.sum((y_obs - pred_obs) ** 2, axis=1) / chi2)
    chol = np.linalg.cholesky((xtx_inv + np.swapaxes(xtx_inv, 1, 2)) / 2)
    beta_star = beta + sigma[:, None] * (chol @ z[:, :, None])[:, :, 0]
    pred_mis = (Xm @ beta_star[:, :, None])[:, :, 0]
    if method == "norm":
        drawn: np.ndarray = pred_mis + sigma[:, None] * last
        return drawn
    donated: np.ndarray = y_obs[_donors(pred_obs, pred_mis, last, min(donors, len(y_obs)))]
    return donated


def _donors(pred_obs: np.ndarray, pred_mis: np.ndarray, choice: np.ndarray, k: int) -> np.ndarray:
    """Index of the donor for each missing value: entry ``choice`` of its ``k`` nearest
    predicted means (in :func:`numpy.argpartition` order, as the set-by-set algorithm).

    The (sets x missing x observed) distance array is built a few sets at a time (<= 32 MB).
    """
    m, n_mis = pred_mis.shape
    step = max(1, _DIST_BUDGET // max(n_mis * pred_obs.shape[1], 1))
    pick = np.empty((m, n_mis), dtype=np.intp)
    buffer = np.empty((min(step, m), n_mis, pred_obs.shape[1]))
    for a in range(0, m, step):
        dist = buffer[: min(step, m - a)]
        np.subtract(pred_obs[a : a + step, None, :], pred_mis[a : a + step, :, None], out=dist)
        np.abs(dist, out=dist)
        nearest = np.argpartition(dist, k - 1, axis=2)[:, :, :k]
        pick[a : a + step] = np.take_along_axis(nearest, choice[a : a + step, :, None], axis=2)[:, :, 0]
    return pick


def _mice_arrays(
    values: np.ndarray,
    fixed: np.ndarray,
    targets: list[int],
    rng: np.random.Generator,
    m: int,
    n_iter: int,
    method: ImputeMethod,
    donors: int,
    on_progress: ProgressCallback | None,
) -> np.ndarray:
    """The m completed copies of ``values`` (n x v), imputed together: (m, n, v)."""
    n, v = values.shape
    miss = np.isnan(values)
    p = v + fixed.shape[1]  # intercept, the other v - 1 variables, fixed predictors
    observed = [values[~miss[:, j], j] for j in targets]
    draws = _draw_all(rng, observed, [int(miss[:, j].sum()) for j in targets], p, m, n_iter, method, donors)
    cur = np.repeat(values[None], m, axis=0)
    for t, j in enumerate(targets):
        cur[:, miss[:, j], j] = draws.start[t]
    design = np.concatenate([np.ones((m, n, 1)), cur, np.repeat(fixed[None], m, axis=0)], axis=2)
    for it in range(n_iter):
        for t, j in enumerate(targets):
            cols = [c for c in range(p + 1) if c != j + 1]  # intercept, others, fixed
            imputed = _impute_step(
                design[:, :, cols],
                observed[t],
                miss[:, j],
                method,
                donors,
                draws.chi2[:, it, t],
                draws.z[:, it, t],
                draws.last[it][t],
            )
            cur[:, miss[:, j], j] = imputed
            design[:, miss[:, j], j + 1] = imputed
        if on_progress is not None:
            on_progress("multiple imputation", it + 1, n_iter)
    return cur


def _prepare(data: pd.DataFrame, columns: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Numeric columns (to impute), their values and the fixed (categorical) predictors."""
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
    return numeric, values, fixed


def _impute(
    data: pd.DataFrame,
    columns: Sequence[str],
    rng: np.random.Generator,
    m: int,
    n_iter: int,
    method: ImputeMethod,
    donors: int,
    on_progress: ProgressCallback | None,
) -> tuple[list[str], np.ndarray]:
    if m < 2:
        raise AnalysisDataError(f"m must be at least 2 imputations; got {m!r}.")
    if method not in ("pmm", "norm"):
        raise AnalysisDataError(f"method must be 'pmm' or 'norm'; got {method!r}.")
    numeric, values, fixed = _prepare(data, columns)
    miss = np.isnan(values)
    targets = [j for j in range(len(numeric)) if miss[:, j].any()]
    for j in targets:
        if (~miss[:, j]).sum() < 3:
            raise AnalysisDataError(f"mice_impute: column {numeric[j]!r} has fewer than 3 observed values.")
    cur = _mice_arrays(values, fixed, targets, rng, m, n_iter, method, donors, on_progress)
    return numeric, cur


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
        ``on_progress(task, done, total)`` after each chained-equation cycle (the m sets are
        imputed together).
    """
    numeric, cur = _impute(data, columns, rng, m, n_iter, method, donors, on_progress)
    out = []
    for i in range(m):
        done = data.copy()
        for j, c in enumerate(numeric):
            done[c] = cur[i, :, j]
        out.append(done)
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


def _designs(
    work: pd.DataFrame,
    numeric: list[str],
    cur: np.ndarray,
    outcome: str,
    baseline: str,
    arm: str,
    reference: object,
    covariates: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, list[str], list[object]]:
    """ANCOVA responses (m, n) and designs (m, n, p) of the m completed sets.

    The design is built (and checked) once by :func:`build_ancova_design` on the first set;
    the imputed numeric columns (baseline, numeric covariates) are then swapped in per set.
    """
    first = work.copy()
    for j, c in enumerate(numeric):
        first[c] = cur[0, :, j]
    y0, X0, levels, used = build_ancova_design(
        first, outcome=outcome, baseline=baseline, arm=arm, reference=reference, covariates=covariates
    )
    rows = work.index.get_indexer(used)
    X = np.repeat(X0.to_numpy(float)[None], cur.shape[0], axis=0)
    for k, name in enumerate(X0.columns):
        if name in numeric:
            X[:, :, k] = cur[:, rows, numeric.index(name)]
    y = cur[:, rows, numeric.index(outcome)] if outcome in numeric else np.repeat(y0[None], len(cur), 0)
    if np.any(np.linalg.matrix_rank(X) < X.shape[2]):
        raise AnalysisDataError(
            f"ancova_mi: an imputed design is rank deficient (a covariate is constant or collinear "
            f"with arm/baseline); columns: {', '.join(X0.columns)}."
        )
    return y, X, list(X0.columns), levels


def _ols_many(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """OLS coefficients and their variances for each of the m sets (pseudo-inverse, as
    statsmodels ``OLS``), and the residual df."""
    n, p = X.shape[1:]
    pinv = np.linalg.pinv(X)  # (m, p, n)
    beta = (pinv @ y[:, :, None])[:, :, 0]
    resid = y - (X @ beta[:, :, None])[:, :, 0]
    scale = np.sum(resid**2, axis=1) / (n - p)
    return beta, scale[:, None] * np.sum(pinv**2, axis=2), float(n - p)


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
    numeric, cur = _impute(work, cols, rng, m, n_iter, method, 5, on_progress)
    y, X, terms, levels = _designs(work, numeric, cur, outcome, baseline, arm, reference, covariates)
    est, var, df_com = _ols_many(y, X)
    pooled = rubin_pool(est, var, df_complete=df_com, conf_level=level)
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
