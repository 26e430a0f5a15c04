"""Standard curves: :func:`fit_standard_curve` and the fitted :class:`StandardCurve`.

A curve that cannot be fitted (too few standards, flat, non-monotone, no convergence,
unidentifiable parameters) is *returned* with ``status == "failed"`` and the ``reason``; it
is never raised, so the other analytes of a plate go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from immunorehab.cytokines.models import CurveModel, FitResult, ModelName, SEMethod, get_model
from immunorehab.errors import CurveFitError

__all__ = ["CurveStatus", "StandardCurve", "WeightScheme", "fit_standard_curve"]

Array = NDArray[np.float64]
#: ``None``: unweighted; ``"1/y2"``: variance proportional to the squared observed response;
#: ``"1/var"``: inverse of the variance of the replicate responses at each standard level.
WeightScheme = Literal["1/y2", "1/var"] | None

#: p-value of the F test of the curve against a flat line above which a curve is "flat".
FLAT_P = 0.01
#: Level means spanning no more than this fraction of the largest are "flat".
FLAT_SPAN = 0.05
#: |Spearman rho| of level means vs concentration below which a curve is "non-monotone".
MONOTONE_RHO = 0.8


class CurveStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StandardCurve:
    """A fitted (or failed) standard curve.

    Attributes
    ----------
    model : {"4PL", "5PL"}
    params, se : dict
        Estimates and standard errors by name (``a, b, c, d[, g]``; see
        :mod:`immunorehab.cytokines.models`); NaN when the fit failed.
    rse : float
        Residual standard error ``sqrt(RSS_w / df)`` (response units when unweighted).
    df, n : int
        Residual degrees of freedom and number of points fitted.
    status, reason : CurveStatus, str
        ``ok`` or ``failed`` with a human-readable reason.
    converged : bool
        Whether the optimiser reported convergence.
    r_squared : float
        1 - RSS/TSS (unweighted), the classic acceptance figure (domain.md D3: > 0.99).
    conc_range : (float, float)
        Lowest and highest non-zero standard concentration.
    """

    model: ModelName
    params: dict[str, float]
    se: dict[str, float]
    rse: float
    df: int
    n: int
    status: CurveStatus
    reason: str = ""
    converged: bool = False
    r_squared: float = math.nan
    weights: WeightScheme = None
    se_method: SEMethod = "jacobian"
    conc_range: tuple[float, float] = (math.nan, math.nan)
    cov: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    #: What the user should know about an ``ok`` fit (e.g. a 5PL that fell back to the 4PL).
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status is CurveStatus.OK

    @property
    def rising(self) -> bool:
        """True when the response increases with concentration."""
        return bool((self.params["d"] - self.params["a"]) * self.params["b"] > 0)

    def _vector(self) -> Array:
        if not self.ok:
            raise CurveFitError(f"the {self.model} curve failed ({self.reason}): it cannot be evaluated")
        model = get_model(self.model)
        return np.array([self.params[n] for n in model.param_names])

    def predict(self, concentration: ArrayLike) -> Array:
        """Expected response at ``concentration`` (same units as the standards)."""
        x = np.asarray(concentration, dtype=float)
        return get_model(self.model).mean(np.atleast_1d(x), self._vector()).reshape(x.shape)

    def back_calculate(self, response: ArrayLike) -> Array:
        """Concentration for each response; NaN where the response is outside the asymptotes."""
        y = np.asarray(response, dtype=float)
        return get_model(self.model).inverse(np.atleast_1d(y), self._vector()).reshape(y.shape)

    def to_drc(self) -> dict[str, float]:
        """Estimates named as R's drc ``LL.4``/``LL.5`` (``b, c, d, e[, f]``)."""
        out = {"b": self.params["b"], "c": self.params["d"], "d": self.params["a"], "e": self.params["c"]}
        if "g" in self.params:
            out["f"] = self.params["g"]
        return out

    def summary(self) -> pd.DataFrame:
        """One row per parameter: estimate, std_error, t_value (as R's coefficient table)."""
        names = list(self.params)
        est = np.array([self.params[n] for n in names])
        se = np.array([self.se[n] for n in names])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, est / se, np.nan)
        return pd.DataFrame({"parameter": names, "estimate": est, "std_error": se, "t_value": t})


def _failed(
    model: ModelName, reason: str, n: int, weights: WeightScheme, se_method: SEMethod
) -> StandardCurve:
    names = get_model(model).param_names
    nan = dict.fromkeys(names, math.nan)
    return StandardCurve(
        model=model,
        params=nan,
        se=dict(nan),
        rse=math.nan,
        df=max(n - len(names), 0),
        n=n,
        status=CurveStatus.FAILED,
        reason=reason,
        weights=weights,
        se_method=se_method,
    )


def _weights(x: Array, y: Array, scheme: WeightScheme | Sequence[float] | Array) -> tuple[Array | None, str]:
    if scheme is None:
        return None, ""
    if isinstance(scheme, str):
        if scheme == "1/y2":
            if np.any(y <= 0):
                return None, "1/y2 weights need positive responses"
            return 1.0 / y**2, ""
        if scheme == "1/var":
            var = np.array([np.var(y[x == v], ddof=1) if np.sum(x == v) > 1 else np.nan for v in x])
            if np.any(~np.isfinite(var)) or np.any(var <= 0):
                return None, "1/var weights need at least 2 replicates with different responses per standard"
            return 1.0 / var, ""
        raise ValueError(f"weights must be None, '1/y2', '1/var' or an array, got {scheme!r}")
    w = np.asarray(scheme, dtype=float)
    if w.shape != y.shape or np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weights must be {y.size} positive finite numbers")
    return w, ""


def _precheck(x: Array, y: Array, k: int) -> str:
    levels = np.unique(x[x > 0])
    if levels.size < k:
        return f"too few standards: {levels.size} non-zero concentration levels, the model needs at least {k}"
    if y.size <= k:
        return f"too few points: {y.size} for {k} parameters (no residual degrees of freedom)"
    means = np.array([y[x == v].mean() for v in levels])
    span = float(np.ptp(means))
    if span <= FLAT_SPAN * float(np.max(np.abs(means))):
        return f"flat: the standards span only {span:.3g} signal units ({FLAT_SPAN:.0%} or less of the top)"
    if levels.size >= 4:
        rho = float(stats.spearmanr(levels, means).statistic)
        if not abs(rho) >= MONOTONE_RHO:
            return (
                f"non-monotone: Spearman rho of response vs concentration {rho:.2f} "
                f"(need |rho| >= {MONOTONE_RHO})"
            )
    return ""


def _postcheck(fit: FitResult, x: Array, y: Array, w: Array | None, k: int, free: Array) -> str:
    if not fit.converged:
        return f"did not converge: {fit.message}"
    if not np.all(np.isfinite(fit.se)) or not np.all(fit.se[free] > 0):
        return "parameters not identifiable (singular covariance): add standards covering both plateaus"
    if fit.params.size == 5 and _degenerate(fit, x):
        return (
            "5PL not identifiable: inflection and asymmetry run off together "
            f"(c = {fit.params[2]:.3g}, g = {fit.params[4]:.3g}); the standards do not show the asymmetry: "
            "fit a 4PL"
        )
    ww = np.ones_like(y) if w is None else w
    ybar = float(np.sum(ww * y) / np.sum(ww))
    tss = float(np.sum(ww * (y - ybar) ** 2))
    if fit.df > 0 and tss > 0 and k > 1:
        f_stat = ((tss - fit.rss) / (k - 1)) / (fit.rss / fit.df) if fit.rss > 0 else math.inf
        p = float(stats.f.sf(f_stat, k - 1, fit.df))
        if p > FLAT_P:
            return f"flat: the curve explains no more than a flat line (F test p = {p:.3g})"
    return ""


def _best_fit(
    cm: CurveModel, x: Array, y: Array, w: Array | None, fixed: dict[str, float] | None, se_method: SEMethod
) -> FitResult:
    """Self-started fit; for the 5PL also a fit started from the 4PL solution (g = 1).

    The 5PL has a degenerate limit (c and g running off together) that a poor start can drift
    into; of the converged candidates with finite standard errors the lowest RSS wins.
    """
    first = cm.fit(x, y, weights=w, fixed=fixed, se_method=se_method)
    candidates = [first]
    if cm.name == "5PL" and "g" not in (fixed or {}) and _suspect(first, x):
        four = get_model("4PL").fit(x, y, weights=w, fixed=fixed)
        if four.converged and np.all(np.isfinite(four.params)):
            start = np.append(four.params, 1.0)
            candidates.append(cm.fit(x, y, weights=w, fixed=fixed, start=start, se_method=se_method))
    good = [f for f in candidates if not _suspect(f, x)]
    return min(good or candidates, key=lambda f: f.rss)


def _suspect(fit: FitResult, x: Array) -> bool:
    """Not converged, no finite SEs, or c/g drifting towards the degenerate 5PL limit."""
    if not fit.converged or not np.all(np.isfinite(fit.se)):
        return True
    return _degenerate(fit, x)


def _degenerate(fit: FitResult, x: Array) -> bool:
    """5PL with c far outside the standards or g extreme: the c, g -> infinity limit."""
    if fit.params.size < 5:
        return False
    c, g = fit.params[2], fit.params[4]
    pos = x[x > 0]
    return not (pos.min() / 1e3 < c < pos.max() * 1e3 and 0.02 < g < 50)


def fit_standard_curve(
    concentration: ArrayLike,
    response: ArrayLike,
    *,
    model: ModelName = "4PL",
    weights: WeightScheme | Sequence[float] | Array = None,
    se_method: SEMethod = "jacobian",
    fixed: dict[str, float] | None = None,
    fallback_4pl: bool = True,
) -> StandardCurve:
    """Fit a 4PL or 5PL log-logistic standard curve.

    Parameters
    ----------
    concentration : array_like, shape (n,)
        Standard concentrations (any unit, e.g. pg/mL); ``0`` is allowed (zero standard).
    response : array_like, shape (n,)
        Signal (MFI, OD, ...) of each standard well; rising or falling curves both work.
    model : {"4PL", "5PL"}
    weights : None, "1/y2", "1/var" or array_like
        Variance weights (``RSS = sum w_i r_i^2``); ``"1/y2"`` uses observed responses.
    se_method : {"jacobian", "hessian"}
        Standard errors as R's ``nls`` (Gauss-Newton) or as R's ``drc`` (full Hessian).
    fixed : dict, optional
        Parameters held at a value, e.g. ``{"a": 0.0}`` (as drc's ``fixed=``).
    fallback_4pl : bool
        When a 5PL is not identifiable (the standards do not show an asymmetry: c and g run off
        together, or the covariance is singular), fit the 4PL instead and say so in ``note``.

    Returns
    -------
    StandardCurve
        With ``status`` ``ok``, or ``failed`` and a ``reason`` (never raised).

    Examples
    --------
    >>> conc = [1, 3, 10, 30, 100, 300, 1000]
    >>> curve = fit_standard_curve(conc, [12, 30, 95, 260, 610, 980, 1190])
    >>> curve.status.value
    'ok'
    >>> round(float(curve.back_calculate(curve.predict(50.0))), 6)
    50.0
    """
    cm = get_model(model)
    x = np.asarray(concentration, dtype=float).ravel()
    y = np.asarray(response, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"concentration and response differ in length ({x.size} vs {y.size})")
    keep = np.isfinite(x) & np.isfinite(y)
    if np.any(x[keep] < 0):
        raise ValueError("concentrations must be >= 0")
    x, y = x[keep], y[keep]
    scheme: WeightScheme = weights if isinstance(weights, str) or weights is None else None
    if not isinstance(weights, str) and weights is not None:
        weights = np.asarray(weights, dtype=float)[keep]
    k = cm.k - len(fixed or {})
    reason = _precheck(x, y, k)
    w, why = _weights(x, y, weights) if not reason else (None, "")
    reason = reason or why
    if reason:
        return _failed(cm.name, reason, int(y.size), scheme, se_method)
    fit = _best_fit(cm, x, y, w, fixed, se_method)
    free = np.array([n not in (fixed or {}) for n in cm.param_names])
    reason = _postcheck(fit, x, y, w, k, free)
    if (
        reason
        and cm.name == "5PL"
        and fallback_4pl
        and "not identifiable" in reason
        and "g" not in (fixed or {})
    ):
        four = fit_standard_curve(x, y, model="4PL", weights=weights, se_method=se_method, fixed=fixed)
        if four.ok:
            return replace(four, note=f"{reason.split(':')[0]}; fitted the 4PL instead")
    if reason:
        return _failed(cm.name, reason, int(y.size), scheme, se_method)
    resid = cm.mean(x, fit.params) - y
    tss = float(np.sum((y - y.mean()) ** 2))
    pos = x[x > 0]
    return StandardCurve(
        model=cm.name,
        params={n: float(v) for n, v in zip(cm.param_names, fit.params, strict=True)},
        se={n: float(v) for n, v in zip(cm.param_names, fit.se, strict=True)},
        rse=math.sqrt(fit.rss / fit.df),
        df=fit.df,
        n=fit.n,
        status=CurveStatus.OK,
        converged=fit.converged,
        r_squared=1.0 - float(resid @ resid) / tss if tss > 0 else math.nan,
        weights=scheme,
        se_method=se_method,
        conc_range=(float(pos.min()), float(pos.max())),
        cov=tuple(tuple(float(v) for v in row) for row in fit.cov),
    )
