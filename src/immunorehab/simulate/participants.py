"""Synthetic, realistic post-COVID rehabilitation participants (no real people).

Covariate distributions follow the seed trial's published summary (PHOSP-R: age
59 ± 12 years, 55% male, all hospitalised; domain.md section 0) with plausible spreads
for acute severity on the WHO clinical progression scale (mostly ward-level oxygen,
WHO 4-5, a minority HDU/ICU, WHO 6-9), vaccination, CMV seropositivity (~55% in UK
adults) and time since infection. A few screen failures are included on purpose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["synthetic_participants"]


def synthetic_participants(
    n: int,
    *,
    sites: Sequence[str],
    rng: np.random.Generator,
    first_consent: dt.date,
    recruitment_days: int = 365,
    screen_fail_fraction: float = 0.05,
) -> list[dict[str, Any]]:
    """``n`` participant covariate records, consent dates spread over the recruitment period.

    Parameters
    ----------
    n : number of records.
    sites : site codes to draw from (uniformly).
    rng : the random generator (seed it for reproducible studies).
    first_consent : first consent date; later ones follow in order.
    screen_fail_fraction : share of records built to fail an eligibility criterion
        (not hospitalised, or too soon after infection).
    """
    offsets = np.sort(rng.integers(0, recruitment_days, size=n))
    people: list[dict[str, Any]] = []
    for i in range(n):
        severity = int(rng.choice([4, 5, 6, 7, 8], p=[0.35, 0.35, 0.15, 0.1, 0.05]))
        icu = severity >= 6 and bool(rng.random() < 0.8)
        person: dict[str, Any] = {
            "site": str(rng.choice(list(sites))),
            "consent_date": first_consent + dt.timedelta(days=int(offsets[i])),
            "age_years": int(np.clip(round(rng.normal(59, 12)), 18, 90)),
            "sex": "male" if rng.random() < 0.55 else "female",
            "who_severity": severity,
            "hospitalised": True,
            "icu_admitted": icu,
            "invasive_ventilation": severity >= 7,
            "vaccination_doses": int(rng.choice([0, 1, 2, 3, 4], p=[0.15, 0.1, 0.35, 0.3, 0.1])),
            "cmv_serostatus": str(rng.choice(["positive", "negative", "unknown"], p=[0.52, 0.4, 0.08])),
            "days_since_infection": int(rng.integers(90, 540)),
        }
        if rng.random() < screen_fail_fraction:
            if rng.random() < 0.5:
                person["hospitalised"] = False
            else:
                person["days_since_infection"] = int(rng.integers(28, 84))
        people.append(person)
    return people
