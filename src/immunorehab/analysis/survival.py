"""Time-to-event analysis (e.g. time to normalisation of a marker) with R-compatible output.

lifelines is the engine (Kaplan-Meier counts, log-rank statistics, Cox partial likelihood with
Efron ties); this module adds what R's survival package does differently:

* confidence intervals of the survival curve with ``conf.type`` ``"log"`` (R's default),
  ``"log-log"`` or ``"plain"``, from the Greenwood variance of the cumulative hazard;
* the median and its confidence interval read off the survival curve and its bands as
  ``print.survfit`` does (average of two times when the curve is exactly 0.5 on a step);
* ``survdiff``'s observed/expected table for the G-rho family;
* ``coxph``'s hazard-ratio intervals, likelihood-ratio and Wald tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from scipy import stats

from immunorehab.analysis._validation import (
    design_columns,
    require_columns,
    require_numeric,
    require_probability,
)
from immunorehab.analysis.results import ConfType, CoxResult, KaplanMeierResult, LogRankResult
from immunorehab.errors import AnalysisDataError, ModelFitError

__all__ = ["cox", "kaplan_meier", "log_rank", "survival_at"]

_TOL = float(np.sqrt(np.finfo(float).eps))


def _events(data: pd.DataFrame, time: str, event: str, ctx: str) -> tuple[np.ndarray, np.ndarray]:
    t = require_numeric(data, time, context=ctx)
    e = require_numeric(data, event, context=ctx)
    bad = ~np.isin(e[np.isfinite(e)], (0.0, 1.0))
    if bad.any():
        raise AnalysisDataError(
            f"{ctx}: column {event!r} must be 0 (censored) or 1 (event); "
            f"found {sorted(set(e[np.isfinite(e)][bad]))!r}."
        )
    if np.any(t[np.isfinite(t)] < 0):
        raise AnalysisDataError(f"{ctx}: column {time!r} has negative times.")
    return t, e


def _ci(surv: np.ndarray, sigma: np.ndarray, z: float, conf_type: ConfType) -> tuple[np.ndarray, np.ndarray]:
    """R survfit confidence limits; ``sigma`` is the SE of the cumulative hazard."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "log":
            lo = surv * np.exp(-z * sigma)
            hi = np.minimum(surv * np.exp(z * sigma), 1.0)
        elif conf_type == "log-log":
            ll = np.log(-np.log(surv))
            w = z * sigma / np.abs(np.log(surv))
            lo = np.exp(-np.exp(ll + w))
            hi = np.exp(-np.exp(ll - w))
        elif conf_type == "plain":
            lo = np.maximum(surv - z * sigma * surv, 0.0)
            hi = np.minimum(surv + z * sigma * surv, 1.0)
        else:
            raise AnalysisDataError(f"conf_type must be 'log', 'log-log' or 'plain'; got {conf_type!r}.")
    bad = ~np.isfinite(sigma) | (surv <= 0)
    if conf_type == "log-log":
        bad |= surv >= 1
    lo = np.where(bad, np.nan, lo)
    hi = np.where(bad, np.nan, hi)
    return lo, hi


def _quantile_time(times: np.ndarray, curve: np.ndarray, p: float = 0.5) -> float:
    """First time the curve is <= p; the mid-point of a flat step exactly at p (R rule)."""
    ok = np.isfinite(curve)
    hit = np.flatnonzero(ok & (curve <= p + _TOL))
    if hit.size == 0:
        return float("nan")
    i = int(hit[0])
    if abs(curve[i] - p) < _TOL and i + 1 < len(times):
        return float((times[i] + times[i + 1]) / 2)
    return float(times[i])


def _km_one(
    t: np.ndarray, e: np.ndarray, z: float, conf_type: ConfType
) -> tuple[pd.DataFrame, dict[str, float]]:
    kmf = KaplanMeierFitter().fit(t, e)
    et = kmf.event_table
    et = et[et.index > 0] if (et.loc[et.index == 0, "observed"].sum() == 0) else et
    d = et["observed"].to_numpy(dtype=float)
    n = et["at_risk"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n)
        terms = np.where(d > 0, d / (n * (n - d)), 0.0)
    sigma = np.sqrt(np.cumsum(terms))
    lo, hi = _ci(surv, sigma, z, conf_type)
    full = pd.DataFrame(
        {
            "time": et.index.to_numpy(dtype=float),
            "n_risk": n.astype(int),
            "n_event": d.astype(int),
            "n_censor": et["censored"].to_numpy(dtype=int),
            "survival": surv,
            "std_err": surv * sigma,
            "ci_low": lo,
            "ci_high": hi,
        }
    )
    ev = full[full["n_event"] > 0].reset_index(drop=True)
    times = ev["time"].to_numpy()
    summary = {
        "n": float(len(t)),
        "events": float(e.sum()),
        "median": _quantile_time(times, ev["survival"].to_numpy()),
        "median_ci_low": _quantile_time(times, ev["ci_low"].to_numpy()),
        "median_ci_high": _quantile_time(times, ev["ci_high"].to_numpy()),
    }
    return ev, summary


def kaplan_meier(
    data: pd.DataFrame,
    *,
    time: str,
    event: str,
    group: str | None = None,
    conf_type: ConfType = "log",
    conf_level: float = 0.95,
) -> KaplanMeierResult:
    """Kaplan-Meier estimate per group with R ``survfit`` confidence intervals.

    Parameters
    ----------
    data : DataFrame
        One row per participant.
    time : str
        Follow-up time (any unit, e.g. months since discharge) to the event or censoring.
    event : str
        1 if the event (e.g. normalisation of the marker) was observed, 0 if censored.
    group : str, optional
        Column defining separate curves (e.g. arm or symptom status).
    conf_type : {"log", "log-log", "plain"}
        Transformation for the pointwise intervals; ``"log"`` is R's default.
    conf_level : float
        Level of the pointwise intervals.

    Returns
    -------
    KaplanMeierResult
        ``table`` as ``summary(survfit(...))`` (event times only) and ``summary`` with n,
        events and the median with its CI per group.
    """
    ctx = "kaplan_meier"
    level = require_probability(conf_level, "conf_level")
    require_columns(data, (time, event) + ((group,) if group else ()), context=ctx)
    t, e = _events(data, time, event, ctx)
    keep = np.isfinite(t) & np.isfinite(e)
    if group is not None:
        keep &= data[group].notna().to_numpy()
    z = float(stats.norm.ppf(0.5 + level / 2))
    labels = ["all"] if group is None else sorted(pd.unique(data.loc[keep, group]), key=str)
    tables, rows = [], []
    for lab in labels:
        mask = keep if group is None else keep & (data[group] == lab).to_numpy()
        if not mask.any():
            continue
        ev, summ = _km_one(t[mask], e[mask], z, conf_type)
        ev.insert(0, "group", str(lab))
        tables.append(ev)
        rows.append({"group": str(lab), **summ})
    summary = pd.DataFrame(rows)
    summary[["n", "events"]] = summary[["n", "events"]].astype(int)
    return KaplanMeierResult(
        table=pd.concat(tables, ignore_index=True),
        summary=summary,
        conf_type=conf_type,
        conf_level=level,
        time=time,
        event=event,
        group=group,
    )


def survival_at(result: KaplanMeierResult, data: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
    """The curves read at given times, as ``summary(fit, times = ...)`` in R.

    Parameters
    ----------
    result : KaplanMeierResult
        Fitted curves.
    data : DataFrame
        The data the curves were fitted on (needed for the numbers at risk).
    times : sequence of float
        Times to report (e.g. 12 and 24 months), sorted ascending.

    Returns
    -------
    DataFrame
        ``group, time, n_risk, n_event, survival, std_err, ci_low, ci_high``: ``n_risk`` is
        the number still followed at ``time``; ``n_event`` the events since the previous
        reported time; survival and limits are those of the last event time <= ``time``.
    """
    ts = np.asarray(sorted(float(x) for x in times))
    t_all, e_all = _events(data, result.time, result.event, "survival_at")
    rows = []
    for _, part in result.table.groupby("group", sort=False):
        grp = str(part["group"].iloc[0])
        mask = np.isfinite(t_all) & np.isfinite(e_all)
        if result.group is not None:
            mask &= (data[result.group].astype(str) == grp).to_numpy()
        t, e = t_all[mask], e_all[mask]
        ev_t = part["time"].to_numpy()
        prev = -np.inf
        for x in ts:
            k = np.searchsorted(ev_t, x, side="right") - 1
            cols = ("survival", "std_err", "ci_low", "ci_high")
            vals = (
                {c: 1.0 if c != "std_err" else 0.0 for c in cols}
                if k < 0
                else {c: float(part[c].iloc[k]) for c in cols}
            )
            rows.append(
                {
                    "group": grp,
                    "time": float(x),
                    "n_risk": int((t >= x).sum()),
                    "n_event": int(((t > prev) & (t <= x) & (e == 1)).sum()),
                    **vals,
                }
            )
            prev = x
    return pd.DataFrame(rows)


def log_rank(data: pd.DataFrame, *, time: str, event: str, group: str, rho: float = 0.0) -> LogRankResult:
    """Log-rank (``rho=0``) or Harrington-Fleming G-rho test between groups, as ``survdiff``.

    The weight of each event time is ``S(t-)^rho`` with ``S`` the pooled Kaplan-Meier curve;
    ``rho=1`` is the Peto-Peto modification of the Gehan-Wilcoxon test.
    """
    ctx = "log_rank"
    require_columns(data, (time, event, group), context=ctx)
    t, e = _events(data, time, event, ctx)
    keep = np.isfinite(t) & np.isfinite(e) & data[group].notna().to_numpy()
    t, e, g = t[keep], e[keep], data.loc[keep, group].to_numpy()
    labels = sorted(pd.unique(g), key=str)
    if len(labels) < 2:
        raise AnalysisDataError(f"{ctx}: column {group!r} needs at least two groups, found {labels!r}.")
    kwargs: dict[str, object] = (
        {} if rho == 0 else {"weightings": "fleming-harrington", "p": float(rho), "q": 0.0}
    )
    res = multivariate_logrank_test(t, g, e, **kwargs)
    obs, exp_, var = _observed_expected(t, e, g, labels, rho)
    table = pd.DataFrame(
        {
            "group": [str(x) for x in labels],
            "n": [int((g == lab).sum()) for lab in labels],
            "observed": obs,
            "expected": exp_,
            "oe2_e": (obs - exp_) ** 2 / exp_,
            "oe2_v": (obs - exp_) ** 2 / var,
        }
    )
    return LogRankResult(
        table=table,
        chisq=float(res.test_statistic),
        df=int(res.degrees_of_freedom),
        p_value=float(res.p_value),
        rho=float(rho),
    )


def _observed_expected(
    t: np.ndarray, e: np.ndarray, g: np.ndarray, labels: Sequence[object], rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted observed and expected events per group and the diagonal of the variance."""
    times = np.unique(t[e == 1])
    n_at = np.array([[np.sum((t >= s) & (g == lab)) for lab in labels] for s in times], dtype=float)
    d_at = np.array(
        [[np.sum((t == s) & (e == 1) & (g == lab)) for lab in labels] for s in times], dtype=float
    )
    n, d = n_at.sum(axis=1), d_at.sum(axis=1)
    s_left = np.r_[1.0, np.cumprod(1 - d / n)[:-1]]
    w = s_left**rho
    obs = (w[:, None] * d_at).sum(axis=0)
    exp_ = (w[:, None] * d[:, None] * n_at / n[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    p = n_at / n[:, None]
    var = ((w**2 * f)[:, None] * p * (1 - p)).sum(axis=0)
    return obs, exp_, var


def cox(
    data: pd.DataFrame,
    *,
    time: str,
    event: str,
    covariates: Sequence[str],
    conf_level: float = 0.95,
) -> CoxResult:
    """Cox proportional-hazards regression with Efron ties (R ``coxph`` default).

    Numeric covariates enter linearly (per unit); categorical ones as treatment-coded dummies.
    Rows with a missing value in any used column are dropped (as ``na.omit``).
    """
    ctx = "cox"
    level = require_probability(conf_level, "conf_level")
    covariates = tuple(covariates)
    if not covariates:
        raise AnalysisDataError(f"{ctx}: give at least one covariate.")
    require_columns(data, (time, event, *covariates), context=ctx)
    t, e = _events(data, time, event, ctx)
    X = design_columns(data, covariates, context=ctx)
    frame = pd.concat([pd.DataFrame({"__time": t, "__event": e}, index=data.index), X], axis=1).dropna()
    if frame["__event"].sum() < 1:
        raise AnalysisDataError(f"{ctx}: no events in column {event!r}.")
    cph = CoxPHFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            cph.fit(frame, "__time", "__event", fit_options={"precision": 1e-12, "max_steps": 200})
        except Exception as exc:  # lifelines raises ConvergenceError/warnings of its own
            raise ModelFitError(f"{ctx}: the Cox model did not converge: {exc}") from exc
    s = cph.summary
    z = float(stats.norm.ppf(0.5 + level / 2))
    beta = s["coef"].to_numpy()
    se = s["se(coef)"].to_numpy()
    table = pd.DataFrame(
        {
            "term": list(X.columns),
            "coef": beta,
            "hazard_ratio": np.exp(beta),
            "se": se,
            "z": beta / se,
            "p_value": 2 * stats.norm.sf(np.abs(beta / se)),
            "hr_ci_low": np.exp(beta - z * se),
            "hr_ci_high": np.exp(beta + z * se),
        }
    )
    lr = cph.log_likelihood_ratio_test()
    V = np.asarray(cph.variance_matrix_)
    wald = float(beta @ np.linalg.solve(V, beta))
    return CoxResult(
        table=table,
        n=int(len(frame)),
        n_events=int(frame["__event"].sum()),
        log_likelihood=float(cph.log_likelihood_),
        lr_chisq=float(lr.test_statistic),
        lr_df=int(lr.degrees_freedom),
        lr_p_value=float(lr.p_value),
        wald_chisq=wald,
        wald_p_value=float(stats.chi2.sf(wald, len(beta))),
        concordance=float(cph.concordance_index_),
        ties="efron",
        conf_level=level,
    )
