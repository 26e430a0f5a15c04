"""Result objects of the analysis functions.

Every result is a frozen dataclass with a tidy ``table`` (a :class:`pandas.DataFrame`, one row
per estimate) and plain attributes (numbers, strings) describing the fit. A report renders them
as they are and never recomputes anything. The DataFrames are the caller's to read; treat them
as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

__all__ = [
    "AncovaResult",
    "CoxResult",
    "EffectSizeResult",
    "KaplanMeierResult",
    "LogRankResult",
    "MMRMResult",
    "MixedModelResult",
    "MultiplicityResult",
    "PooledResult",
    "PowerResult",
    "PrevalenceResult",
    "SimulatedPowerResult",
]

ConfType = Literal["log", "log-log", "plain"]
DfMethod = Literal["kenward-roger", "satterthwaite"]


@dataclass(frozen=True, slots=True, eq=False)
class AncovaResult:
    """ANCOVA of a follow-up value on arm + baseline + covariates.

    ``table`` has one row per contrast against the reference arm with columns
    ``contrast, estimate, se, ci_low, ci_high, p_value``. With ``log=True`` the estimate and CI
    are geometric-mean ratios (back-transformed) and ``se`` is the standard error of the log
    ratio. ``coefficients`` holds every model coefficient (``term, estimate, se, t_value, df,
    p_value, ci_low, ci_high``) on the model scale; ``adjusted_means`` the arm means at the mean
    baseline and covariates (back-transformed to geometric means when ``log``).
    """

    table: pd.DataFrame
    coefficients: pd.DataFrame
    adjusted_means: pd.DataFrame
    outcome: str
    baseline: str
    arm: str
    reference: str
    covariates: tuple[str, ...]
    log: bool
    n: int
    n_excluded: int
    df_resid: float
    residual_sd: float
    r_squared: float
    conf_level: float


@dataclass(frozen=True, slots=True, eq=False)
class MixedModelResult:
    """Linear mixed model (random intercept, optionally random slope, per subject).

    ``table``: fixed effects ``term, estimate, se, df, t_value, ci_low, ci_high, p_value``
    (Satterthwaite df as in R's lmerTest). ``random_effects``: ``group, term, variance, sd`` and
    ``corr`` (intercept-slope correlation on the slope row). ``log_likelihood`` is the REML or
    ML log-likelihood as lme4 reports it; ``reml_criterion`` is ``-2 * log_likelihood`` for a
    REML fit (``None`` for ML).
    """

    table: pd.DataFrame
    random_effects: pd.DataFrame
    residual_sd: float
    log_likelihood: float
    reml_criterion: float | None
    aic: float
    bic: float
    n_obs: int
    n_groups: int
    reml: bool
    random_slope: bool
    outcome: str
    time: str
    subject: str
    optimizer: str
    conf_level: float


@dataclass(frozen=True, slots=True, eq=False)
class MMRMResult:
    """Mixed model for repeated measures with an unstructured covariance across visits.

    ``table``: one row per visit and contrast against the reference arm:
    ``visit, contrast, estimate, se, df, t_value, ci_low, ci_high, p_value`` (ratios when
    ``log``). ``lsmeans``: ``visit, arm, estimate, se, df, ci_low, ci_high``. ``covariance``:
    the estimated visit-by-visit covariance matrix (model scale). ``coefficients``: every fixed
    effect with model-based SE.
    """

    table: pd.DataFrame
    lsmeans: pd.DataFrame
    coefficients: pd.DataFrame
    covariance: pd.DataFrame
    df_method: DfMethod
    log_likelihood: float
    n_subjects: int
    n_obs: int
    visits: tuple[str, ...]
    arm: str
    reference: str
    log: bool
    converged: bool
    conf_level: float


@dataclass(frozen=True, slots=True, eq=False)
class PooledResult:
    """Estimates pooled over ``m`` imputed data sets by Rubin's rules.

    ``table``: ``term, estimate, se, df, ci_low, ci_high, p_value, riv, lambda_, fmi`` with
    Barnard-Rubin degrees of freedom; ``within``/``between`` the pooled variance components.
    ``contrasts`` mirrors :attr:`AncovaResult.table` when the analysis was an ANCOVA.
    """

    table: pd.DataFrame
    contrasts: pd.DataFrame
    m: int
    n: int
    df_complete: float
    method: str
    log: bool
    conf_level: float


@dataclass(frozen=True, slots=True, eq=False)
class MultiplicityResult:
    """P-values adjusted across a declared family (R ``p.adjust`` semantics).

    ``table`` is the input table plus ``p_adjusted`` and ``reject`` (``p_adjusted <= alpha``).
    """

    table: pd.DataFrame
    method: str
    alpha: float
    family_size: int


@dataclass(frozen=True, slots=True, eq=False)
class EffectSizeResult:
    """Standardised mean difference (Cohen's d or Hedges' g) with confidence interval."""

    table: pd.DataFrame
    measure: Literal["cohens_d", "hedges_g"]
    ci_method: Literal["noncentral-t", "normal"]
    conf_level: float


@dataclass(frozen=True, slots=True, eq=False)
class KaplanMeierResult:
    """Kaplan-Meier curves as R's ``summary(survfit(...))`` prints them.

    ``table``: one row per event time and group: ``group, time, n_risk, n_event, n_censor,
    survival, std_err, ci_low, ci_high`` (``std_err`` is the SE of the survival, Greenwood).
    ``summary``: per group ``group, n, events, median, median_ci_low, median_ci_high`` (NaN
    where R prints NA).
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    conf_type: ConfType
    conf_level: float
    time: str
    event: str
    group: str | None


@dataclass(frozen=True, slots=True, eq=False)
class LogRankResult:
    """G-rho family test (rho = 0: log-rank) as R's ``survdiff``.

    ``table``: ``group, n, observed, expected, oe2_e, oe2_v`` per group.
    """

    table: pd.DataFrame
    chisq: float
    df: int
    p_value: float
    rho: float


@dataclass(frozen=True, slots=True, eq=False)
class CoxResult:
    """Cox proportional-hazards model (Efron ties, as R's ``coxph`` default).

    ``table``: ``term, coef, hazard_ratio, se, z, p_value, hr_ci_low, hr_ci_high``.
    """

    table: pd.DataFrame
    n: int
    n_events: int
    log_likelihood: float
    lr_chisq: float
    lr_df: int
    lr_p_value: float
    wald_chisq: float
    wald_p_value: float
    concordance: float
    ties: Literal["efron"]
    conf_level: float


@dataclass(frozen=True, slots=True, eq=False)
class PrevalenceResult:
    """Proportion with a condition per visit (and group) with Wilson score intervals.

    ``table``: ``visit, group, n, events, proportion, ci_low, ci_high``.
    """

    table: pd.DataFrame
    conf_level: float
    correct: bool


@dataclass(frozen=True, slots=True, eq=False)
class PowerResult:
    """Analytic sample size or power, as R's ``power.t.test`` prints it.

    ``table`` has one row with ``n`` (per group), ``delta``, ``sd``, ``sig_level``, ``power``,
    ``alternative``, ``design`` and, for ANCOVA, ``rho`` and the effective ``sd_residual``.
    """

    table: pd.DataFrame
    n: float
    delta: float
    sd: float
    sig_level: float
    power: float
    alternative: Literal["two.sided", "one.sided"]
    design: Literal["t-test", "ancova"]
    solved_for: Literal["n", "power", "delta"]


@dataclass(frozen=True, slots=True, eq=False)
class SimulatedPowerResult:
    """Power estimated by simulating whole trials and analysing each one.

    ``table``: one row per sample size with ``n_per_arm, n_sim, rejections, power,
    power_ci_low, power_ci_high, mean_estimate, coverage`` (Wilson CI on the Monte-Carlo power).
    """

    table: pd.DataFrame
    alpha: float
    effect: float
    seed: int | None
    details: dict[str, float] = field(default_factory=dict)
