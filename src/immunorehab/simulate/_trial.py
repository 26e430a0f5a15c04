"""The ``seed-trial`` preset: enrol, randomise, rehabilitate, assess at week 8 (see :mod:`.latent`).

Order of events, as at a site: screening and import of the participants file (coordinator);
baseline assessment with the rehabilitation tests, questionnaires and a blood draw (physio);
randomisation through the study's own randomiser (coordinator); for the exercise arm a
prescription from the baseline assessment and 8 weeks of session logs imported from CSV files
(physio, who clears any stop criterion before the next session); the week-8 assessment by the
blinded assessor, or a missed visit (likelier after dropping out of the programme), sometimes
followed by a withdrawal.

The arm effect reaches a participant in proportion to the dose: attended sessions over the
programme's completer threshold (12 of 16), capped at 1. Each participant's counterfactual
week-8 state without the effect is kept, so the truth of every analysed outcome is exact.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.errors import PrescriptionError
from immunorehab.rehab.logbook import import_sessions
from immunorehab.rehab.outcome import Clearance
from immunorehab.rehab.service import clear_review, prescribe, programme_for_arm
from immunorehab.simulate._build import BloodDraw, Build
from immunorehab.simulate.immune import MEMORY_GATES, ImmuneState, baseline_immune_state, outcome_value
from immunorehab.simulate.latent import (
    person_cytokine_effects,
    questionnaires,
    trial_concentrations,
    trial_function,
)
from immunorehab.simulate.presets import TrialEffects
from immunorehab.simulate.sessions import synthetic_baseline, synthetic_sessions
from immunorehab.study.allocation import randomise
from immunorehab.study.export import atomic_write
from immunorehab.study.participants import withdraw_participant

__all__ = ["simulate_trial"]

#: Natural recovery of naive T-cell counts over 8 weeks in both arms (a simulation setting).
NAIVE_DRIFT = {"cd4_naive": 1.03, "cd8_naive": 1.03}
WITHIN_PERSON_CV = 0.08  # domain.md C3: within-person CV of T-cell counts < 10%


@dataclass
class _Person:
    pid: str
    arm: str
    randomised_on: dt.date
    burden: float
    baseline: dict[str, Any]
    immune0: ImmuneState
    cytokine_offsets: dict[str, float]
    attended: int = 0
    offered: int = 0
    dose: float = 0.0
    completer: bool = False
    pese: int = 0
    stops: int = 0
    week8_on: dt.date | None = None
    withdrawn_on: dt.date | None = None
    untreated8: ImmuneState | None = None
    treated8: ImmuneState | None = None
    effects: dict[str, float] = field(default_factory=dict)


def _baseline(build: Build, pid: str) -> _Person:
    rng, covariates = build.rng("clinic"), build.people[pid]
    consent: dt.date = covariates["consent_date"]
    randomised_on = min(consent + dt.timedelta(days=int(rng.integers(3, 11))), build.today)
    day = max(consent, randomised_on - dt.timedelta(days=int(rng.integers(0, 8))))
    baseline_ids = {m.id for m in build.protocol.visit("baseline").measures}
    rehab = synthetic_baseline(rng, age_years=covariates["age_years"], sex=covariates["sex"])
    burden = float(rng.normal(0, 1) + (0.8 if rehab["dsq_pem_present"] else 0.0))
    values = {k: v for k, v in rehab.items() if k in baseline_ids}
    values |= questionnaires(rng, burden) | {"blood_drawn": True, "blood_sample_type": "whole_blood"}
    build.record(pid, "baseline", day, values, by="physio1")
    arm = randomise(build.store, by="coord", participant_id=pid, on=randomised_on).arm
    immune0 = baseline_immune_state(
        build.rng("immune"), age_years=covariates["age_years"], cmv=covariates["cmv_serostatus"]
    )
    offsets = person_cytokine_effects(build.rng("cytokines"))
    person = _Person(pid, arm, randomised_on, burden, values, immune0, offsets)
    concentrations = trial_concentrations(build.rng("cytokines"), offsets, burden)
    build.draws.append(BloodDraw(pid, "baseline", day, immune0, concentrations))
    build.visit_truth.append({"participant_id": pid, "visit_id": "baseline", "date": day, "recorded": True})
    return person


def _import(build: Build, rows: list[dict[str, Any]], name: str) -> int:
    if not rows:
        return 0
    path = build.out / "rehab" / name
    frame = pd.DataFrame(rows)
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False), overwrite=True)
    return len(import_sessions(build.store, by="physio1", path=path, today=build.today))


def _import_with_clearances(
    build: Build, rows: list[dict[str, Any]], clearances: list[tuple[Clearance, str]]
) -> int:
    """Import sessions in date order, clearing each stop criterion before the sessions after it."""
    (build.out / "rehab").mkdir(parents=True, exist_ok=True)
    imported, pending = 0, sorted(rows, key=lambda r: str(r["session_date"]))
    for part, (clearance, pid) in enumerate(sorted(clearances, key=lambda c: c[0].cleared_on), start=1):
        cut = clearance.cleared_on.isoformat()
        batch = [r for r in pending if str(r["session_date"]) < cut]
        pending = [r for r in pending if str(r["session_date"]) >= cut]
        imported += _import(build, batch, f"sessions_part{part}.csv")
        clear_review(
            build.store,
            by="physio1",
            participant_id=pid,
            session_no=clearance.session_no,
            reason=clearance.reason,
            on=clearance.cleared_on,
            today=build.today,
        )
    return imported + _import(build, pending, "sessions.csv")


def _rehabilitate(build: Build, people: list[_Person]) -> dict[str, Any]:
    """Prescribe and simulate the programme of every exercise-arm participant; import the logs."""
    rng = build.rng("rehab")
    rows: list[dict[str, Any]] = []
    clearances: list[tuple[Clearance, str]] = []
    exercise = [p for p in people if _has_programme(p.arm)]
    for k, person in enumerate(exercise, start=1):
        rx = prescribe(
            build.store, by="physio1", participant_id=person.pid, on=person.randomised_on, today=build.today
        )
        log = synthetic_sessions(
            rx.plan,
            rx.programme,
            participant_id=person.pid,
            start=person.randomised_on + dt.timedelta(days=int(rng.integers(2, 6))),
            today=build.today,
            rng=rng,
            stop_at_session=6 if k == 1 else None,
        )
        schedule = rx.programme.schedule
        person.offered = schedule.weeks * schedule.sessions_per_week
        person.attended = sum(r.get("attended") == "yes" for r in log.rows)
        threshold = math.ceil(schedule.completer_min_fraction * person.offered - 1e-9)
        person.dose = min(1.0, person.attended / threshold)
        person.completer = person.attended >= threshold
        person.pese, person.stops = len(log.pese_sessions), len(log.stop_sessions)
        rows += log.rows
        clearances += [(c, person.pid) for c in log.clearances]
        build.progress("Rehabilitation sessions", k, len(exercise))
    imported = _import_with_clearances(build, rows, clearances)
    return {
        "prescribed": len(exercise),
        "sessions_imported": imported,
        "sessions_attended": sum(p.attended for p in exercise),
        "completers": sum(p.completer for p in exercise),
        "pese_events": sum(p.pese for p in exercise),
        "stop_criteria_cleared": len(clearances),
    }


def _has_programme(arm: str) -> bool:
    try:
        programme_for_arm(arm)
    except PrescriptionError:  # usual care
        return False
    return True


def _week8_states(build: Build, person: _Person, effects: TrialEffects) -> None:
    untreated = person.immune0.jittered(build.rng("immune"), WITHIN_PERSON_CV).scaled(NAIVE_DRIFT)
    person.untreated8 = untreated
    person.treated8 = untreated.scaled({g: effects.ratio(g) ** person.dose for g in MEMORY_GATES})
    for gate in MEMORY_GATES:
        for quantity in ("pct_parent", "per_ul"):
            before = outcome_value(untreated, gate, quantity)
            person.effects[f"{gate}:{quantity}"] = math.log(
                outcome_value(person.treated8, gate, quantity) / before
            )


def _week8(build: Build, person: _Person, effects: TrialEffects) -> None:
    """The week-8 visit (or a missed one), its blood draw and the clinical measures' true effects."""
    rng = build.rng("clinic")
    _week8_states(build, person, effects)
    function, gains = trial_function(
        rng,
        person.baseline,
        dose=person.dose,
        iswt_m=effects.iswt_m,
        eswt_s=effects.eswt_s,
        sts_reps=effects.sts_reps,
    )
    person.effects |= gains
    symptoms = questionnaires(rng, person.burden, improvement=0.25)
    concentrations = trial_concentrations(
        build.rng("cytokines"), person.cytokine_offsets, person.burden - 0.25
    )
    dropped = _has_programme(person.arm) and person.dose < 0.3
    missed = rng.random() < build.preset.missing_visit + (0.35 if dropped else 0.0)
    day = person.randomised_on + dt.timedelta(days=56 + int(rng.integers(-5, 6)))
    if missed or day > build.today:
        if rng.random() < 0.5:
            person.withdrawn_on = person.randomised_on + dt.timedelta(days=int(rng.integers(14, 50)))
            withdraw_participant(
                build.store, by="coord", participant_id=person.pid, reason="participant request (synthetic)",
                on=person.withdrawn_on,
            )  # fmt: skip
        build.visit_truth.append(
            {"participant_id": person.pid, "visit_id": "week8", "date": None, "recorded": False}
        )
        return
    hours = float(rng.uniform(48, 120) if _has_programme(person.arm) else rng.uniform(72, 240))
    values = (
        function
        | symptoms
        | {
            "dsq_pem_present": bool(rng.random() < (0.7 if person.baseline.get("dsq_pem_present") else 0.08)),
            "blood_drawn": True,
            "blood_sample_type": "whole_blood",
            "hours_since_exercise": round(hours, 1),
        }
    )
    build.record(person.pid, "week8", day, values, by="assessor1")
    person.week8_on = day
    assert person.treated8 is not None
    build.draws.append(BloodDraw(person.pid, "week8", day, person.treated8, concentrations))
    build.visit_truth.append(
        {"participant_id": person.pid, "visit_id": "week8", "date": day, "recorded": True}
    )


def _truth_row(outcome: str, population: str, scale: str, values: list[float], log: bool) -> dict[str, Any]:
    mean = float(np.mean(values)) if values else math.nan
    return {
        "outcome": outcome,
        "population": population,
        "scale": scale,
        "true_effect": math.exp(mean) if log else mean,
        "n_exercise": len(values),
    }


def _effects_table(build: Build, people: list[_Person]) -> pd.DataFrame:
    """True arm effects per outcome of the analysis plan: mean individual effect in the exercise arm
    (ITT) and among its completers (per protocol); ratios for log-scale outcomes."""
    plan = build.protocol.analysis
    assert plan is not None
    exercise = [p for p in people if _has_programme(p.arm)]
    rows = []
    for outcome in plan.outcomes:
        source = outcome.source
        if outcome.model == "descriptive":
            continue
        if source.type == "cytometry":
            key, log = f"{source.gate}:{source.quantity}", True
        elif source.type == "visit":
            key, log = source.measure, outcome.transform == "log"
        else:  # cytokines, questionnaires: no arm effect
            key, log = "", outcome.transform == "log"
        scale = "ratio" if outcome.transform == "log" else "difference"
        for population, group in (("itt", exercise), ("per_protocol", [p for p in exercise if p.completer])):
            values = [p.effects.get(key, 0.0) for p in group]
            rows.append(_truth_row(outcome.id, population, scale, values, log))
    return pd.DataFrame(rows)


def _participant_truth(build: Build, person: _Person) -> None:
    row = build.people[person.pid]
    row |= {
        "arm": person.arm,
        "randomised_on": person.randomised_on,
        "symptom_burden": round(person.burden, 4),
        "sessions_offered": person.offered,
        "sessions_attended": person.attended,
        "dose": round(person.dose, 4),
        "completer": person.completer,
        "pese_events": person.pese,
        "week8_recorded": person.week8_on is not None,
        "withdrawn_on": person.withdrawn_on,
        **{f"effect_{k.replace(':', '_')}": round(v, 6) for k, v in person.effects.items()},
    }


def simulate_trial(build: Build, effects: TrialEffects) -> None:
    """Build the seed trial into ``build``'s store; truths into ``build``'s tables and summary."""
    eligible = build.enrol()
    people = []
    for k, pid in enumerate(eligible, start=1):
        people.append(_baseline(build, pid))
        build.progress("Baseline visits and randomisation", k, len(eligible))
    rehab = _rehabilitate(build, people)
    for k, person in enumerate(people, start=1):
        _week8(build, person, effects)
        _participant_truth(build, person)
        build.progress("Week-8 visits", k, len(people))
    table = _effects_table(build, people)
    build.tables["truth_effects.csv"] = table
    build.summary |= {
        "screened": len(build.people),
        "randomised": len(people),
        "arms": {arm: sum(p.arm == arm for p in people) for arm in sorted({p.arm for p in people})},
        "week8_recorded": sum(p.week8_on is not None for p in people),
        "withdrawn": sum(p.withdrawn_on is not None for p in people),
        "rehab": rehab,
        "effects_configured": effects.as_dict(),
        "true_effects": {
            f"{r['outcome']}/{r['population']}": round(float(r["true_effect"]), 6)
            for r in table.to_dict("records")
        },
    }
