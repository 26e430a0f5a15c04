"""Sample size and power for the next trial.

* :func:`power_t_test` is R's ``power.t.test`` (``strict = FALSE``): power of the two-sample
  (or one-sample/paired) t test from the noncentral t distribution, solving for whichever of
  ``n``, ``delta`` or ``power`` is left out.
* :func:`power_ancova` adjusts for a baseline measurement correlated ``rho`` with the
  follow-up: the residual SD is ``sd * sqrt(1 - rho^2)`` and the residual df lose one for the
  baseline slope (Borm, Fransen & Lemmens, J Clin Epidemiol 2007).
* :func:`simulated_power` simulates whole trials from a fitted study
  (:func:`planning_model`) and analyses each one by ANCOVA, e.g. to plan a trial in a new
  population with a smaller expected effect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from immunorehab.analysis._validation import require_probability
from immunorehab.analysis.prevalence import wilson_ci
from immunorehab.analysis.results import AncovaResult, PowerResult, SimulatedPowerResult
from immunorehab.errors import AnalysisDataError

__all__ = ["TrialModel", "planning_model", "power_ancova", "power_t_test", "r_zeroin", "simulated_power"]

Alternative = Literal["two.sided", "one.sided"]
TestType = Literal["two.sample", "one.sample", "paired"]
ProgressCallback = Callable[[str, int, int], None]


def _power(n: float, delta: float, sd: float, sig: float, tside: int, tsample: int, df_loss: int) -> float:
    nu = (n - 1) * tsample - df_loss
    if nu <= 0:
        return float("nan")
    qu = stats.t.isf(sig / tside, nu)
    return float(stats.nct.sf(qu, nu, np.sqrt(n / tsample) * delta / sd))


_R_TOL = float(np.finfo(float).eps ** 0.25)


def r_zeroin(
    f: Callable[[float], float], lower: float, upper: float, *, tol: float = _R_TOL, maxit: int = 1000
) -> float:
    """Brent's root finder exactly as R's ``uniroot`` runs it (``R_zeroin2``, netlib zeroin).

    R's ``power.t.test`` solves with ``tol = .Machine$double.eps^0.25``, so its printed ``n``
    is this iteration's answer, not the exact root; reproducing the iteration reproduces R.
    """
    eps = float(np.finfo(float).eps)
    a, b = lower, upper
    fa, fb = f(a), f(b)
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    if fa * fb > 0:
        raise AnalysisDataError(f"no sign change of the power equation between {lower!r} and {upper!r}.")
    c, fc = a, fa
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q, t1, t2 = fa / fc, fb / fc, fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise AnalysisDataError("the power equation did not converge in 1000 iterations.")


def _solve(
    n: float | None,
    delta: float | None,
    sd: float,
    sig: float,
    power: float | None,
    alternative: Alternative,
    tsample: int,
    df_loss: int,
    tol: float,
) -> tuple[float, float, float, Literal["n", "power", "delta"]]:
    missing = [name for name, v in (("n", n), ("delta", delta), ("power", power)) if v is None]
    if len(missing) != 1:
        raise AnalysisDataError(
            f"give exactly two of n, delta and power (leave one to solve for); missing: {missing!r}."
        )
    if sd <= 0:
        raise AnalysisDataError(f"sd must be > 0; got {sd!r}.")
    tside = 2 if alternative == "two.sided" else 1
    if delta is not None and tside == 2:
        delta = abs(delta)
    if power is not None:
        require_probability(power, "power")
    if n is not None and n < 2:
        raise AnalysisDataError(f"n must be at least 2 per group; got {n!r}.")
    if missing == ["power"]:
        assert n is not None and delta is not None
        return n, delta, _power(n, delta, sd, sig, tside, tsample, df_loss), "power"
    assert power is not None
    if missing == ["n"]:
        assert delta is not None
        if delta == 0:
            raise AnalysisDataError("delta = 0: no sample size reaches the requested power.")
        d_ = float(delta)

        def f(x: float) -> float:
            return _power(x, d_, sd, sig, tside, tsample, df_loss) - float(power)

        lo = 2.0 if df_loss == 0 else 2.0 + df_loss / tsample + 1e-6
        if f(1e7) < 0:
            raise AnalysisDataError("the requested power needs more than 1e7 participants per group.")
        return r_zeroin(f, lo, 1e7, tol=tol), delta, power, "n"
    assert n is not None
    n_ = float(n)

    def g(x: float) -> float:
        return _power(n_, x, sd, sig, tside, tsample, df_loss) - float(power)

    return n, r_zeroin(g, sd * 1e-7, sd * 1e7, tol=tol), power, "delta"


def power_t_test(
    *,
    n: float | None = None,
    delta: float | None = None,
    sd: float = 1.0,
    sig_level: float = 0.05,
    power: float | None = None,
    type: TestType = "two.sample",
    alternative: Alternative = "two.sided",
    tol: float = _R_TOL,
) -> PowerResult:
    """Power of a t test, or the ``n`` (per group) or ``delta`` needed for a given power.

    Exactly one of ``n``, ``delta`` and ``power`` is left as None and solved for, as in R,
    with R's root finder and tolerance (``tol = eps^0.25``), so a solved ``n`` or ``delta``
    agrees with R's printed value; pass a smaller ``tol`` for the exact root.

    Examples
    --------
    >>> round(power_t_test(n=20, delta=1).power, 7)
    0.8689528
    >>> round(power_t_test(power=0.90, delta=1).n, 5)
    22.0211
    """
    sig = require_probability(sig_level, "sig_level")
    tsample = 2 if type == "two.sample" else 1
    n_, d_, p_, solved = _solve(n, delta, sd, sig, power, alternative, tsample, 0, tol)
    table = pd.DataFrame(
        [
            {
                "n": n_,
                "delta": d_,
                "sd": sd,
                "sig_level": sig,
                "power": p_,
                "alternative": alternative,
                "design": "t-test",
                "type": type,
            }
        ]
    )
    return PowerResult(
        table=table,
        n=n_,
        delta=d_,
        sd=sd,
        sig_level=sig,
        power=p_,
        alternative=alternative,
        design="t-test",
        solved_for=solved,
    )


def power_ancova(
    *,
    n: float | None = None,
    delta: float | None = None,
    sd: float = 1.0,
    rho: float = 0.0,
    sig_level: float = 0.05,
    power: float | None = None,
    alternative: Alternative = "two.sided",
    tol: float = _R_TOL,
) -> PowerResult:
    """Two-arm ANCOVA power with a baseline correlated ``rho`` with the outcome.

    The t test of the adjusted difference uses the residual SD ``sd * sqrt(1 - rho^2)`` and
    ``2n - 3`` df (one more parameter than the t test).
    """
    sig = require_probability(sig_level, "sig_level")
    if not -1 < rho < 1:
        raise AnalysisDataError(f"rho must be strictly between -1 and 1; got {rho!r}.")
    sd_res = sd * float(np.sqrt(1 - rho**2))
    n_, d_, p_, solved = _solve(n, delta, sd_res, sig, power, alternative, 2, 1, tol)
    table = pd.DataFrame(
        [
            {
                "n": n_,
                "delta": d_,
                "sd": sd,
                "rho": rho,
                "sd_residual": sd_res,
                "sig_level": sig,
                "power": p_,
                "alternative": alternative,
                "design": "ancova",
            }
        ]
    )
    return PowerResult(
        table=table,
        n=n_,
        delta=d_,
        sd=sd,
        sig_level=sig,
        power=p_,
        alternative=alternative,
        design="ancova",
        solved_for=solved,
    )


@dataclass(frozen=True, slots=True)
class TrialModel:
    """Generative model of a two-arm trial with a baseline-adjusted continuous outcome.

    ``baseline ~ N(baseline_mean, baseline_sd^2)``;
    ``outcome = intercept + slope * baseline + effect * [treated] + N(0, residual_sd^2)``,
    on the analysis scale (log scale when ``log``; then ``exp(effect)`` is the ratio).
    """

    baseline_mean: float
    baseline_sd: float
    intercept: float
    slope: float
    effect: float
    residual_sd: float
    log: bool = False


def planning_model(result: AncovaResult, data: pd.DataFrame, *, contrast: int = 0) -> TrialModel:
    """Build a :class:`TrialModel` from a fitted ANCOVA and the data it was fitted on.

    The baseline distribution is taken from ``data`` (on the log scale if the ANCOVA used
    ``log``); slope, residual SD and effect (``contrast``-th row) from the fit.
    """
    base = pd.to_numeric(data[result.baseline], errors="coerce").dropna().to_numpy(dtype=float)
    if result.log:
        base = np.log(base[base > 0])
    if base.size < 2:
        raise AnalysisDataError(f"planning_model: column {result.baseline!r} has fewer than 2 usable values.")
    coef = result.coefficients.set_index("term")["estimate"]
    effect = float(result.coefficients["estimate"].iloc[1 + contrast])
    return TrialModel(
        baseline_mean=float(base.mean()),
        baseline_sd=float(base.std(ddof=1)),
        intercept=float(coef.iloc[0]),
        slope=float(coef[result.baseline]),
        effect=effect,
        residual_sd=result.residual_sd,
        log=result.log,
    )


def _batch_ancova(
    model: TrialModel, n: int, n_sim: int, rng: np.random.Generator, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n_sim`` trials of ``n`` per arm and fit ANCOVA to each (vectorised OLS)."""
    arm = np.r_[np.zeros(n), np.ones(n)]
    base = rng.normal(model.baseline_mean, model.baseline_sd, size=(n_sim, 2 * n))
    y = (
        model.intercept
        + model.slope * base
        + model.effect * arm
        + rng.normal(0, model.residual_sd, size=(n_sim, 2 * n))
    )
    X = np.stack([np.ones_like(base), np.broadcast_to(arm, base.shape), base], axis=2)
    xtx = np.einsum("sni,snj->sij", X, X)
    xty = np.einsum("sni,sn->si", X, y)
    beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
    resid = y - np.einsum("sni,si->sn", X, beta)
    df = 2 * n - 3
    s2 = (resid**2).sum(axis=1) / df
    se = np.sqrt(s2 * np.linalg.inv(xtx)[:, 1, 1])
    q = stats.t.isf(alpha / 2, df)
    est = beta[:, 1]
    reject = np.abs(est / se) > q
    covered = (est - q * se <= model.effect) & (model.effect <= est + q * se)
    return reject, np.c_[est, covered]


def simulated_power(
    model: TrialModel,
    *,
    n_per_arm: int | Sequence[int],
    rng: np.random.Generator,
    n_sim: int = 1000,
    alpha: float = 0.05,
    effect: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> SimulatedPowerResult:
    """Power by simulating ``n_sim`` whole trials per sample size and analysing each by ANCOVA.

    Parameters
    ----------
    model : TrialModel
        Usually :func:`planning_model` of the fitted study.
    n_per_arm : int or sequence of int
        Sample sizes per arm to evaluate.
    rng : numpy.random.Generator
        Source of randomness (seed it for reproducible plans).
    n_sim : int
        Trials simulated per sample size.
    alpha : float
        Two-sided significance level.
    effect : float, optional
        Override the model's effect (analysis scale), e.g. a smaller effect expected in
        non-hospitalised patients.
    on_progress : callable, optional
        ``on_progress(task, done, total)`` after each sample size.
    """
    level = require_probability(alpha, "alpha")
    if n_sim < 10:
        raise AnalysisDataError(f"n_sim must be at least 10; got {n_sim!r}.")
    sizes = [int(n_per_arm)] if isinstance(n_per_arm, int | np.integer) else [int(x) for x in n_per_arm]
    if any(s < 3 for s in sizes):
        raise AnalysisDataError(f"n_per_arm must be at least 3; got {sizes!r}.")
    if effect is not None:
        model = replace(model, effect=float(effect))
    rows = []
    for i, n in enumerate(sizes):
        reject, extra = _batch_ancova(model, n, n_sim, rng, level)
        k = int(reject.sum())
        lo, hi = wilson_ci(k, n_sim)
        rows.append(
            {
                "n_per_arm": n,
                "n_sim": n_sim,
                "rejections": k,
                "power": k / n_sim,
                "power_ci_low": float(lo),
                "power_ci_high": float(hi),
                "mean_estimate": float(extra[:, 0].mean()),
                "coverage": float(extra[:, 1].mean()),
            }
        )
        if on_progress is not None:
            on_progress("simulated power", i + 1, len(sizes))
    return SimulatedPowerResult(table=pd.DataFrame(rows), alpha=level, effect=model.effect, seed=None)
