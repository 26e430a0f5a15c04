"""Log-logistic standard-curve models declared by their parameters, mean function and inverse.

As lifelines declares a fitter by ``_fitted_parameter_names`` and a hazard, each model here
declares only its parameter names, its mean function (with analytic gradient) and its
inverse; :class:`CurveModel` does the rest for every model: starting values, nonlinear least
squares with :func:`scipy.optimize.least_squares`, residual standard error and the
covariance of the estimates (Gauss-Newton/Jacobian as R's ``nls``, or the full Hessian of
the residual sum of squares as R's ``drc::drm``).

The five-parameter logistic (5PL) of immunoassays (Gottschalk & Dunn 2005; domain.md D3)::

    y = d + (a - d) / (1 + (x / c)**b)**g          x = concentration > 0 (x = 0 allowed)

``a`` is the response at zero concentration, ``d`` the response at infinite concentration,
``c`` the inflection concentration (the EC50 for the 4PL), ``b`` the slope and ``g`` the
asymmetry; the 4PL is ``g = 1``. A rising curve has ``d > a`` (with ``b > 0``). The model is
fitted on log-concentration: internally the parameters are ``(a, b, log c, d, log g)`` so
that ``c`` and ``g`` stay positive.

Mapping to R's drc (``LL.4``/``LL.5``: ``f(x) = c + (d - c) / (1 + exp(b (log x - log e)))^f``)
is a renaming, exact for estimates and standard errors::

    drc b = b,  drc c = d,  drc d = a,  drc e = c,  drc f = g

R's ``SSfpl(log x, A, B, xmid, scal)`` is the 4PL with ``a = B, d = A, c = exp(xmid),
b = -1/scal`` (equivalently ``a = A, d = B, b = 1/scal``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares
from scipy.special import expit

__all__ = [
    "CurveModel",
    "FitResult",
    "FivePL",
    "FourPL",
    "ModelName",
    "SEMethod",
    "get_model",
]

Array = NDArray[np.float64]
ModelName = Literal["4PL", "5PL"]
#: ``jacobian``: sigma^2 (J'WJ)^-1 as R's nls (Bates & Watts); ``hessian``: sigma^2 (H/2)^-1 with H
#: the full Hessian of the weighted residual sum of squares, as R's drc (``vcov.drc``).
SEMethod = Literal["jacobian", "hessian"]

_TOL = 1e-12


@dataclass(frozen=True, slots=True)
class FitResult:
    """The raw outcome of a least-squares fit (public parametrisation).

    ``params``/``se`` follow :attr:`CurveModel.param_names`; fixed parameters have SE 0.
    """

    params: Array
    se: Array
    cov: Array
    rss: float
    df: int
    n: int
    converged: bool
    message: str
    nfev: int


class CurveModel(ABC):
    """Base of the standard-curve models: a subclass declares parameters, mean and inverse."""

    name: ClassVar[ModelName]
    #: Public parameter names, in order.
    param_names: ClassVar[tuple[str, ...]]
    #: Parameters fitted on the log scale (must stay positive).
    log_params: ClassVar[frozenset[str]] = frozenset({"c", "g"})

    # -- declarations ----------------------------------------------------------------
    @abstractmethod
    def mean(self, x: Array, p: Array) -> Array:
        """Expected response at concentrations ``x`` for public parameters ``p``."""

    @abstractmethod
    def gradient(self, x: Array, p: Array) -> Array:
        """d mean / d internal parameters, shape (n, k) (log scale for :attr:`log_params`)."""

    @abstractmethod
    def inverse(self, y: Array, p: Array) -> Array:
        """Concentration giving response ``y``; NaN outside the open range of the asymptotes."""

    # -- parametrisations ----------------------------------------------------------------
    @property
    def k(self) -> int:
        return len(self.param_names)

    def to_internal(self, p: Array) -> Array:
        q = np.array(p, dtype=float)
        for i, name in enumerate(self.param_names):
            if name in self.log_params:
                q[i] = np.log(q[i])
        return q

    def to_public(self, q: Array) -> Array:
        p = np.array(q, dtype=float)
        for i, name in enumerate(self.param_names):
            if name in self.log_params:
                p[i] = np.exp(p[i])
        return p

    def _dpublic(self, p: Array) -> Array:
        """d public / d internal (diagonal) at ``p``."""
        return np.array([p[i] if n in self.log_params else 1.0 for i, n in enumerate(self.param_names)])

    # -- starting values ----------------------------------------------------------------
    def start(self, x: Array, y: Array) -> Array:
        """Self-starting values in the spirit of R's SSfpl: asymptotes just beyond the data,
        slope and inflection from a logit-linear regression on log-concentration."""
        levels = np.unique(x)
        means = np.array([y[x == v].mean() for v in levels])
        span = float(np.ptp(y)) or max(abs(float(y.mean())), 1.0)
        rising = means[-1] >= means[0]
        lo, hi = float(y.min()) - 0.05 * span, float(y.max()) + 0.05 * span
        a, d = (lo, hi) if rising else (hi, lo)
        pos = x > 0
        frac = np.clip((y[pos] - d) / (a - d), 1e-6, 1 - 1e-6)
        lx = np.log(x[pos])
        b, logc = 1.0, float(np.median(lx)) if lx.size else 0.0
        if np.unique(lx).size >= 2:
            slope, intercept = np.polyfit(lx, np.log(1.0 / frac - 1.0), 1)
            if slope > 0 and np.isfinite(slope):
                b, logc = float(slope), float(-intercept / slope)
        values = {"a": a, "b": b, "c": float(np.exp(logc)), "d": d, "g": 1.0}
        return np.array([values[n] for n in self.param_names])

    # -- fitting ----------------------------------------------------------------------------
    def fit(
        self,
        x: Array,
        y: Array,
        *,
        weights: Array | None = None,
        fixed: dict[str, float] | None = None,
        start: Array | None = None,
        se_method: SEMethod = "jacobian",
    ) -> FitResult:
        """Weighted least squares; ``weights`` are variance weights (RSS = sum w r^2)."""
        fixed = dict(fixed or {})
        w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
        sw = np.sqrt(w)
        p0 = self.start(x, y) if start is None else np.asarray(start, dtype=float)
        for name, value in fixed.items():
            p0[self.param_names.index(name)] = value
        q0 = self.to_internal(p0)
        free = np.array([n not in fixed for n in self.param_names])

        def full(qf: Array) -> Array:
            q = q0.copy()
            q[free] = qf
            return q

        def residuals(qf: Array) -> Array:
            return np.asarray(sw * (self.mean(x, self.to_public(full(qf))) - y), dtype=float)

        def jac(qf: Array) -> Array:
            return np.asarray(sw[:, None] * self.gradient(x, self.to_public(full(qf)))[:, free], dtype=float)

        with np.errstate(all="ignore"):
            res = least_squares(
                residuals, q0[free], jac=jac, method="lm", xtol=_TOL, ftol=_TOL, gtol=_TOL, max_nfev=4000
            )
        q = full(res.x)
        p = self.to_public(q)
        r = res.fun
        rss = float(r @ r)
        n, kfree = y.size, int(free.sum())
        df = n - kfree
        cov_free = self._covariance(x, y, w, q, free, rss, df, se_method)
        cov = np.zeros((self.k, self.k))
        scale = self._dpublic(p)[free]
        cov[np.ix_(free, free)] = cov_free * np.outer(scale, scale)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        return FitResult(
            params=p,
            se=se,
            cov=cov,
            rss=rss,
            df=df,
            n=n,
            converged=bool(res.success) and bool(np.all(np.isfinite(p))),
            message=str(res.message),
            nfev=int(res.nfev),
        )

    def _covariance(
        self,
        x: Array,
        y: Array,
        w: Array,
        q: Array,
        free: NDArray[np.bool_],
        rss: float,
        df: int,
        method: SEMethod,
    ) -> Array:
        kf = int(free.sum())
        if df <= 0:
            return np.full((kf, kf), np.nan)
        s2 = rss / df
        p = self.to_public(q)
        jac = self.gradient(x, p)[:, free]
        info = jac.T @ (w[:, None] * jac)
        if method == "hessian":
            info = info + self._second_order(x, y, w, q, free)
        try:
            with np.errstate(all="ignore"):
                return np.asarray(np.linalg.inv(info) * s2, dtype=float)
        except np.linalg.LinAlgError:
            return np.full((kf, kf), np.nan)

    def _second_order(self, x: Array, y: Array, w: Array, q: Array, free: NDArray[np.bool_]) -> Array:
        """sum_i w_i r_i d2 f_i / dq dq' by central differences of the analytic gradient."""
        r = self.mean(x, self.to_public(q)) - y
        idx = np.flatnonzero(free)
        out = np.zeros((idx.size, idx.size))
        for col, j in enumerate(idx):
            h = 1e-5 * max(1.0, abs(q[j]))
            up, down = q.copy(), q.copy()
            up[j] += h
            down[j] -= h
            d2 = (self.gradient(x, self.to_public(up)) - self.gradient(x, self.to_public(down)))[:, free] / (
                2 * h
            )
            out[:, col] = (w * r) @ d2
        return 0.5 * (out + out.T)


def _core(x: Array, a: float, b: float, c: float, d: float, g: float) -> tuple[Array, Array, Array, Array]:
    """Pieces of the 5PL on log-concentration: (mean, q, g*sigmoid(s)*q, log(1+e^s)).

    ``s = b (log x - log c)``, ``L = log(1 + e^s)``, ``q = exp(-g L)`` and the mean is
    ``d + (a - d) q``. Zero concentrations give ``s = -inf`` (b > 0) or ``+inf`` (b < 0).
    """
    with np.errstate(divide="ignore"):
        t = np.log(x) - np.log(c)
    with np.errstate(invalid="ignore"):
        s = np.where(np.isinf(t), np.where(t * b > 0, np.inf, -np.inf), b * t)
    big_l = np.logaddexp(0.0, s)
    q = np.exp(-g * big_l)
    sig = expit(s)  # logistic(s), exact at +-inf
    return d + (a - d) * q, q, g * sig * q, big_l


def _finite_product(u: Array, v: Array) -> Array:
    """u * v with 0 wherever u == 0 (limits at zero concentration)."""
    with np.errstate(invalid="ignore"):
        return np.where(u == 0, 0.0, u * v)


class FivePL(CurveModel):
    """Five-parameter log-logistic: ``y = d + (a - d) / (1 + (x/c)^b)^g`` (asymmetric for g != 1)."""

    name: ClassVar[ModelName] = "5PL"
    param_names: ClassVar[tuple[str, ...]] = ("a", "b", "c", "d", "g")

    def mean(self, x: Array, p: Array) -> Array:
        a, b, c, d, g = p
        return _core(x, a, b, c, d, g)[0]

    def gradient(self, x: Array, p: Array) -> Array:
        a, b, c, d, g = p
        _, q, dq, big_l = _core(x, a, b, c, d, g)
        with np.errstate(divide="ignore"):
            t = np.log(x) - np.log(c)
        amp = a - d
        return np.column_stack(
            [
                q,
                -amp * _finite_product(dq, t),  # d/db
                amp * dq * b,  # d/dlog c
                1.0 - q,
                -amp * g * _finite_product(q, big_l),  # d/dlog g
            ]
        )

    def inverse(self, y: Array, p: Array) -> Array:
        a, b, c, d, g = p
        with np.errstate(all="ignore"):
            ratio = (a - d) / (np.asarray(y, dtype=float) - d)
            inner = ratio ** (1.0 / g) - 1.0
            x = c * inner ** (1.0 / b)
        return np.where((ratio > 1.0) & (inner > 0) & np.isfinite(x), x, np.nan)


class FourPL(FivePL):
    """Four-parameter log-logistic: ``y = d + (a - d) / (1 + (x/c)^b)``, symmetric on log x."""

    name: ClassVar[ModelName] = "4PL"
    param_names: ClassVar[tuple[str, ...]] = ("a", "b", "c", "d")

    def mean(self, x: Array, p: Array) -> Array:
        return np.asarray(super().mean(x, np.append(p, 1.0)), dtype=float)

    def gradient(self, x: Array, p: Array) -> Array:
        return np.asarray(super().gradient(x, np.append(p, 1.0))[:, :4], dtype=float)

    def inverse(self, y: Array, p: Array) -> Array:
        return np.asarray(super().inverse(y, np.append(p, 1.0)), dtype=float)


_MODELS: dict[str, CurveModel] = {"4PL": FourPL(), "5PL": FivePL()}


def get_model(name: str) -> CurveModel:
    """The model declared under ``name`` (``"4PL"`` or ``"5PL"``)."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"model must be one of {', '.join(_MODELS)}, got {name!r}") from None
