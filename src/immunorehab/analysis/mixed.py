"""Linear mixed model for repeated measures over time (lme4 ``lmer`` equivalent).

Model for subject i at occasion j::

    y_ij = x_ij' b + u_0i + u_1i * t_ij + e_ij,   (u_0i, u_1i) ~ N(0, G),  e_ij ~ N(0, s^2)

fitted by REML (default) or ML as lme4 does: the deviance profiled over the fixed effects and
``s^2`` is minimised over the relative covariance factor (``G = s^2 L L'``, ``L`` lower
triangular) by BFGS (scipy) with its analytic gradient from two starts that must agree
(Nelder-Mead otherwise), polished by Newton steps; a zero variance is accepted only if the
deviance does not fall away from it (see :mod:`immunorehab.analysis._lmm`). The fit is
computed from per-subject cross-products, so it costs milliseconds for a cohort of ~100
participants. A fit is reported as singular (:class:`SingularFitWarning`) by lme4's
``isSingular`` rule: a diagonal entry of L below 1e-4, with time rescaled to root mean square 1
so that the verdict does not depend on the unit of time. Inference on the fixed effects uses t statistics
with Satterthwaite degrees of freedom computed as R's lmerTest does: the variance of ``c'b``
as a function of the variance parameters, its gradient, and the inverse Hessian of the
REML/ML deviance evaluated at the optimum.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from immunorehab.analysis import _lmm
from immunorehab.analysis._validation import (
    design_columns,
    require_columns,
    require_numeric,
    require_probability,
)
from immunorehab.analysis.results import MixedModelResult
from immunorehab.errors import AnalysisDataError, ModelFitError, SingularFitWarning

__all__ = ["mixed_model"]

_CTX = "mixed_model"


def _fit(cross: _lmm.Cross, reml: bool) -> tuple[np.ndarray, str]:
    found = _lmm.fit_theta(cross, reml)
    if found is None:
        raise ModelFitError(
            f"{_CTX}: the mixed model did not converge (profiled {'REML' if reml else 'ML'} deviance, "
            "BFGS from two starts and Nelder-Mead). "
            "Try: 1) random_slope=False; 2) rescale time (e.g. weeks instead of days); "
            "3) check that subjects have at least two observations."
        )
    return found


def _data(
    data: pd.DataFrame, outcome: str, time: str, subject: str, covariates: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Fixed-effects design (complete rows), response and subject codes 0..g-1."""
    require_columns(data, (outcome, time, subject, *covariates), context=_CTX)
    y_all = require_numeric(data, outcome, context=_CTX)
    t_all = require_numeric(data, time, context=_CTX)
    cov = design_columns(data, covariates, context=_CTX)
    X_df = pd.concat([pd.DataFrame({"(Intercept)": 1.0, time: t_all}, index=data.index), cov], axis=1)
    keep = np.isfinite(y_all) & X_df.notna().all(axis=1).to_numpy() & data[subject].notna().to_numpy()
    groups = pd.factorize(data.loc[keep, subject])[0]
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    if n_groups < 3:
        raise AnalysisDataError(f"{_CTX}: need at least 3 subjects with data, found {n_groups}.")
    return X_df.loc[keep], y_all[keep], groups


def mixed_model(
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
    X_df, y, groups = _data(data, outcome, time, subject, tuple(covariates))
    n_groups = int(groups.max()) + 1
    X = X_df.to_numpy(dtype=float)
    q = 2 if random_slope else 1
    cross = _lmm.cross_products(y, X, X[:, :q], groups)
    try:
        theta, optimizer = _fit(cross, reml)
        dev, beta_int, s2 = _lmm.profiled_fit(theta, cross, reml)
        L = _lmm.lower(theta, q)
        G_int = s2 * (L @ L.T)  # internal (rescaled time) units
        tau = np.r_[G_int[np.tril_indices(q)], s2]
        phi_int, df = _lmm.satterthwaite(tau, cross, reml)
    except np.linalg.LinAlgError as exc:
        raise ModelFitError(
            f"{_CTX}: the fixed-effects design is singular ({exc}); columns: {', '.join(X_df.columns)}."
        ) from exc
    beta = beta_int / cross.x_scale
    phi = phi_int / np.outer(cross.x_scale, cross.x_scale)
    G = G_int / np.outer(cross.z_scale, cross.z_scale)
    table = _fixed_table(list(X_df.columns), beta, phi, df, level)
    re = _random_table(G, [str(c) for c in X_df.columns[:q]], subject)
    # lme4's isSingular: a diagonal entry of the relative covariance factor below 1e-4 (here
    # with time rescaled to root mean square 1, so the check does not depend on its unit)
    if np.any(np.diag(L) < _lmm.SINGULAR_TOL):
        warnings.warn(
            f"{_CTX}: boundary (singular) fit: a random-effect variance is ~0 or the correlation is +/-1; "
            "consider random_slope=False.",
            SingularFitWarning,
            stacklevel=2,
        )
    # the deviance is on the rescaled X; REML's log|X'V^-1 X| term is not scale-free
    llf = -0.5 * (dev + (2.0 * float(np.sum(np.log(cross.x_scale))) if reml else 0.0))
    n_par = X.shape[1] + len(tau)
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
