"""Mixed model for repeated measures (MMRM) with an unstructured covariance across visits.

Model for participant i at post-baseline visit v::

    y_iv = a_v + d_kv [arm_i = k] + g_v * baseline_i + c' z_i + e_iv,   e_i ~ N(0, Sigma_i)

with a visit-specific intercept, arm effect (visit x arm) and baseline slope (baseline x
visit), common covariate effects, and an unstructured ``Sigma`` (one variance per visit and one
covariance per pair of visits; ``Sigma_i`` is its sub-matrix for the visits participant i
attended). Estimation is REML by generalised least squares (profiled over the fixed effects),
with ``Sigma = L L'`` parametrised by its Cholesky factor and optimised by BFGS with the analytic
gradient. Participants with missing visits contribute what they have (valid under missing at
random). All computations use per-missingness-pattern sufficient statistics, so the cost of an
iteration does not depend on the number of participants.

Degrees of freedom (``df_method``):

``"kenward-roger"`` (default)
    Kenward & Roger (1997): the fixed-effect covariance is bias-adjusted (``Phi_A``) and the
    df of each contrast come from the moment-matching formula. The covariance is parametrised
    linearly in its elements, so the second-derivative term of Kenward-Roger vanishes; ``W``
    is the inverse expected REML information.
``"satterthwaite"``
    ``df = 2 (c' Phi c)^2 / (g' W g)`` with ``g_r = c' dPhi/dtheta_r c``; model-based SE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from immunorehab.analysis._validation import (
    design_columns,
    require_columns,
    require_numeric,
    require_positive,
    require_probability,
)
from immunorehab.analysis.ancova import arm_levels
from immunorehab.analysis.results import DfMethod, MMRMResult
from immunorehab.errors import AnalysisDataError, ModelFitError

__all__ = ["mmrm"]

_CTX = "mmrm"


@dataclass(frozen=True, slots=True)
class _Pattern:
    """Sufficient statistics of the participants sharing one set of attended visits.

    With ``X_i`` (visits x p) and ``y_i`` of participant i: ``C[v,p,w,q] = sum_i X_ivp X_iwq``,
    ``D[v,p,w] = sum_i X_ivp y_iw`` and ``E[v,w] = sum_i y_iv y_iw``. Every quantity of the REML
    fit is a contraction of these with a visits x visits matrix, so the cost of an iteration
    does not grow with the number of participants.
    """

    visits: np.ndarray  # indices into the visit list
    n: int
    C: np.ndarray
    D: np.ndarray
    E: np.ndarray

    @classmethod
    def of(cls, visits: np.ndarray, X: np.ndarray, y: np.ndarray) -> _Pattern:
        return cls(
            visits,
            len(y),
            np.einsum("nvp,nwq->vpwq", X, X),
            np.einsum("nvp,nw->vpw", X, y),
            y.T @ y,
        )

    def xax(self, A: np.ndarray) -> np.ndarray:
        """sum_i X_i' A X_i for a visits x visits matrix A."""
        out: np.ndarray = np.einsum("vw,vpwq->pq", A, self.C)
        return out

    def cross(self, beta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """sum_i r_i r_i' + sum_i X_i Phi X_i' at the fixed effects ``beta``."""
        b = np.einsum("p,vpw->vw", beta, self.D)
        fitted = np.einsum("p,vpwq,q->vw", beta, self.C, beta)
        out: np.ndarray = self.E - b - b.T + fitted + np.einsum("pq,vpwq->vw", phi, self.C)
        return out


@dataclass(frozen=True, slots=True)
class _Design:
    patterns: tuple[_Pattern, ...]
    terms: tuple[str, ...]
    n_visits: int
    n_obs: int
    n_subjects: int
    center: np.ndarray  # mean of the per-subject design (for LS means)


def _sigma(theta: np.ndarray, t: int) -> np.ndarray:
    L = np.zeros((t, t))
    L[np.diag_indices(t)] = np.exp(theta[:t])
    L[np.tril_indices(t, -1)] = theta[t:]
    out: np.ndarray = L @ L.T
    return out


def _theta0(sigma: np.ndarray) -> np.ndarray:
    L = np.linalg.cholesky(sigma)
    out: np.ndarray = np.r_[np.log(np.diag(L)), L[np.tril_indices(len(L), -1)]]
    return out


def _gls(sigma: np.ndarray, d: _Design) -> tuple[float, np.ndarray, np.ndarray]:
    """REML deviance (no constant), X'V^-1X and beta for a given Sigma."""
    logdet = 0.0
    p = len(d.terms)
    xvx, xvy, yvy = np.zeros((p, p)), np.zeros(p), 0.0
    for pat in d.patterns:
        s = sigma[np.ix_(pat.visits, pat.visits)]
        c = np.linalg.cholesky(s)
        si = np.linalg.inv(s)
        logdet += 2.0 * pat.n * float(np.log(np.diag(c)).sum())
        xvx += pat.xax(si)
        xvy += np.einsum("vw,vpw->p", si, pat.D)
        yvy += float(np.sum(si * pat.E))
    beta = np.linalg.solve(xvx, xvy)
    quad = yvy - float(beta @ xvy)  # = sum r'V^-1 r at the GLS solution
    return logdet + quad + float(np.linalg.slogdet(xvx)[1]), xvx, beta


def _objective(theta: np.ndarray, d: _Design) -> tuple[float, np.ndarray]:
    """REML deviance and its analytic gradient in the Cholesky parametrisation.

    With ``S = Sigma_P^-1`` for a missingness pattern P, residuals ``r_i`` at the GLS beta and
    ``Phi = (X'V^-1X)^-1``, the gradient with respect to Sigma is, summed over patterns,
    ``n_P S - S (sum r r' + sum X Phi X') S``; then ``d/dL = 2 G L``.
    """
    t = d.n_visits
    try:
        sigma = _sigma(theta, t)
        dev, xvx, beta = _gls(sigma, d)
        phi = np.linalg.inv(xvx)
    except np.linalg.LinAlgError:
        return 1e300, np.zeros_like(theta)
    G = np.zeros((t, t))
    for pat in d.patterns:
        idx = np.ix_(pat.visits, pat.visits)
        si = np.linalg.inv(sigma[idx])
        G[idx] += pat.n * si - si @ pat.cross(beta, phi) @ si
    L = np.zeros((t, t))
    L[np.diag_indices(t)] = np.exp(theta[:t])
    L[np.tril_indices(t, -1)] = theta[t:]
    dL = 2 * G @ L
    grad = np.r_[np.diag(dL) * np.diag(L), dL[np.tril_indices(t, -1)]]
    return dev, grad


def _start(d: _Design) -> np.ndarray:
    """OLS residual covariance (pairwise, made positive definite) as the starting Sigma."""
    p, t = len(d.terms), d.n_visits
    xtx, xty = np.zeros((p, p)), np.zeros(p)
    for pat in d.patterns:
        xtx += np.einsum("vpvq->pq", pat.C)
        xty += np.einsum("vpv->p", pat.D)
    beta = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    sums, counts = np.zeros((t, t)), np.zeros((t, t))
    for pat in d.patterns:
        idx = np.ix_(pat.visits, pat.visits)
        sums[idx] += pat.cross(beta, np.zeros((p, p)))
        counts[idx] += pat.n
    s = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    w, v = np.linalg.eigh((s + s.T) / 2)
    floor = max(float(np.max(w)) * 1e-3, 1e-8)
    out: np.ndarray = (v * np.maximum(w, floor)) @ v.T
    return out


def _fit(d: _Design) -> tuple[np.ndarray, bool]:
    theta = _theta0(_start(d))
    res = optimize.minimize(
        _objective, theta, args=(d,), jac=True, method="BFGS", options={"gtol": 1e-8, "maxiter": 5000}
    )
    if not res.success:  # polish from where BFGS stopped with a bounded-memory quasi-Newton
        res = optimize.minimize(
            _objective, res.x, args=(d,), jac=True, method="L-BFGS-B", options={"maxiter": 5000}
        )
    sigma = _sigma(res.x, d.n_visits)
    if not np.all(np.isfinite(sigma)) or res.fun >= 1e299:
        raise ModelFitError(f"{_CTX}: the REML optimisation failed ({res.message}).")
    grad = _objective(res.x, d)[1]
    return sigma, bool(res.success) or bool(np.max(np.abs(grad)) < 1e-4 * max(1.0, abs(res.fun)))


def _derivative_terms(
    sigma: np.ndarray, d: _Design, phi: np.ndarray
) -> tuple[list[np.ndarray], list[list[np.ndarray]], np.ndarray]:
    """P_r, Q_rs and the expected REML information for the element-wise parametrisation."""
    t = d.n_visits
    pairs = [(j, k) for j in range(t) for k in range(j + 1)]
    dmat = []
    for j, k in pairs:
        e = np.zeros((t, t))
        e[j, k] = e[k, j] = 1.0
        dmat.append(e)
    m, p = len(pairs), phi.shape[0]
    P = [np.zeros((p, p)) for _ in range(m)]
    Q = [[np.zeros((p, p)) for _ in range(m)] for _ in range(m)]
    T = np.zeros((m, m))
    for pat in d.patterns:
        idx = np.ix_(pat.visits, pat.visits)
        si = np.linalg.inv(sigma[idx])
        A = [si @ dm[idx] @ si for dm in dmat]  # V^-1 V_r V^-1
        B = [si @ dm[idx] for dm in dmat]  # V^-1 V_r
        for r in range(m):
            P[r] += pat.xax(A[r])
            for s in range(r + 1):
                Q[r][s] += pat.xax(A[r] @ dmat[s][idx] @ si)
                T[r, s] += pat.n * float(np.trace(B[r] @ B[s]))
    info = np.zeros((m, m))
    for r in range(m):
        for s in range(r + 1):
            if s != r:
                Q[s][r] = Q[r][s].T
                T[s, r] = T[r, s]
            val = 0.5 * (T[r, s] - 2 * np.trace(phi @ Q[r][s]) + np.trace(phi @ P[r] @ phi @ P[s]))
            info[r, s] = info[s, r] = val
    return P, Q, info


def _inference(
    sigma: np.ndarray, d: _Design, df_method: DfMethod, contrasts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """beta, Phi (adjusted for KR), and per-contrast variance and df."""
    _, xvx, beta = _gls(sigma, d)
    phi = np.linalg.inv(xvx)
    P, Q, info = _derivative_terms(sigma, d, phi)
    W = np.linalg.inv(info)
    m = len(P)
    if df_method == "kenward-roger":
        inner = sum(W[r, s] * (Q[r][s] - P[r] @ phi @ P[s]) for r in range(m) for s in range(m))
        phi_use = phi + 2 * phi @ inner @ phi
    elif df_method == "satterthwaite":
        phi_use = phi
    else:
        raise AnalysisDataError(f"df_method must be 'kenward-roger' or 'satterthwaite'; got {df_method!r}.")
    dphi = [phi @ Pr @ phi for Pr in P]
    var = np.einsum("cp,pq,cq->c", contrasts, phi_use, contrasts)
    g = np.array([[c @ dp @ c for dp in dphi] for c in contrasts])
    df = 2 * var**2 / np.einsum("cr,rs,cs->c", g, W, g)
    return beta, phi_use, var, df


def _design(
    data: pd.DataFrame,
    outcome: str,
    subject: str,
    visit: str,
    arm: str,
    baseline: str,
    levels: list[object],
    visits: list[object],
    covariates: tuple[str, ...],
    log: bool,
) -> tuple[_Design, int]:
    y = require_numeric(data, outcome, context=_CTX)
    b = require_numeric(data, baseline, context=_CTX)
    cov = design_columns(data, covariates, context=_CTX)
    vis_idx = pd.Series(data[visit]).map({v: i for i, v in enumerate(visits)}).to_numpy()
    ok = np.isfinite(y) & np.isfinite(b) & ~pd.isna(vis_idx) & cov.notna().all(axis=1).to_numpy()
    ok &= data[arm].isin(levels).to_numpy() & data[subject].notna().to_numpy()
    frame = pd.DataFrame(
        {"s": data[subject].to_numpy(), "v": vis_idx, "y": y, "b": b, "a": data[arm].to_numpy()}
    ).join(cov.reset_index(drop=True))[ok]
    if log:
        require_positive(frame["y"].to_numpy(), list(frame.index), outcome, context=_CTX)
        require_positive(frame["b"].to_numpy(), list(frame.index), baseline, context=_CTX)
        frame["y"], frame["b"] = np.log(frame["y"]), np.log(frame["b"])
    if frame.duplicated(["s", "v"]).any():
        dup = frame[frame.duplicated(["s", "v"])].iloc[0]
        raise AnalysisDataError(
            f"{_CTX}: participant {dup['s']!r} has two rows for visit {visits[int(dup['v'])]!r}."
        )
    t, k = len(visits), len(levels)
    subj = frame.groupby("s", sort=False).first()
    per = np.column_stack(
        [np.ones(len(subj))]
        + [(subj["a"] == lvl).to_numpy(float) for lvl in levels[1:]]
        + [subj["b"].to_numpy()]
    )
    zc = subj[list(cov.columns)].to_numpy(float)
    terms = [f"visit[{v}]" for v in visits] + [
        f"{arm}[{lvl}]:visit[{v}]" for lvl in levels[1:] for v in visits
    ]
    terms += [f"{baseline}:visit[{v}]" for v in visits] + list(cov.columns)
    block = per.shape[1]
    rows = {s: i for i, s in enumerate(subj.index)}
    frame["row"] = frame["s"].map(rows)
    masks = np.zeros((len(subj), t), bool)
    Y = np.full((len(subj), t), np.nan)
    masks[frame["row"], frame["v"].astype(int)] = True
    Y[frame["row"], frame["v"].astype(int)] = frame["y"]
    Xfull = np.zeros((len(subj), t, block * t + zc.shape[1]))
    for v in range(t):
        for j in range(block):
            Xfull[:, v, j * t + v] = per[:, j]
        Xfull[:, v, block * t :] = zc
    patterns = []
    keys = pd.Series([m.tobytes() for m in masks])
    for idx in keys.groupby(keys).groups.values():
        vis = np.flatnonzero(masks[idx[0]])
        sel = np.asarray(idx)
        patterns.append(_Pattern.of(vis, Xfull[sel][:, vis, :], Y[sel][:, vis]))
    center = Xfull[:, 0, :].mean(axis=0)
    d = _Design(tuple(patterns), tuple(terms), t, int(masks.sum()), len(subj), center)
    if d.n_obs <= len(terms) or len(subj) < k + 2:
        raise AnalysisDataError(
            f"{_CTX}: {d.n_obs} observation(s) from {len(subj)} participant(s) cannot fit "
            f"{len(terms)} fixed effects."
        )
    return d, int(len(data) - ok.sum())


def mmrm(
    data: pd.DataFrame,
    *,
    outcome: str,
    subject: str,
    visit: str,
    arm: str,
    baseline: str,
    reference: object,
    visits: Sequence[object] | None = None,
    covariates: Sequence[str] = (),
    log: bool = False,
    df_method: DfMethod = "kenward-roger",
    conf_level: float = 0.95,
) -> MMRMResult:
    """MMRM with unstructured covariance, visit x arm and baseline x visit.

    Parameters
    ----------
    data : DataFrame
        Long format: one row per participant and post-baseline visit; ``arm`` and
        ``baseline`` repeated on each row of a participant.
    outcome, baseline : str
        Follow-up value and the baseline value of the same measure.
    subject, visit, arm : str
        Participant id, visit label and allocated arm.
    reference : object
        Comparator arm.
    visits : sequence, optional
        Post-baseline visits in order; default: sorted unique values of ``visit``.
    covariates : sequence of str
        Common (visit-independent) adjustment terms, e.g. stratification factors.
    log : bool
        Log-transform outcome and baseline; report geometric-mean ratios.
    df_method : {"kenward-roger", "satterthwaite"}
        Small-sample degrees of freedom (see module docstring).
    conf_level : float
        Level of the t intervals.

    Returns
    -------
    MMRMResult
        ``table``: per visit, each arm against the reference.
    """
    level = require_probability(conf_level, "conf_level")
    covariates = tuple(covariates)
    require_columns(data, (outcome, subject, visit, arm, baseline, *covariates), context=_CTX)
    levels = arm_levels(data[arm], reference, context=_CTX)
    vis = (
        list(visits)
        if visits is not None
        else sorted(pd.unique(data[visit].dropna()), key=lambda v: (str(type(v)), v))
    )
    if len(vis) < 1:
        raise AnalysisDataError(f"{_CTX}: no visits in column {visit!r}.")
    d, n_excl = _design(data, outcome, subject, visit, arm, baseline, levels, vis, covariates, log)
    sigma, converged = _fit(d)
    t, k = len(vis), len(levels)
    p = len(d.terms)
    contrasts = np.zeros(((k - 1) * t, p))
    for a in range(k - 1):
        for v in range(t):
            contrasts[a * t + v, t * (1 + a) + v] = 1.0
    lsm = _lsmean_vectors(d, t, k)
    beta, phi, var, df = _inference(sigma, d, df_method, np.vstack([contrasts, lsm]))
    n_c = len(contrasts)
    table = _estimates(
        contrasts @ beta,
        var[:n_c],
        df[:n_c],
        level,
        log,
        {
            "visit": [vis[v] for a in range(k - 1) for v in range(t)],
            "contrast": [f"{levels[a + 1]} vs {levels[0]}" for a in range(k - 1) for v in range(t)],
        },
    )
    lsmeans = _estimates(
        lsm @ beta,
        var[n_c:],
        df[n_c:],
        level,
        log,
        {
            "visit": [vis[v] for a in range(k) for v in range(t)],
            "arm": [str(levels[a]) for a in range(k) for v in range(t)],
        },
    )
    coefficients = pd.DataFrame({"term": d.terms, "estimate": beta, "se": np.sqrt(np.diag(phi))})
    return MMRMResult(
        table=table,
        lsmeans=lsmeans,
        coefficients=coefficients,
        covariance=pd.DataFrame(sigma, index=[str(v) for v in vis], columns=[str(v) for v in vis]),
        df_method=df_method,
        log_likelihood=_reml_loglik(sigma, d),
        n_subjects=d.n_subjects,
        n_obs=d.n_obs,
        visits=tuple(str(v) for v in vis),
        arm=arm,
        reference=str(levels[0]),
        log=log,
        converged=converged,
        conf_level=level,
    )


def _lsmean_vectors(d: _Design, t: int, k: int) -> np.ndarray:
    """Rows of L giving each arm's mean at each visit at the mean baseline and covariates."""
    p = len(d.terms)
    out = np.zeros((k * t, p))
    cov_start = t * (k + 1)
    for a in range(k):
        for v in range(t):
            row = np.zeros(p)
            row[v] = 1.0
            if a > 0:
                row[t * a + v] = 1.0
            row[t * k + v] = d.center[t * k]  # mean baseline
            row[cov_start:] = d.center[cov_start:]
            out[a * t + v] = row
    return out


def _estimates(
    est: np.ndarray, var: np.ndarray, df: np.ndarray, level: float, log: bool, labels: dict[str, list[object]]
) -> pd.DataFrame:
    se = np.sqrt(var)
    tval = est / se
    q = stats.t.ppf(0.5 + level / 2, df)
    out = pd.DataFrame(labels)
    out["estimate"], out["se"], out["df"], out["t_value"] = est, se, df, tval
    out["ci_low"], out["ci_high"] = est - q * se, est + q * se
    out["p_value"] = 2 * stats.t.sf(np.abs(tval), df)
    if log:
        for col in ("estimate", "ci_low", "ci_high"):
            out[col] = np.exp(out[col])
    return out


def _reml_loglik(sigma: np.ndarray, d: _Design) -> float:
    dev = _gls(sigma, d)[0]
    p = len(d.terms)
    return float(-0.5 * (dev + (d.n_obs - p) * np.log(2 * np.pi)))
