"""Builders for rehabilitation tests: baseline values, plans, session outcomes, randomised participants."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from immunorehab.rehab.assessment import Assessment, assessment_from_values
from immunorehab.rehab.doses import CyclingDose, Dose, ResistanceDose, WalkingDose
from immunorehab.rehab.outcome import ExerciseOutcome, SessionOutcome, Symptoms
from immunorehab.rehab.prescribe import Plan, build_plan
from immunorehab.rehab.programme import Programme, load_programme

REPO = Path(__file__).resolve().parents[3]
F2F = REPO / "examples" / "programmes" / "phosp_r_face_to_face.yaml"
REMOTE = REPO / "examples" / "programmes" / "phosp_r_remote.yaml"
EXERCISES = ("leg_press", "knee_extension", "chest_press", "biceps_curl")
R = dt.date(2026, 2, 2)  # randomisation date used by store tests
TODAY = dt.date(2026, 5, 1)

#: Valid values for every required measure of the PHOSP-R baseline visit (foundation measures).
PHOSP_BASELINE: dict[str, Any] = {
    "iswt_distance_m": 300,
    "eswt_time_s": 420,
    "sts_1min_reps": 22,
    "eq5d5l_index": 0.71,
    "eq_vas": 65,
    "facit_fatigue": 30,
    "c19yrsm_symptom_severity": 12,
    "c19yrsm_functional_disability": 6,
    "c19yrsm_overall_health": 5,
    "dsq_pem_present": "no",
    "blood_drawn": "yes",
}


@cache
def programme(path: Path = F2F) -> Programme:
    return load_programme(path)


def rehab_values(*, pem_positive: bool = False, **overrides: Any) -> dict[str, Any]:
    """Rehabilitation baseline measures: ISWT 300 m (15-level, level 5 completed), 1RMs, HR, DSQ-PEM."""
    values: dict[str, Any] = {
        "iswt_distance_m": 300,
        "iswt_levels": "15",
        "iswt_last_level": 5,
        "mwt6_distance_m": 380,
        "sts_5rep_time_s": 12.5,
        "hr_rest_bpm": 72,
        "spo2_rest_pct": 96,
    }
    for ex in EXERCISES:
        values |= {f"rm_{ex}_load_kg": 40, f"rm_{ex}_reps": 6, f"rm_{ex}_method": "brzycki"}
    for item in range(1, 6):
        values[f"dsq_pem_{item}_frequency"] = 3 if pem_positive and item == 2 else 1
        values[f"dsq_pem_{item}_severity"] = 2 if pem_positive and item == 2 else 1
    values["dsq_pem_present"] = "yes" if pem_positive else "no"
    values.update(overrides)
    return values


def assessment(*, prog: Programme | None = None, age: int | None = 60, **overrides: Any) -> Assessment:
    return assessment_from_values(
        rehab_values(**overrides), participant_id="LEI-0001", age_years=age, programme=prog or programme()
    )


def plan(*, prog: Programme | None = None, **overrides: Any) -> Plan:
    prog = prog or programme()
    return build_plan(assessment(prog=prog, **overrides), prog)


def symptoms(level: int = 3) -> Symptoms:
    return Symptoms(level, level, level, level)


def exercise_outcomes(
    doses: Mapping[str, Dose],
    *,
    borg: float = 3.5,
    rpe: int = 13,
    completion: float = 1.0,
    only: tuple[str, ...] | None = None,
) -> tuple[ExerciseOutcome, ...]:
    """Every exercise done as prescribed (scaled by ``completion``) with the given ratings."""
    out = []
    for eid, dose in doses.items():
        if only is not None and eid not in only:
            continue
        done: Dose
        if isinstance(dose, WalkingDose):
            done = WalkingDose(dose.minutes * completion, dose.speed_kmh, dose.incline_pct)
            out.append(ExerciseOutcome(eid, done, borg_dyspnoea=borg))
        elif isinstance(dose, CyclingDose):
            done = CyclingDose(dose.minutes * completion, dose.watts)
            out.append(ExerciseOutcome(eid, done, borg_dyspnoea=borg))
        else:
            assert isinstance(dose, ResistanceDose)
            reps = dose.reps if completion >= 1 else int(dose.reps * completion)
            out.append(ExerciseOutcome(eid, ResistanceDose(dose.load_kg, dose.sets, reps), rpe=rpe))
    return tuple(out)


def outcome(
    doses: Mapping[str, Dose],
    number: int,
    day: dt.date,
    *,
    borg: float = 3.5,
    rpe: int = 13,
    completion: float = 1.0,
    pre: Symptoms | None = None,
    after: Symptoms | None = None,
    **kwargs: Any,
) -> SessionOutcome:
    """A well-tolerated session by default (Borg 3.5, RPE 13: on every target; follow-up without a rise)."""
    pre = pre if pre is not None else symptoms(3)
    values: dict[str, Any] = {
        "hr_pre_bpm": 75,
        "hr_peak_bpm": 110,
        "hr_post_bpm": 82,
        "spo2_pre_pct": 97,
        "spo2_lowest_pct": 94,
        "borg_dyspnoea": borg,
        "rpe": rpe,
        "symptoms_pre": pre,
        "symptoms_24h": after if after is not None else pre,
    }
    values.update(kwargs)
    exercises = exercise_outcomes(doses, borg=borg, rpe=rpe, completion=completion)
    return SessionOutcome(number, day, exercises=exercises, **values)


# -- store helpers -----------------------------------------------------------------------


def randomised_to(store: Any, arm: str, *, on: dt.date = R, baseline: bool = True, **rehab: Any) -> str:
    """Enrol participants until one is allocated to ``arm``; record its full baseline visit."""
    from factories import person
    from immunorehab.study.allocation import randomise
    from immunorehab.study.participants import add_participant
    from immunorehab.study.visits import record_visit

    for _ in range(12):
        pid = add_participant(store, by="coord", values=person()).participant_id
        if randomise(store, by="coord", participant_id=pid, on=on).arm == arm:
            if baseline:
                values = {**PHOSP_BASELINE, **rehab_values(**rehab)}
                record_visit(
                    store,
                    by="physio1",
                    participant_id=pid,
                    visit_id="baseline",
                    visit_date=on,
                    values=values,
                    today=TODAY,
                )
            return pid
    raise AssertionError(f"no participant allocated to {arm} in 12 tries")
