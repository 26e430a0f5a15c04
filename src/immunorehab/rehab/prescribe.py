"""Individual prescription: the starting dose of every exercise, its caps and how it was derived.

:func:`build_plan` is pure: a validated :class:`~immunorehab.rehab.programme.Programme`
and a baseline :class:`~immunorehab.rehab.assessment.Assessment` in, a :class:`Plan` out.

* Walking (domain.md A3): the ISWT distance gives a speed by the programme's method
  (Singh 1994 VO2peak fraction -> ISWT-level speed, or a fraction of the peak ISWT
  speed), rounded to a treadmill setting (0.1 km/h) and never above the speed of the
  level in which the baseline ISWT ended. The duration starts at the mode's start and
  builds to the programme's target (30 min continuous by the end).
* Cycling: the mode's start workload; the progression engine titrates it to the Borg
  CR10 dyspnoea target.
* Resistance (A5): load = start fraction of 1RM (strength ~60%, endurance ~40%),
  rounded DOWN to the equipment's increment; sets and reps at the low end of the
  training type's range; capped at the programme's maximum fraction of 1RM.
* Heart rate (A3, A7): the programme's band (Karvonen or % of 220 - age) and the stop
  limit of 85% of the age-predicted maximum.
* A positive DSQ-PEM screen (A8) puts the participant in the symptom-titrated pacing
  mode: lower start, slower progression, longer recovery between sessions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from immunorehab.errors import AssessmentError, Problem, RehabError
from immunorehab.rehab.assessment import Assessment, OneRm
from immunorehab.rehab.doses import (
    Caps,
    CyclingCaps,
    CyclingDose,
    Dose,
    ResistanceCaps,
    ResistanceDose,
    WalkingCaps,
    WalkingDose,
    caps_from_dict,
    describe_dose,
    dose_from_dict,
    dose_to_dict,
    round_kmh,
)
from immunorehab.rehab.programme import ExerciseKind, Mode, Programme
from immunorehab.rehab.rules import (
    HeartRateBand,
    PemScreen,
    WalkingSpeed,
    floor_to_increment,
    heart_rate_band,
    hr_stop_limit,
    iswt_level_at_distance,
    iswt_level_speed,
    kmh,
    walking_speed_from_iswt,
)

__all__ = ["ExercisePlan", "Plan", "build_plan", "plan_from_json"]


@dataclass(frozen=True, slots=True)
class ExercisePlan:
    """One exercise of a plan: its starting dose, caps and the derivation in words."""

    exercise_id: str
    kind: ExerciseKind
    label: str
    start: Dose
    caps: Caps
    basis: str
    training: str | None = None
    one_rm: OneRm | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """A participant's prescription (the starting point of the progression engine)."""

    participant_id: str
    programme_id: str
    programme_version: str
    programme_sha256: str
    mode: Mode
    pem: PemScreen
    walking_speed: WalkingSpeed
    exercises: tuple[ExercisePlan, ...]
    heart_rate: HeartRateBand | None
    hr_stop_bpm: float
    spo2_floor_pct: float
    age_years: int

    def exercise(self, exercise_id: str) -> ExercisePlan:
        for item in self.exercises:
            if item.exercise_id == exercise_id:
                return item
        known = ", ".join(e.exercise_id for e in self.exercises)
        raise RehabError(f"the prescription has no exercise {exercise_id!r} (exercises: {known})")

    def start_doses(self) -> dict[str, Dose]:
        return {e.exercise_id: e.start for e in self.exercises}

    def to_json(self) -> str:
        """Canonical JSON (stored with the prescription; :func:`plan_from_json` reads it back)."""
        data = asdict(self)
        data["exercises"] = [
            {**asdict(e), "start": dose_to_dict(e.start), "caps": asdict(e.caps)} for e in self.exercises
        ]
        return json.dumps(data, sort_keys=True, default=str)


def plan_from_json(text: str) -> Plan:
    """The :class:`Plan` stored by :meth:`Plan.to_json`."""
    data: dict[str, Any] = json.loads(text)
    exercises = tuple(
        ExercisePlan(
            exercise_id=e["exercise_id"],
            kind=e["kind"],
            label=e["label"],
            start=dose_from_dict(e["start"]),
            caps=caps_from_dict(e["kind"], e["caps"]),
            basis=e["basis"],
            training=e["training"],
            one_rm=OneRm(**e["one_rm"]) if e["one_rm"] else None,
        )
        for e in data["exercises"]
    )
    pem = data["pem"]
    return Plan(
        participant_id=data["participant_id"],
        programme_id=data["programme_id"],
        programme_version=data["programme_version"],
        programme_sha256=data["programme_sha256"],
        mode=data["mode"],
        pem=PemScreen(
            pem["positive"],
            tuple(pem["items"]),
            None if pem["frequency"] is None else tuple(pem["frequency"]),
            None if pem["severity"] is None else tuple(pem["severity"]),
            pem["source"],
        ),
        walking_speed=WalkingSpeed(**data["walking_speed"]),
        exercises=exercises,
        heart_rate=HeartRateBand(**data["heart_rate"]) if data["heart_rate"] else None,
        hr_stop_bpm=data["hr_stop_bpm"],
        spo2_floor_pct=data["spo2_floor_pct"],
        age_years=data["age_years"],
    )


def _walking(programme: Programme, a: Assessment, mode: Mode) -> tuple[ExercisePlan, WalkingSpeed]:
    spec = programme.aerobic.walking
    start = spec.mode(mode)
    speed = walking_speed_from_iswt(
        a.iswt_distance_m,
        start.start_fraction,
        levels=a.iswt_levels,
        method=spec.method,
        intercept=spec.vo2peak_equation.intercept,
        slope=spec.vo2peak_equation.slope,
    )
    peak_level = iswt_level_at_distance(a.iswt_distance_m, levels=a.iswt_levels)
    peak_kmh = kmh(iswt_level_speed(peak_level, levels=a.iswt_levels))
    individual = floor_to_increment(spec.max_speed_fraction_of_iswt_peak * peak_kmh, 0.1)
    max_speed = max(min(spec.max_speed_kmh, individual), spec.min_speed_kmh)
    caps = WalkingCaps(
        min_minutes=spec.min_minutes,
        target_minutes=spec.target_minutes,
        max_minutes=spec.max_minutes,
        min_speed_kmh=spec.min_speed_kmh,
        max_speed_kmh=round(max_speed, 1),
        max_incline_pct=spec.max_incline_pct,
    )
    setting = min(max(round_kmh(speed.speed_kmh), spec.min_speed_kmh), caps.max_speed_kmh)
    dose = WalkingDose(minutes=start.start_minutes, speed_kmh=setting, incline_pct=0.0)
    basis = (
        f"{speed.describe()}; treadmill {setting:.1f} km/h (cap {caps.max_speed_kmh:.1f} km/h = "
        f"{spec.max_speed_fraction_of_iswt_peak:.0%} of ISWT peak level {peak_level}); "
        f"{start.start_minutes:g} min "
        f"building by {start.minutes_step:g} min to {spec.target_minutes:g} min continuous"
    )
    label = "Walking (treadmill)" if programme.programme.delivery == "supervised" else "Walking"
    return ExercisePlan("walking", "walking", label, dose, caps, basis), speed


def _cycling(programme: Programme, mode: Mode) -> ExercisePlan | None:
    spec = programme.aerobic.cycling
    if spec is None:
        return None
    start = spec.mode(mode)
    caps = CyclingCaps(
        spec.min_minutes, spec.target_minutes, spec.max_minutes, spec.min_watts, spec.max_watts
    )
    target = spec.borg_dyspnoea_target
    basis = (
        f"start {start.start_watts:g} W for {start.start_minutes:g} min, titrated by {start.watts_step:g} "
        "W to "
        f"Borg CR10 dyspnoea {target.low:g}-{target.high:g}; duration building to {spec.target_minutes:g} min"
    )
    dose = CyclingDose(minutes=start.start_minutes, watts=start.start_watts)
    return ExercisePlan("cycling", "cycling", "Cycling (ergometer)", dose, caps, basis)


def _resistance(
    programme: Programme, a: Assessment, mode: Mode, problems: list[Problem]
) -> list[ExercisePlan]:
    spec = programme.resistance
    plans = []
    for exercise in spec.exercises:
        one_rm = a.one_rm_of(exercise.id)
        training = spec.training(exercise.training)
        scale = spec.pacing_start_scale if mode == "pacing" else 1.0
        inc = spec.load_increment_kg
        max_load = floor_to_increment(spec.max_fraction_1rm * one_rm.one_rm_kg, inc)
        if max_load < inc:
            problems.append(
                Problem(
                    f"baseline visit, measure rm_{exercise.id}_load_kg",
                    f"{one_rm.describe()} is too light for {inc:g} kg load steps (cap "
                    f"{spec.max_fraction_1rm:.0%} of 1RM = {spec.max_fraction_1rm * one_rm.one_rm_kg:.2f} "
                    "kg)",
                )
            )
            continue
        fraction = training.start_fraction_1rm * scale
        load = min(max(floor_to_increment(fraction * one_rm.one_rm_kg, inc), inc), max_load)
        caps = ResistanceCaps(
            increment_kg=inc,
            min_load_kg=inc,
            max_load_kg=max_load,
            min_sets=1,
            max_sets=int(training.sets.high),
            min_reps=int(training.reps.low),
            max_reps=int(training.reps.high),
        )
        dose = ResistanceDose(load_kg=load, sets=int(training.sets.low), reps=int(training.reps.low))
        basis = (
            f"{one_rm.describe()} -> {exercise.training} {fraction:.0%} = "
            f"{fraction * one_rm.one_rm_kg:.1f} kg -> "
            f"{describe_dose(dose)} ({inc:g} kg steps), RPE "
            f"{training.rpe_target.low:g}-{training.rpe_target.high:g}; "
            f"cap {spec.max_fraction_1rm:.0%} of 1RM = {max_load:g} kg"
        )
        plans.append(
            ExercisePlan(
                exercise.id, "resistance", exercise.label, dose, caps, basis, exercise.training, one_rm
            )
        )
    return plans


def build_plan(assessment: Assessment, programme: Programme, *, mode: Mode | None = None) -> Plan:
    """The individual prescription of ``programme`` for a participant's baseline ``assessment``.

    Parameters
    ----------
    assessment
        Baseline assessment (ISWT, 1RM per exercise, age, resting HR, DSQ-PEM screen).
    programme
        The validated programme.
    mode
        Force ``"standard"`` or ``"pacing"``; by default pacing when the DSQ-PEM screen is
        positive (domain.md A8), otherwise standard.

    Returns
    -------
    Plan
        Starting doses, caps, HR band and limits, with the derivation of each dose.

    Raises
    ------
    AssessmentError
        A 1RM too small for the equipment's load steps.
    """
    chosen: Mode = mode or ("pacing" if assessment.pem.positive else "standard")
    walking, speed = _walking(programme, assessment, chosen)
    problems: list[Problem] = []
    exercises = [walking]
    cycling = _cycling(programme, chosen)
    if cycling is not None:
        exercises.append(cycling)
    exercises += _resistance(programme, assessment, chosen, problems)
    if problems:
        raise AssessmentError(f"{assessment.participant_id}: cannot prescribe resistance training", problems)
    band = None
    if programme.heart_rate is not None:
        hr = programme.heart_rate
        band = heart_rate_band(
            assessment.age_years,
            hr.band.low,
            hr.band.high,
            method=hr.method,
            hr_rest_bpm=assessment.hr_rest_bpm,
        )
    return Plan(
        participant_id=assessment.participant_id,
        programme_id=programme.id,
        programme_version=programme.programme.version,
        programme_sha256=programme.sha256(),
        mode=chosen,
        pem=assessment.pem,
        walking_speed=speed,
        exercises=tuple(exercises),
        heart_rate=band,
        hr_stop_bpm=hr_stop_limit(assessment.age_years, programme.safety.hr_limit_fraction_of_max),
        spo2_floor_pct=programme.safety.spo2_floor_pct,
        age_years=assessment.age_years,
    )
