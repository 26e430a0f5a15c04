"""Latent models of the whole-study presets: what each synthetic participant truly is and becomes.

Pure functions of a :class:`numpy.random.Generator` and covariates; the study builder
(:mod:`immunorehab.simulate.study`) turns their values into visits, FCS files and plates.

Trial (``seed-trial``)
    A symptom burden ``b ~ N(0, 1)`` (higher with a positive DSQ-PEM screen) drives FACIT-Fatigue,
    C19-YRSm and EQ-5D at baseline; everyone improves a little by week 8 (usual care included) and
    the exercise arm gains ISWT, ESWT and sit-to-stand in proportion to its dose (share of the
    completer attendance reached, capped at 1); symptoms and quality of life have no arm effect
    (PHOSP-R, domain.md 0). Plasma cytokines are mildly raised with the burden, no arm effect.

Cohort (``seed-cohort``)
    A persistent-inflammation cluster (about 30%, likelier when older or more severely ill) and
    post-COVID symptoms at 12 months (54% of the cluster, domain.md 0; the others calibrated so
    that 37% of the cohort is symptomatic), at 24 months 39% and at 6 months 45%. Log cytokine
    concentrations are the healthy level + a person effect + an acute component (decays within
    weeks) + a persistent component ``load x (cluster + 0.8 x symptomatic at 12 m) x person
    factor`` that fades on a logistic curve centred at about 16 months (varying between people),
    later in older and more severe patients (domain.md F, stated in the brief [U]), so most
    values are back to healthy by 24 months.
    The cluster also carries more CD8 TEMRA cells while inflamed (domain.md 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from immunorehab.simulate.plates import DEFAULT_PANEL

__all__ = [
    "ACUTE_LOAD",
    "COHORT_PREVALENCE",
    "HEALTHY_MEDIAN",
    "PERSISTENT_LOAD",
    "CohortLatent",
    "cohort_concentrations",
    "cohort_inflammation",
    "cohort_symptoms_row",
    "draw_cohort_latents",
    "persistence",
    "person_cytokine_effects",
    "questionnaires",
    "trial_concentrations",
    "trial_function",
]

HEALTHY_MEDIAN: Mapping[str, float] = {a.name: a.healthy_median for a in DEFAULT_PANEL}
#: Log-scale rise per unit of persistent inflammation (MCP-1, MIP-1b, IP-10 flagged by Fong 2023).
PERSISTENT_LOAD: Mapping[str, float] = {
    "IL-6": 1.0,
    "TNF-a": 0.5,
    "IL-1b": 0.4,
    "IP-10": 0.9,
    "MCP-1": 0.7,
    "MIP-1b": 0.7,
    "IFN-g": 0.4,
    "IL-10": 0.2,
}
#: Log-scale rise during the acute admission (IL-6 and IP-10 highest).
ACUTE_LOAD: Mapping[str, float] = {
    "IL-6": 2.5,
    "TNF-a": 0.8,
    "IL-1b": 0.6,
    "IP-10": 2.0,
    "MCP-1": 1.0,
    "MIP-1b": 0.8,
    "IFN-g": 1.2,
    "IL-10": 1.2,
}
#: Target prevalence of post-COVID symptoms per cohort visit (Fong 2023: 37% at 12 m, 39% at 24 m;
#: 6 months: a simulation setting between PHOSP-COVID's 5-month and Fong's 12-month figures).
COHORT_PREVALENCE: Mapping[str, float] = {"month6": 0.45, "month12": 0.37, "month24": 0.39}
_CLUSTER_SHARE = 0.30
_SYMPTOMATIC_IN_CLUSTER = 0.54
#: Persistent inflammation carried by symptoms themselves (the cluster carries 1).
_SYMPTOM_LOAD = 0.8
_PERSON_SD = 0.30
_VISIT_SD = 0.25


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


# -- trial -------------------------------------------------------------------------------------


def questionnaires(rng: np.random.Generator, burden: float, improvement: float = 0.0) -> dict[str, float]:
    """FACIT-Fatigue, C19-YRSm (severity, disability, overall health), EQ-5D-5L index and VAS.

    ``burden`` is the latent symptom burden (SD units, higher = worse); ``improvement`` lowers it
    (e.g. 0.25 by week 8 in both arms). Ranges as domain.md B.
    """
    b = burden - improvement
    index = (
        1.0 if b < -1.6 and rng.random() < 0.5 else _clip(0.70 - 0.12 * b + rng.normal(0, 0.08), -0.28, 0.95)
    )
    return {
        "facit_fatigue": round(_clip(30 - 8 * b + rng.normal(0, 4), 0, 52)),
        "c19yrsm_symptom_severity": round(_clip(12 + 5 * b + rng.normal(0, 2.5), 0, 30)),
        "c19yrsm_functional_disability": round(_clip(5 + 2.5 * b + rng.normal(0, 1.5), 0, 15)),
        "c19yrsm_overall_health": round(_clip(5 + 1.5 * b + rng.normal(0, 1.2), 0, 10)),
        "eq5d5l_index": round(index, 3),
        "eq_vas": round(_clip(62 - 10 * b + rng.normal(0, 8), 0, 100)),
    }


def trial_function(
    rng: np.random.Generator,
    baseline: Mapping[str, float],
    *,
    dose: float,
    iswt_m: float,
    eswt_s: float,
    sts_reps: float,
) -> tuple[dict[str, float], dict[str, float]]:
    """Week-8 ISWT (m, 10-m shuttles), ESWT (s) and 1-min sit-to-stand, and the arm effect in each.

    Everyone gains a little (learning effect and natural recovery: ISWT +20 m, ESWT +30 s,
    STS +1); the exercise arm adds ``dose`` x the completer effect. Returns (values, effects).
    """
    effects = {
        "iswt_distance_m": dose * iswt_m,
        "eswt_time_s": dose * eswt_s,
        "sts_1min_reps": dose * sts_reps,
    }
    iswt = baseline["iswt_distance_m"] + 20 + effects["iswt_distance_m"] + rng.normal(0, 55)
    eswt = baseline["eswt_time_s"] + 30 + effects["eswt_time_s"] + rng.normal(0, 110)
    sts = baseline["sts_1min_reps"] + 1 + effects["sts_1min_reps"] + rng.normal(0, 2.5)
    values: dict[str, float] = {
        "iswt_distance_m": int(round(_clip(iswt, 40, 1500) / 10) * 10),
        "eswt_time_s": int(_clip(eswt, 30, 1800)),
        "sts_1min_reps": int(_clip(round(sts), 0, 60)),
    }
    return values, effects


def trial_concentrations(
    rng: np.random.Generator, person: Mapping[str, float], burden: float
) -> dict[str, float]:
    """True plasma concentrations (pg/mL) at one trial visit: mildly raised with the symptom burden."""
    return {
        name: float(
            median * math.exp(person[name] + 0.15 * burden * PERSISTENT_LOAD[name] + rng.normal(0, _VISIT_SD))
        )
        for name, median in HEALTHY_MEDIAN.items()
    }


def person_cytokine_effects(rng: np.random.Generator) -> dict[str, float]:
    """A participant's stable log-scale offsets from the healthy median, per analyte."""
    return {name: float(rng.normal(0, _PERSON_SD)) for name in HEALTHY_MEDIAN}


# -- cohort ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CohortLatent:
    """One cohort participant's truth (months are 30.44 days)."""

    cluster: bool
    symptomatic: Mapping[str, bool]
    acute: float
    persistent: float
    midpoint_months: float
    person: Mapping[str, float]

    def as_dict(self) -> dict[str, object]:
        return {
            "inflamed_cluster": self.cluster,
            **{f"symptomatic_{v}": s for v, s in self.symptomatic.items()},
            "acute_amplitude": round(self.acute, 4),
            "persistent_amplitude": round(self.persistent, 4),
            "normalisation_midpoint_months": round(self.midpoint_months, 3),
            **{f"log_offset_{k}": round(v, 4) for k, v in self.person.items()},
        }


def _standardised(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    sd = float(x.std())
    z: np.ndarray = (x - x.mean()) / (sd if sd > 0 else 1.0)
    return z


def _calibrated_intercept(linear: np.ndarray, target: float) -> float:
    """Intercept a with mean(expit(a + linear)) = target (the realised cohort hits the share)."""
    return float(brentq(lambda a: float(expit(a + linear).mean()) - target, -20.0, 20.0))


def _symptoms(rng: np.random.Generator, cluster: np.ndarray) -> dict[str, np.ndarray]:
    n, k = len(cluster), int(cluster.sum())
    p12 = COHORT_PREVALENCE["month12"]
    p_other = _clip((p12 * n - _SYMPTOMATIC_IN_CLUSTER * k) / max(n - k, 1), 0.02, 0.98)
    s12 = rng.random(n) < np.where(cluster, _SYMPTOMATIC_IN_CLUSTER, p_other)
    share = float(s12.mean())
    out = {"month12": s12}
    for visit, stay in (("month24", 0.80), ("month6", 0.90)):
        target = COHORT_PREVALENCE[visit]
        p_new = _clip((target - stay * share) / max(1 - share, 1e-9), 0.0, 1.0)
        out[visit] = rng.random(n) < np.where(s12, stay, p_new)
    return {v: out[v] for v in ("month6", "month12", "month24")}


def draw_cohort_latents(
    rng: np.random.Generator, *, ages: Sequence[float], severities: Sequence[float]
) -> list[CohortLatent]:
    """Cluster, symptoms, inflammation amplitudes and normalisation timing for every participant."""
    age_z, sev_z = _standardised(ages), _standardised(severities)
    linear = 0.5 * age_z + 0.5 * sev_z
    cluster = rng.random(len(age_z)) < expit(_calibrated_intercept(linear, _CLUSTER_SHARE) + linear)
    symptoms = _symptoms(rng, cluster)
    people = []
    for i in range(len(age_z)):
        s12 = bool(symptoms["month12"][i])
        people.append(
            CohortLatent(
                cluster=bool(cluster[i]),
                symptomatic={v: bool(s[i]) for v, s in symptoms.items()},
                acute=float(1.0 + 0.3 * sev_z[i] + rng.normal(0, 0.15)),
                persistent=(float(cluster[i]) + _SYMPTOM_LOAD * s12) * float(np.exp(rng.normal(0, 0.3))),
                midpoint_months=float(
                    16.0 * math.exp(0.15 * age_z[i] + 0.15 * sev_z[i] + rng.normal(0, 0.12))
                ),
                person=person_cytokine_effects(rng),
            )
        )
    return people


def persistence(latent: CohortLatent, months: float) -> float:
    """Share (0..1) of the persistent component left at ``months``: a logistic fade centred on the
    participant's midpoint, 1.5-month scale (about 0.93 at 12 months and 0.005 at 24 months for a
    midpoint of 16 months)."""
    return 1.0 / (1.0 + math.exp((months - latent.midpoint_months) / 1.5))


def cohort_inflammation(latent: CohortLatent, months: float) -> tuple[float, float]:
    """(acute, persistent) inflammation at ``months`` after enrolment (multiples of the loads)."""
    acute = latent.acute * math.exp(-months / 1.5)
    return acute, latent.persistent * persistence(latent, months)


def cohort_concentrations(rng: np.random.Generator, latent: CohortLatent, months: float) -> dict[str, float]:
    """True plasma concentrations (pg/mL) of every analyte at ``months``."""
    acute, persistent = cohort_inflammation(latent, months)
    return {
        name: float(
            median
            * math.exp(
                latent.person[name]
                + ACUTE_LOAD[name] * acute
                + PERSISTENT_LOAD[name] * persistent
                + rng.normal(0, _VISIT_SD)
            )
        )
        for name, median in HEALTHY_MEDIAN.items()
    }


def cohort_symptoms_row(rng: np.random.Generator, symptomatic: bool, visit: str) -> dict[str, object]:
    """Symptom measures of a cohort visit: presence, count (multi-symptom share 69% at 12 m,
    56% at 24 m among the symptomatic, Fong 2023) and FACIT-Fatigue."""
    multi = {"month6": 0.72, "month12": 0.69, "month24": 0.56}[visit]
    if not symptomatic:
        count = 0
    elif rng.random() < multi:
        count = 2 + int(rng.poisson(1.2))
    else:
        count = 1
    facit = _clip(32 + rng.normal(0, 9), 0, 52) if symptomatic else _clip(44 + rng.normal(0, 5), 0, 52)
    return {"symptoms_present": symptomatic, "symptom_count": count, "facit_fatigue": round(facit)}
