"""The ``seed-cohort`` preset: enrolment at the acute admission, follow-up to 24 months.

Participants are imported from a CSV file (coordinator), enrolled during the acute admission
(3-14 days after the infection) and followed at 6, 12 and 24 months within each visit's window,
some visits missed. Each visit records symptoms (presence, count, FACIT-Fatigue) and a blood
draw; the 24-month visit records the mRNA vaccine dose everyone received at 12-16 months
(domain.md 0, F). Blood shows acute lymphopenia and T-cell activation at enrolment, and more
CD8 TEMRA cells in the persistent-inflammation cluster while it lasts (see :mod:`.latent`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.simulate._build import BloodDraw, Build
from immunorehab.simulate.immune import LEAVES, ImmuneState, baseline_immune_state
from immunorehab.simulate.latent import (
    HEALTHY_MEDIAN,
    CohortLatent,
    cohort_concentrations,
    cohort_inflammation,
    cohort_symptoms_row,
    draw_cohort_latents,
    persistence,
)

__all__ = ["MONTH_DAYS", "NORMAL_BELOW", "simulate_cohort"]

MONTH_DAYS = 30.44
#: Normalisation thresholds of fong_cohort.yaml (CoLaus upper quartiles, pg/mL).
NORMAL_BELOW = {"IL-6": 3.53, "TNF-a": 4.53, "IL-1b": 3.90}


def _acute_admission(rng: np.random.Generator) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Enrolment during the acute admission: 3-14 days after the infection, 0-2 vaccine doses (2021)."""

    def adjust(person: dict[str, Any]) -> dict[str, Any]:
        return {
            "days_since_infection": int(rng.integers(3, 15)),
            "vaccination_doses": int(rng.choice([0, 1, 2], p=[0.5, 0.2, 0.3])),
        }

    return adjust


def _state(build: Build, base: ImmuneState, latent: CohortLatent, months: float) -> ImmuneState:
    acute, _ = cohort_inflammation(latent, months)
    temra = math.exp(0.5 * float(latent.cluster) * persistence(latent, months))
    factors = dict.fromkeys(LEAVES, math.exp(-0.6 * acute)) | {"cd8_temra": math.exp(-0.6 * acute) * temra}
    state = base.jittered(build.rng("immune"), 0.08).scaled(factors)
    return replace(
        state,
        cd4_activated=min(0.3, base.cd4_activated + 0.04 * acute),
        cd8_activated=min(0.4, base.cd8_activated + 0.12 * acute),
    )


def _visit_day(build: Build, baseline_on: dt.date, visit_id: str) -> dt.date:
    visit = build.protocol.visit(visit_id)
    rng = build.rng("clinic")
    if visit.day == 0:
        return baseline_on
    half = (visit.window_before_days + visit.window_after_days) // 4
    return baseline_on + dt.timedelta(days=visit.day + int(rng.integers(-half, half + 1)))


def _follow(build: Build, pid: str, latent: CohortLatent) -> None:
    """Record every visit of one participant (baseline first) and keep each blood draw."""
    person, rng = build.people[pid], build.rng("clinic")
    baseline_on: dt.date = person["consent_date"] + dt.timedelta(days=int(rng.integers(0, 4)))
    base = baseline_immune_state(
        build.rng("immune"), age_years=person["age_years"], cmv=person["cmv_serostatus"]
    )
    for visit in build.protocol.visits:
        day = _visit_day(build, baseline_on, visit.id)
        months = (day - baseline_on).days / MONTH_DAYS
        acute, persistent = cohort_inflammation(latent, months)
        truth = {"participant_id": pid, "visit_id": visit.id, "date": day, "months": round(months, 3)}
        truth |= {"acute": round(acute, 5), "persistent": round(persistent, 5)}
        missed = visit.day > 0 and (rng.random() < build.preset.missing_visit or day > build.today)
        values: dict[str, Any] = {"blood_drawn": not missed}
        if visit.day > 0:
            values |= cohort_symptoms_row(rng, latent.symptomatic[visit.id], visit.id)
            truth["symptomatic"] = latent.symptomatic[visit.id]
        if visit.id == "month24":
            values["vaccinated_since_last_visit"] = True
        concentrations = cohort_concentrations(build.rng("cytokines"), latent, months)
        state = _state(build, base, latent, months)
        truth |= {f"true_{k}": round(v, 5) for k, v in concentrations.items()}
        build.visit_truth.append(truth | {"recorded": not missed})
        if missed:
            continue
        build.record(pid, visit.id, day, values, by="assessor1" if visit.day else "coord")
        build.draws.append(BloodDraw(pid, visit.id, day, state, concentrations))


def _summary(build: Build, latents: dict[str, CohortLatent]) -> dict[str, Any]:
    visits = pd.DataFrame(build.visit_truth)
    follow = visits[visits["visit_id"] != "baseline"]
    recorded = follow[follow["recorded"]]
    groups = {pid: latent.symptomatic["month12"] for pid, latent in latents.items()}
    visits["symptomatic_12m"] = visits["participant_id"].map(groups)
    geo = (
        visits.groupby(["visit_id", "symptomatic_12m"])["true_IL-6"]
        .apply(lambda s: float(np.exp(np.log(s).mean())))
        .round(3)
    )
    normalised = {
        analyte: round(
            float((visits.loc[visits["visit_id"] == "month24", f"true_{analyte}"] <= limit).mean()), 4
        )
        for analyte, limit in NORMAL_BELOW.items()
    }
    return {
        "enrolled": len(latents),
        "inflamed_cluster": sum(latent.cluster for latent in latents.values()),
        "prevalence_all": {
            v: round(float(np.mean([latent.symptomatic[v] for latent in latents.values()])), 4)
            for v in ("month6", "month12", "month24")
        },
        "prevalence_recorded": {
            v: round(float(g["symptomatic"].mean()), 4) for v, g in recorded.groupby("visit_id", sort=False)
        },
        "visits_recorded": {v: int(g["recorded"].sum()) for v, g in visits.groupby("visit_id", sort=False)},
        "true_il6_geo_mean_by_symptoms_12m": {
            f"{visit}/{'symptomatic' if group else 'asymptomatic'}": x
            for (visit, group), x in zip(geo.index.tolist(), geo.tolist(), strict=True)
        },
        "true_share_normal_at_24m": normalised,
        "healthy_median_pg_ml": dict(HEALTHY_MEDIAN),
    }


def simulate_cohort(build: Build) -> None:
    """Build the seed cohort into ``build``'s store; truths into ``build``'s tables and summary."""
    eligible = build.enrol(adjust=_acute_admission(build.rng("participants")))
    people = [build.people[pid] for pid in eligible]
    latents = dict(
        zip(
            eligible,
            draw_cohort_latents(
                build.rng("clinic"),
                ages=[p["age_years"] for p in people],
                severities=[p["who_severity"] for p in people],
            ),
            strict=True,
        )
    )
    for k, pid in enumerate(eligible, start=1):
        _follow(build, pid, latents[pid])
        build.people[pid] |= latents[pid].as_dict()
        build.progress("Cohort visits", k, len(eligible))
    build.summary |= _summary(build, latents)
