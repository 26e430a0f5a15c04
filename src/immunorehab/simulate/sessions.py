"""Synthetic rehabilitation data: baseline assessments and 8 weeks of session logs (no real people).

Baseline values follow post-COVID hospitalised cohorts (PHOSP-R: age 59 +/- 12; domain.md
section 0): ISWT around 400 m with a modified 15-level test, resting HR ~78 bpm, SpO2
~96%, sex-dependent 1RMs, and a DSQ-PEM screen positive in roughly a third.

Sessions are generated in lockstep with the progression engine, so each session's
prescription is exactly what the engine would prescribe: attendance varies between
participants (some drop out), effort ratings fall as fitness improves, a few sessions
are followed by a post-exertional symptom exacerbation (PESE) -- more often in
participants with a positive PEM screen -- and, when asked for, a session is ended by a
stop criterion (exertional desaturation) and later cleared by a physiotherapist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from immunorehab.rehab.doses import CyclingDose, Dose, ResistanceDose, WalkingDose
from immunorehab.rehab.outcome import Clearance, ExerciseOutcome, SessionOutcome, Symptoms
from immunorehab.rehab.prescribe import Plan
from immunorehab.rehab.programme import Programme
from immunorehab.rehab.progression import decide_session, initial_state
from immunorehab.rehab.rules import iswt_completed_level

__all__ = ["SimulatedLog", "synthetic_baseline", "synthetic_sessions"]

_ONE_RM_KG = {  # (male mean, female mean, sd) -- plausible deconditioned adults
    "leg_press": (100.0, 65.0, 22.0),
    "knee_extension": (45.0, 30.0, 9.0),
    "chest_press": (45.0, 25.0, 9.0),
    "biceps_curl": (14.0, 8.0, 3.0),
}


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def synthetic_baseline(rng: np.random.Generator, *, age_years: int, sex: str | None) -> dict[str, Any]:
    """Rehabilitation baseline measures (protocol measure ids -> values) for one participant."""
    male = sex == "male"
    distance = int(round(_clip(rng.normal(430 - 4 * (age_years - 59), 160), 40, 1100) / 10) * 10)
    values: dict[str, Any] = {
        "iswt_distance_m": distance,
        "iswt_levels": "15",
        "iswt_last_level": iswt_completed_level(distance, levels=15),
        "eswt_time_s": int(_clip(rng.normal(320, 150), 60, 1200)),
        "mwt6_distance_m": int(_clip(rng.normal(390, 90), 100, 750)),
        "sts_1min_reps": int(_clip(rng.normal(21, 6), 5, 50)),
        "sts_5rep_time_s": round(_clip(rng.normal(13, 4), 6, 40), 1),
        "hr_rest_bpm": int(_clip(rng.normal(78, 10), 50, 110)),
        "spo2_rest_pct": int(_clip(rng.normal(96.5, 1.5), 91, 100)),
    }
    for exercise, (m_mean, f_mean, sd) in _ONE_RM_KG.items():
        one_rm = _clip(rng.normal(m_mean if male else f_mean, sd), 4, 300)
        method = str(rng.choice(["brzycki", "epley", "measured"], p=[0.6, 0.2, 0.2]))
        if method == "measured":
            load, reps = round(one_rm * 2) / 2, 1
        else:
            reps = int(rng.integers(5, 11))
            factor = 36 / (37 - reps) if method == "brzycki" else 1 + reps / 30
            load = max(0.5, round(one_rm / factor * 2) / 2)
        values |= {
            f"rm_{exercise}_load_kg": load,
            f"rm_{exercise}_reps": reps,
            f"rm_{exercise}_method": method,
        }
    pem_prone = rng.random() < 0.3
    for item in range(1, 6):
        mean = 2.2 if pem_prone else 0.5
        values[f"dsq_pem_{item}_frequency"] = int(_clip(round(rng.normal(mean, 0.9)), 0, 4))
        values[f"dsq_pem_{item}_severity"] = int(_clip(round(rng.normal(mean, 0.9)), 0, 4))
    values["dsq_pem_present"] = any(
        values[f"dsq_pem_{i}_frequency"] >= 2 and values[f"dsq_pem_{i}_severity"] >= 2 for i in range(1, 6)
    )
    return values


@dataclass(frozen=True, slots=True)
class SimulatedLog:
    """Session rows (session-log CSV fields) and the clearances a physio gave."""

    rows: list[dict[str, Any]]
    clearances: list[Clearance]
    pese_sessions: list[int]
    stop_sessions: list[int]


def _done(dose: Dose, completion: float) -> Dose:
    if isinstance(dose, WalkingDose):
        return WalkingDose(round(dose.minutes * completion, 1), dose.speed_kmh, dose.incline_pct)
    if isinstance(dose, CyclingDose):
        return CyclingDose(round(dose.minutes * completion, 1), dose.watts)
    assert isinstance(dose, ResistanceDose)
    reps = dose.reps if completion >= 1 else max(1, int(dose.reps * completion))
    return ResistanceDose(dose.load_kg, dose.sets, reps)


def _dose_fields(eid: str, dose: Dose) -> dict[str, Any]:
    if isinstance(dose, WalkingDose):
        return {
            f"{eid}_minutes": dose.minutes,
            f"{eid}_speed_kmh": dose.speed_kmh,
            f"{eid}_incline_pct": dose.incline_pct,
        }
    if isinstance(dose, CyclingDose):
        return {f"{eid}_minutes": dose.minutes, f"{eid}_watts": dose.watts}
    assert isinstance(dose, ResistanceDose)
    return {f"{eid}_sets": dose.sets, f"{eid}_reps": dose.reps, f"{eid}_kg": dose.load_kg}


def _session_dates(start: dt.date, programme: Programme, rng: np.random.Generator) -> list[dt.date]:
    per_week = programme.schedule.sessions_per_week
    offsets = np.linspace(0, 7, per_week, endpoint=False).round().astype(int)
    dates = []
    for week in range(programme.schedule.weeks):
        for offset in offsets:
            jitter = int(rng.choice([0, 0, 0, 1]))
            dates.append(start + dt.timedelta(days=7 * week + int(offset) + jitter))
    return dates


def synthetic_sessions(
    plan: Plan,
    programme: Programme,
    *,
    participant_id: str,
    start: dt.date,
    today: dt.date,
    rng: np.random.Generator,
    stop_at_session: int | None = None,
) -> SimulatedLog:
    """Simulate a participant's programme from ``start`` up to ``today`` in lockstep with the engine.

    ``stop_at_session`` forces an exertional desaturation (SpO2 below the floor) during
    walking at that session; a physio clears it two days later.
    """
    attend_p = float(np.clip(rng.beta(9, 1.5), 0.3, 0.99))
    dropout_after = int(rng.integers(4, 16)) if rng.random() < 0.12 else None
    pese_p = 0.06 if plan.pem.positive else 0.02
    fitness = 0.0
    remote = programme.programme.delivery == "remote"
    state = initial_state(plan)
    rows: list[dict[str, Any]] = []
    clearances: list[Clearance] = []
    pese_sessions, stop_sessions = [], []
    base_sym = {name: int(rng.integers(1, 6)) for name in ("fatigue", "breathlessness", "pain", "cognition")}
    for number, day in enumerate(_session_dates(start, programme, rng), start=1):
        if day > today:
            break
        attended = (dropout_after is None or number <= dropout_after) and (
            rng.random() < attend_p or number == stop_at_session
        )
        row: dict[str, Any] = {
            "participant_id": participant_id,
            "session_no": number,
            "session_date": day.isoformat(),
        }
        if not attended:
            row["attended"] = "no"
            rows.append(row)
            outcome = SessionOutcome(number, day, attended=False)
            _, state = decide_session(state, outcome, plan=plan, programme=programme, clearances=clearances)
            continue
        fitness += 0.06
        pre = {k: int(_clip(v + int(rng.integers(-1, 2)), 0, 10)) for k, v in base_sym.items()}
        pese = rng.random() < pese_p
        after24 = {k: int(_clip(v + int(rng.integers(-1, 2)), 0, 10)) for k, v in pre.items()}
        if pese:
            after24["fatigue"] = int(_clip(pre["fatigue"] + int(rng.integers(2, 5)), 0, 10))
            pese_sessions.append(number)
        stop = number == stop_at_session
        exercises = []
        for ex in plan.exercises:
            dose = state.doses[ex.exercise_id]
            completion = 1.0 if rng.random() < 0.85 else float(rng.uniform(0.6, 0.95))
            if stop and ex.kind != "walking":
                continue
            if stop:
                completion = 0.5
            done = _done(dose, completion)
            effort = 3.3 + rng.normal(0, 0.7) - fitness
            borg = round(_clip(effort + (0.8 if completion < 1 else 0.0), 0, 10) * 2) / 2
            rpe = int(_clip(round(14 + rng.normal(0, 1.3) - 2 * fitness), 6, 20))
            exercises.append(
                ExerciseOutcome(
                    ex.exercise_id,
                    done,
                    None,
                    borg if ex.kind != "resistance" else None,
                    None,
                    rpe if ex.kind == "resistance" else None,
                )
            )
            row |= _dose_fields(ex.exercise_id, done)
            if ex.kind == "resistance":
                row[f"{ex.exercise_id}_rpe"] = rpe
            else:
                row[f"{ex.exercise_id}_borg_dyspnoea"] = borg
        hr_rest = 75 + rng.normal(0, 6)
        spo2_low = int(_clip(round(rng.normal(94, 1.5)), 89, 99))
        if stop:
            spo2_low = int(plan.spo2_floor_pct) - 3
            stop_sessions.append(number)
        vitals = {
            "hr_pre_bpm": int(hr_rest),
            "hr_peak_bpm": int(_clip(hr_rest + 30 + rng.normal(0, 8), 60, plan.hr_stop_bpm - 2)),
            "hr_post_bpm": int(hr_rest + 8),
            "spo2_pre_pct": int(_clip(round(rng.normal(96.5, 1)), 92, 100)),
            "spo2_lowest_pct": spo2_low,
        }
        if remote and rng.random() < 0.5 and not stop:
            vitals = {}  # many home participants have no oximeter/HR monitor
        followup = rng.random() < 0.94 or pese
        row |= {
            "attended": "yes",
            "delivery": "remote" if remote else "supervised",
            "education_attended": "yes" if rng.random() < 0.9 else "no",
            **vitals,
            "borg_dyspnoea": exercises[0].borg_dyspnoea if exercises else None,
            "rpe": int(_clip(round(13 + rng.normal(0, 1)), 6, 20)),
            **{f"symptoms_pre_{k}": v for k, v in pre.items()},
        }
        if followup:
            row |= {f"symptoms_24h_{k}": v for k, v in after24.items()}
        if stop:
            row |= {"stop_criteria": "spo2_below_floor", "stopped_during": "walking"}
        if rng.random() < 0.03:
            term = str(
                rng.choice(
                    ["delayed-onset muscle soreness", "knee pain", "light-headedness after the session"]
                )
            )
            row |= {"ae_term": term, "ae_serious": "no", "ae_severity": "mild", "ae_related": "probable"}
        outcome = SessionOutcome(
            number,
            day,
            supervised=not remote,
            exercises=tuple(exercises),
            hr_pre_bpm=vitals.get("hr_pre_bpm"),
            hr_peak_bpm=vitals.get("hr_peak_bpm"),
            hr_post_bpm=vitals.get("hr_post_bpm"),
            spo2_pre_pct=vitals.get("spo2_pre_pct"),
            spo2_lowest_pct=vitals.get("spo2_lowest_pct"),
            borg_dyspnoea=row["borg_dyspnoea"],
            rpe=row["rpe"],
            symptoms_pre=Symptoms(**pre),
            symptoms_24h=Symptoms(**after24) if followup else None,
            red_flags=("spo2_below_floor",) if stop else (),
            stopped_during="walking" if stop else None,
        )
        if stop:
            clearances.append(
                Clearance(
                    number,
                    day + dt.timedelta(days=2),
                    "physio1",
                    "reviewed: exertional desaturation recovered with rest; resting SpO2 normal; resume "
                    "with pacing",
                )
            )
        _, state = decide_session(state, outcome, plan=plan, programme=programme, clearances=clearances)
        rows.append(row)
    return SimulatedLog(rows, clearances, pese_sessions, stop_sessions)
