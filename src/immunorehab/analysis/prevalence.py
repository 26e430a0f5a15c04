"""Prevalence of a condition (e.g. persistent symptoms) per visit with Wilson score intervals.

The Wilson interval inverts the score test of a binomial proportion (Wilson 1927) and is the
interval R's ``prop.test(x, n, correct=FALSE)`` reports; ``correct=True`` gives R's default
continuity-corrected version::

    (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from immunorehab.analysis._validation import require_columns, require_probability
from immunorehab.analysis.results import PrevalenceResult
from immunorehab.errors import AnalysisDataError

__all__ = ["prevalence_by_visit", "wilson_ci"]


def wilson_ci(
    x: int | np.ndarray, n: int | np.ndarray, *, conf_level: float = 0.95, correct: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``x`` events out of ``n`` (vectorised).

    Parameters
    ----------
    x, n : int or array of int
        Events and trials (0 <= x <= n, n >= 1).
    conf_level : float
        Confidence level.
    correct : bool
        Yates continuity correction, as R's ``prop.test`` default.

    Returns
    -------
    (ci_low, ci_high) : tuple of ndarray
        Limits in [0, 1].

    Examples
    --------
    >>> lo, hi = wilson_ci(319, 715)
    >>> round(float(lo), 7), round(float(hi), 7)
    (0.4101018, 0.4827814)
    """
    level = require_probability(conf_level, "conf_level")
    xa = np.asarray(x, dtype=float)
    na = np.asarray(n, dtype=float)
    if np.any(na < 1) or np.any(xa < 0) or np.any(xa > na) or np.any(xa != np.round(xa)):
        raise AnalysisDataError(
            f"wilson_ci needs whole numbers 0 <= x <= n and n >= 1; got x={x!r}, n={n!r}."
        )
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = xa / na
    yates = 0.5 if correct else 0.0
    z22n = z**2 / (2 * na)

    def limit(pc: np.ndarray, sign: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            out: np.ndarray = (pc + z22n + sign * z * np.sqrt(pc * (1 - pc) / na + z22n / (2 * na))) / (
                1 + 2 * z22n
            )
        return out

    pc_hi = p + yates / na
    pc_lo = p - yates / na
    hi = np.where(pc_hi >= 1, 1.0, limit(np.minimum(pc_hi, 1.0), 1.0))
    lo = np.where(pc_lo <= 0, 0.0, limit(np.maximum(pc_lo, 0.0), -1.0))
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def prevalence_by_visit(
    data: pd.DataFrame,
    *,
    visit: str,
    indicator: str,
    group: str | None = None,
    conf_level: float = 0.95,
    correct: bool = False,
) -> PrevalenceResult:
    """Proportion with the condition at each visit (and group) with Wilson CIs.

    Parameters
    ----------
    data : DataFrame
        Long format: one row per participant and visit.
    visit : str
        Visit label or time (e.g. ``"12 m"``); rows are kept in visit order of first appearance
        unless the column is numeric (then sorted).
    indicator : str
        1/True if the participant has the condition at that visit, 0/False if not; missing
        values are excluded from both numerator and denominator.
    group : str, optional
        Column for separate prevalences (e.g. severity class).
    """
    ctx = "prevalence_by_visit"
    level = require_probability(conf_level, "conf_level")
    require_columns(data, (visit, indicator) + ((group,) if group else ()), context=ctx)
    ind = pd.to_numeric(
        data[indicator].astype("float64") if data[indicator].dtype == bool else data[indicator],
        errors="coerce",
    )
    valid = ind.dropna()
    if not valid.isin([0, 1]).all():
        raise AnalysisDataError(
            f"{ctx}: column {indicator!r} must be 0/1 or True/False; "
            f"found {sorted(set(valid) - {0, 1})[:3]!r}."
        )
    frame = pd.DataFrame({"visit": data[visit], "group": data[group] if group else "all", "y": ind}).dropna()
    agg = frame.groupby(["visit", "group"], sort=pd.api.types.is_numeric_dtype(frame["visit"])).agg(
        n=("y", "size"), events=("y", "sum")
    )
    agg = agg.reset_index()
    agg["events"] = agg["events"].astype(int)
    lo, hi = wilson_ci(agg["events"].to_numpy(), agg["n"].to_numpy(), conf_level=level, correct=correct)
    agg["proportion"] = agg["events"] / agg["n"]
    agg["ci_low"], agg["ci_high"] = lo, hi
    return PrevalenceResult(table=agg, conf_level=level, correct=correct)
