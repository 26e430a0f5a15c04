"""Numerical core of :func:`~immunorehab.analysis.mixed_model` (private).

The model ``y = X b + Z u + e`` with ``u_i ~ N(0, G)`` per subject and ``e ~ N(0, s^2 I)`` is
fitted as lme4 does (Bates et al., *J Stat Softw* 2015, section 3): ``G = s^2 L L'`` with
``L`` lower triangular, the fixed effects and ``s^2`` profiled out, and the profiled REML/ML
deviance minimised over ``theta = tril(L)`` by BFGS (scipy) with its analytic gradient, then
Newton steps. ``L L'`` covers every positive semi-definite G without bounds (the sign of each
column of L is fixed afterwards); a boundary fit (a zero variance, or a correlation of +/-1)
is a zero diagonal entry of L. Because the deviance is even in such an entry, a zero is
probed before it is accepted (see :func:`fit_theta`).

scipy's L-BFGS-B is deliberately not used: it calls OpenBLAS for vectors of length 3, and on
a loaded 2-core machine OpenBLAS's threads made one 3-parameter L-BFGS-B run take ~33 ms
instead of ~0.7 ms (measured; BFGS and TNC do not touch BLAS for such sizes).

Every quantity is computed from per-subject cross-products (``Z_i'Z_i``, ``Z_i'X_i``,
``Z_i'y_i``; q x q and q x p with q <= 2) through the push-through identity
``(I + Z Psi Z')^-1 = I - Z Psi (I + Z'Z Psi)^-1 Z'``, so a deviance costs O(subjects) small
matrix products instead of inverting each subject's n_i x n_i covariance matrix.

The columns of X and the time column of Z are rescaled internally (root mean square 1); the
caller maps estimates back with :attr:`Cross.x_scale` and :attr:`Cross.z_scale`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = [
    "SINGULAR_TOL",
    "Cross",
    "cross_products",
    "fit_theta",
    "lower",
    "profiled",
    "profiled_fit",
    "satterthwaite",
    "unpack",
]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: lme4's ``isSingular`` tolerance on the diagonal of the relative covariance factor.
SINGULAR_TOL = 1e-4


@dataclass(frozen=True, slots=True)
class Cross:
    """Data sorted by subject, rescaled, and its per-subject cross-products."""

    X: np.ndarray  # (n, p)
    y: np.ndarray  # (n,)
    Z: np.ndarray  # (n, q)
    starts: np.ndarray  # (g,) first row of each subject
    ZZ: np.ndarray  # (g, q, q)
    ZX: np.ndarray  # (g, q, p)
    Zy: np.ndarray  # (g, q)
    XX: np.ndarray  # (p, p)
    Xy: np.ndarray  # (p,)
    x_scale: np.ndarray  # (p,) X used here = X given / x_scale
    z_scale: np.ndarray  # (q,) Z used here = Z given / z_scale


def _rms(a: np.ndarray) -> np.ndarray:
    s = np.sqrt(np.mean(a**2, axis=0))
    return np.where(s > 0, s, 1.0)


def cross_products(y: np.ndarray, X: np.ndarray, Z: np.ndarray, groups: np.ndarray) -> Cross:
    """Sort by subject, rescale the columns and accumulate the cross-products."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    x_scale = _rms(X)
    z_scale = np.r_[1.0, _rms(Z[:, 1:])] if Z.shape[1] > 1 else np.ones(1)
    Xs, ys, Zs = X[order] / x_scale, y[order], Z[order] / z_scale
    return Cross(
        X=Xs,
        y=ys,
        Z=Zs,
        starts=starts,
        ZZ=np.add.reduceat(Zs[:, :, None] * Zs[:, None, :], starts, axis=0),
        ZX=np.add.reduceat(Zs[:, :, None] * Xs[:, None, :], starts, axis=0),
        Zy=np.add.reduceat(Zs * ys[:, None], starts, axis=0),
        XX=Xs.T @ Xs,
        Xy=Xs.T @ ys,
        x_scale=x_scale,
        z_scale=z_scale,
    )


@dataclass(frozen=True, slots=True)
class _State:
    """GLS pieces for a relative covariance ``Psi = G / s^2`` (V* = I + Z Psi Z')."""

    logdet_w: float  # sum_i log|I + Z_i'Z_i Psi| = log|V*|
    K: np.ndarray  # (g, q, q) Psi (I + Z_i'Z_i Psi)^-1
    A: np.ndarray  # X'V*^-1 X
    beta: np.ndarray
    Ze: np.ndarray  # (g, q) Z_i'e_i, e = y - X beta
    r2: float  # e'V*^-1 e (penalised residual sum of squares)


def _inv_logdet(W: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Inverses and summed log-determinants of the q x q blocks ``W_i = I + Z_i'Z_i Psi``.

    ``W_i`` has real eigenvalues (it is similar to a symmetric matrix) and V* is positive
    definite exactly when they are all positive; None otherwise. Closed forms for q <= 2.
    """
    q = W.shape[1]
    if q == 1:
        d = W[:, 0, 0]
        return (1.0 / W, float(np.log(d).sum())) if np.all(d > 0) else None
    if q == 2:
        a, b, c, d = W[:, 0, 0], W[:, 0, 1], W[:, 1, 0], W[:, 1, 1]
        det = a * d - b * c
        if not (np.all(det > 0) and np.all(a + d > 0)):
            return None
        inv = np.stack([d, -b, -c, a], axis=-1).reshape(-1, 2, 2) / det[:, None, None]
        return inv, float(np.log(det).sum())
    if np.linalg.eigvals(W).real.min() <= 0:
        return None
    return np.linalg.inv(W), float(np.linalg.slogdet(W)[1].sum())


def _state(psi: np.ndarray, c: Cross) -> _State | None:
    """The pieces at ``psi``, or None where V* is not positive definite / A is singular."""
    q, p = c.ZX.shape[1:]
    found = _inv_logdet(np.eye(q) + c.ZZ @ psi)
    if found is None:
        return None
    K = psi @ found[0]
    KZX = (K @ c.ZX).reshape(-1, p)
    A = c.XX - c.ZX.reshape(-1, p).T @ KZX
    b = c.Xy - KZX.T @ c.Zy.ravel()
    try:
        beta = np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        return None
    e = c.y - c.X @ beta
    Ze = np.add.reduceat(c.Z * e[:, None], c.starts, axis=0)
    r2 = float(e @ e - np.sum(Ze * (K @ Ze[:, :, None])[:, :, 0]))
    return _State(found[1], K, A, beta, Ze, r2)


@functools.cache
def _tril(q: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.tril_indices(q)
    return rows, cols


def lower(theta: np.ndarray, q: int) -> np.ndarray:
    """Lower-triangular factor from its row-major ``tril`` entries."""
    L = np.zeros((q, q))
    L[_tril(q)] = theta
    return L


def unpack(tau: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    """Symmetric ``G`` from its ``tril`` entries and ``s^2`` (the last entry)."""
    G = lower(tau[:-1], q)
    return G + np.tril(G, -1).T, float(tau[-1])


def _profiled_value(st: _State, c: Cross, reml: bool) -> tuple[float, float]:
    """Profiled deviance (with the 2 pi constant, as lme4) and the profiled ``s^2``."""
    n, p = c.X.shape
    nu = n - p if reml else n
    s2 = st.r2 / nu
    dev = st.logdet_w + nu * (1.0 + _LOG_2PI + np.log(s2))
    if reml:
        dev += float(np.linalg.slogdet(st.A)[1])
    return float(dev), float(s2)


def profiled(theta: np.ndarray, c: Cross, reml: bool) -> tuple[float, np.ndarray]:
    """Profiled REML/ML deviance at ``theta`` and its analytic gradient.

    With ``C = sum Z_i'V*^-1 Z_i``, ``B_i = Z_i'V*^-1 X_i``, ``w_i = Z_i'V*^-1 e_i`` and
    ``Q = C - [REML] sum B_i A^-1 B_i' - nu / r2 sum w_i w_i'``, the derivative along
    ``dPsi = E L' + L E'`` is ``tr(dPsi Q)``, so the gradient is ``2 tril(Q L)``.
    """
    q = c.ZZ.shape[1]
    L = lower(theta, q)
    st = _state(L @ L.T, c)
    if st is None or not st.r2 > 0:
        return np.inf, np.zeros_like(theta)
    dev, _ = _profiled_value(st, c, reml)
    n, p = c.X.shape
    ZZK = c.ZZ @ st.K
    w = st.Ze - (ZZK @ st.Ze[:, :, None])[:, :, 0]
    Q = (c.ZZ - ZZK @ c.ZZ).sum(axis=0) - ((n - p if reml else n) / st.r2) * (w.T @ w)
    if reml:
        B = c.ZX - ZZK @ c.ZX
        Q -= np.tensordot(B @ np.linalg.inv(st.A), B, axes=([0, 2], [0, 2]))
    grad: np.ndarray = 2.0 * (Q @ L)[_tril(q)]
    return dev, grad


def profiled_fit(theta: np.ndarray, c: Cross, reml: bool) -> tuple[float, np.ndarray, float]:
    """Deviance, fixed effects (internal scale) and ``s^2`` at ``theta``."""
    L = lower(theta, c.ZZ.shape[1])
    st = _state(L @ L.T, c)
    if st is None:
        raise np.linalg.LinAlgError("singular fixed-effects design at the optimum")
    dev, s2 = _profiled_value(st, c, reml)
    return dev, st.beta, s2


# --------------------------------------------------------------------------- optimisation

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _diag_mask(q: int) -> np.ndarray:
    rows, cols = _tril(q)
    mask: np.ndarray = rows == cols
    return mask


def _moment_start(c: Cross, diag: np.ndarray) -> np.ndarray:
    """A second start: between/within ratio of the subjects' mean OLS residuals (ANOVA moments)."""
    n = len(c.y)
    beta = np.linalg.lstsq(c.X, c.y, rcond=None)[0]
    e = c.y - c.X @ beta
    sizes = np.diff(np.r_[c.starts, n])
    means = np.add.reduceat(e, c.starts) / sizes
    within = float(np.sum((e - np.repeat(means, sizes)) ** 2)) / max(n - len(sizes), 1)
    between = float(np.var(means, ddof=1)) - within * float(np.mean(1.0 / sizes)) if len(sizes) > 1 else 0.0
    ratio = np.sqrt(max(between, 0.0) / within) if within > 0 else 1.0
    return np.where(diag, float(np.clip(ratio, 0.05, 10.0)), 0.0)


def _gradient_jacobian(fun: Objective, x: np.ndarray) -> np.ndarray:
    """Hessian by central differences of the analytic gradient."""
    k = len(x)
    H = np.empty((k, k))
    for i in range(k):
        h = 1e-5 * max(abs(float(x[i])), 0.1)
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        H[:, i] = (fun(up)[1] - fun(down)[1]) / (2 * h)
    return (H + H.T) / 2


def _newton(fun: Objective, x: np.ndarray, steps: int = 8) -> np.ndarray:
    """Newton steps from the quasi-Newton stopping point to the optimum (to ~1e-10).

    The Satterthwaite df depend on the curvature at the optimum and the deviance is flat
    near its minimum, so the optimiser's own tolerance is not enough.
    """
    dev, g = fun(x)
    for _ in range(steps):
        if not np.isfinite(dev):
            break
        H = _gradient_jacobian(fun, x)
        if not np.all(np.isfinite(H)) or np.linalg.eigvalsh(H).min() <= 0:
            break
        step = np.linalg.solve(H, g)
        new = x - step
        d_new, g_new = fun(new)
        if not d_new <= dev + 1e-12 * abs(dev):
            break
        x, dev, g = new, d_new, g_new
        if np.max(np.abs(step)) <= 1e-11 * (1.0 + float(np.max(np.abs(x)))):
            break
    return x


def _local(fun: Objective, start: np.ndarray) -> tuple[float, np.ndarray]:
    """Quasi-Newton (BFGS, analytic gradient) then Newton polish; ``(deviance, theta)``."""
    res = optimize.minimize(fun, start, jac=True, method="BFGS", options={"gtol": 1e-8, "maxiter": 1000})
    theta = np.asarray(res.x)
    if not np.isfinite(fun(theta)[0]):
        return np.inf, theta
    theta = _newton(fun, theta)
    return fun(theta)[0], theta


def _escape_boundary(fun: Objective, dev: float, theta: np.ndarray, diag: np.ndarray) -> np.ndarray | None:
    """A start with lower deviance next to a zero diagonal entry, or None.

    The deviance is even in each diagonal entry of ``L`` with the entries after it in its
    column, so its gradient there vanishes whether or not zero is the minimum: probe it.
    """
    for j in np.flatnonzero(diag & (np.abs(theta) < SINGULAR_TOL)):
        for value in (1e-3, 1e-2, 0.1, 0.5):
            probe = theta.copy()
            probe[j] = value
            if fun(probe)[0] < dev - 1e-9 * max(1.0, abs(dev)):
                return probe
    return None


def _canonical(theta: np.ndarray, q: int) -> np.ndarray:
    """Flip the sign of each column of ``L`` with a negative diagonal (same ``L L'``)."""
    L = lower(theta, q)
    L = L * np.where(np.diag(L) < 0, -1.0, 1.0)[None, :]
    out: np.ndarray = L[_tril(q)]
    return out


def fit_theta(c: Cross, reml: bool) -> tuple[np.ndarray, str] | None:
    """Minimise the profiled deviance over ``theta`` (unconstrained: ``L L'`` covers every
    PSD ``G``, and the diagonal's sign is fixed afterwards).

    Two starts (lme4's identity and a moment estimate) must agree; a zero variance must
    survive a probe away from zero. Otherwise Nelder-Mead restarts from the best point.
    Returns ``(theta, optimizer)``, or None when the best point is not stationary.
    """
    q = c.ZZ.shape[1]
    diag = _diag_mask(q)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return profiled(theta, c, reml)

    found = sorted(
        (_local(fun, start) for start in (np.where(diag, 1.0, 0.0), _moment_start(c, diag))),
        key=lambda t: t[0],
    )
    method = "bfgs"
    escape = _escape_boundary(fun, *found[0], diag)
    if escape is not None:
        found = sorted([*found, _local(fun, escape)], key=lambda t: t[0])
        method = "bfgs+restart"
    if not abs(found[0][0] - found[1][0]) < 1e-6 and escape is None:
        res = optimize.minimize(
            lambda t: fun(t)[0],
            found[0][1],
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
        )
        found = sorted([*found, _local(fun, np.asarray(res.x))], key=lambda t: t[0])
        method = "bfgs+nelder-mead"
    dev, best = found[0]
    if not np.isfinite(dev) or np.max(np.abs(fun(best)[1])) > 1e-3:
        return None
    return _canonical(best, q), method


# --------------------------------------------------------------------------- Satterthwaite


def _full_deviance(tau: np.ndarray, c: Cross, reml: bool) -> float:
    """REML/ML deviance in ``(tril G, s^2)`` (no 2 pi constant), G not necessarily PSD."""
    G, s2 = unpack(tau, c.ZZ.shape[1])
    if not s2 > 0:
        return np.inf
    st = _state(G / s2, c)
    if st is None:
        return np.inf
    n, p = c.X.shape
    dev = n * np.log(s2) + st.logdet_w + st.r2 / s2
    if reml:
        dev += float(np.linalg.slogdet(st.A)[1]) - p * np.log(s2)
    return float(dev)


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


def satterthwaite(tau: np.ndarray, c: Cross, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the fixed effects and their Satterthwaite df (as lmerTest).

    ``df_j = 2 Phi_jj^2 / (g' A g)`` with ``g = d Phi_jj / d tau`` (analytic:
    ``Phi X'V^-1 (dV/d tau_r) V^-1 X Phi``) and ``A = 2 H^-1`` the inverse Hessian of the
    deviance in ``tau = (tril G, s^2)`` by numerical differences.
    """
    q = c.ZZ.shape[1]
    G, s2 = unpack(tau, q)
    st = _state(G / s2, c)
    if st is None:
        raise np.linalg.LinAlgError("V not positive definite at the optimum")
    phi = s2 * np.linalg.inv(st.A)
    ZZK = c.ZZ @ st.K
    B = c.ZX - ZZK @ c.ZX  # Z_i'V*^-1 X_i
    KZX = st.K @ c.ZX
    mats = []
    for r in range(len(tau) - 1):
        unit = np.zeros(len(tau))
        unit[r] = 1.0
        mats.append(np.einsum("gqp,qr,grs->ps", B, unpack(unit, q)[0], B))
    mats.append(c.XX - 2 * np.einsum("gqp,gqr->pr", c.ZX, KZX) + np.einsum("gqp,gqr,grs->ps", KZX, c.ZZ, KZX))
    grads = np.array([np.diag(phi @ M @ phi) / s2**2 for M in mats])  # (k, p)
    H = _hessian(lambda t: _full_deviance(t, c, reml), tau)
    A = 2.0 * np.linalg.inv(H)
    df = 2.0 * np.diag(phi) ** 2 / np.einsum("kp,kl,lp->p", grads, A, grads)
    return phi, df
