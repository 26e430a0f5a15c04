"""Moving a dose one step up or down, always inside its caps.

Every function is pure and monotone: ``advance(d) >= d >= step_back(d)`` in the order of
:func:`~immunorehab.rehab.doses.dose_at_least`, and every result lies within the caps.

* Walking advances duration first (to the programme's target, e.g. 30 min), then speed,
  then incline; when the Borg rating is below target, speed rises along with duration.
* Cycling builds duration; the workload is titrated to the Borg target: raised when the
  rating is below target, kept when on target, lowered when too hard.
* Resistance advances sets, then repetitions, then load (with repetitions reset to the
  bottom of the range), the order Harefield uses (domain.md A5).

Step backs: ``intensity`` lowers incline/speed/watts/load one step; ``duration`` lowers
minutes one step (or, for PESE, by the programme's fraction); ``severe`` (PESE or a stop
criterion) lowers both, and for resistance a set as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from immunorehab.errors import RehabError
from immunorehab.rehab.doses import (
    Caps,
    CyclingCaps,
    CyclingDose,
    Dose,
    ResistanceCaps,
    ResistanceDose,
    WalkingCaps,
    WalkingDose,
)
from immunorehab.rehab.programme import Mode, Programme, TrainingType
from immunorehab.rehab.rules import floor_to_increment

__all__ = ["StepBack", "advance", "clamp", "step_back"]


@dataclass(frozen=True, slots=True)
class StepBack:
    """What to lower: intensity, duration (by one step, or by ``duration_fraction``), and a set."""

    intensity: bool = False
    duration: bool = False
    duration_fraction: float | None = None
    drop_set: bool = False


def _r(value: float) -> float:
    return round(value, 6)


def clamp(dose: Dose, caps: Caps) -> Dose:
    """``dose`` forced inside ``caps`` (floors and ceilings)."""
    if isinstance(dose, WalkingDose) and isinstance(caps, WalkingCaps):
        return WalkingDose(
            _r(min(max(dose.minutes, caps.min_minutes), caps.max_minutes)),
            _r(min(max(dose.speed_kmh, caps.min_speed_kmh), caps.max_speed_kmh)),
            _r(min(max(dose.incline_pct, 0.0), caps.max_incline_pct)),
        )
    if isinstance(dose, CyclingDose) and isinstance(caps, CyclingCaps):
        return CyclingDose(
            _r(min(max(dose.minutes, caps.min_minutes), caps.max_minutes)),
            _r(min(max(dose.watts, caps.min_watts), caps.max_watts)),
        )
    if isinstance(dose, ResistanceDose) and isinstance(caps, ResistanceCaps):
        return ResistanceDose(
            _r(min(max(dose.load_kg, caps.min_load_kg), caps.max_load_kg)),
            min(max(dose.sets, caps.min_sets), caps.max_sets),
            min(max(dose.reps, 1), caps.max_reps),
        )
    raise RehabError("dose and caps are of different exercise kinds")


def _training(programme: Programme, exercise_id: str) -> TrainingType:
    return programme.resistance.training(programme.exercise(exercise_id).training)


def advance(
    dose: Dose, caps: Caps, programme: Programme, mode: Mode, *, exercise_id: str, easy: bool
) -> tuple[Dose, str]:
    """One step up; returns the new dose and what changed ('' when nothing can increase).

    ``easy`` means the effort rating was below the target band (aerobic only): intensity
    rises together with duration.
    """
    if isinstance(dose, WalkingDose) and isinstance(caps, WalkingCaps):
        return _advance_walking(dose, caps, programme, mode, easy)
    if isinstance(dose, CyclingDose) and isinstance(caps, CyclingCaps):
        return _advance_cycling(dose, caps, programme, mode, easy)
    if isinstance(dose, ResistanceDose) and isinstance(caps, ResistanceCaps):
        return _advance_resistance(dose, caps, _training(programme, exercise_id))
    raise RehabError(f"cannot advance {exercise_id}: dose and caps differ in kind")


def _advance_walking(
    d: WalkingDose, caps: WalkingCaps, programme: Programme, mode: Mode, easy: bool
) -> tuple[Dose, str]:
    spec = programme.aerobic.walking.mode(mode)
    minutes, speed, incline = d.minutes, d.speed_kmh, d.incline_pct
    changed: list[str] = []
    if minutes < caps.target_minutes:
        minutes = min(minutes + spec.minutes_step, caps.target_minutes)
        changed.append("duration")
        if easy and speed < caps.max_speed_kmh:
            speed = min(speed + spec.speed_step_kmh, caps.max_speed_kmh)
            changed.append("speed")
    elif speed < caps.max_speed_kmh:
        speed = min(speed + spec.speed_step_kmh, caps.max_speed_kmh)
        changed.append("speed")
    elif incline < caps.max_incline_pct and spec.incline_step_pct > 0:
        incline = min(incline + spec.incline_step_pct, caps.max_incline_pct)
        changed.append("incline")
    return WalkingDose(_r(minutes), _r(speed), _r(incline)), " and ".join(changed)


def _advance_cycling(
    d: CyclingDose, caps: CyclingCaps, programme: Programme, mode: Mode, easy: bool
) -> tuple[Dose, str]:
    spec = programme.aerobic.cycling.mode(mode) if programme.aerobic.cycling else None
    if spec is None:
        raise RehabError("the programme defines no cycling")
    minutes, watts = d.minutes, d.watts
    changed: list[str] = []
    if minutes < caps.target_minutes:
        minutes = min(minutes + spec.minutes_step, caps.target_minutes)
        changed.append("duration")
    if easy and watts < caps.max_watts:
        watts = min(watts + spec.watts_step, caps.max_watts)
        changed.append("workload")
    return CyclingDose(_r(minutes), _r(watts)), " and ".join(changed)


def _load_step(load: float, caps: ResistanceCaps, training: TrainingType) -> float:
    return max(caps.increment_kg, floor_to_increment(training.load_step_fraction * load, caps.increment_kg))


def _advance_resistance(d: ResistanceDose, caps: ResistanceCaps, training: TrainingType) -> tuple[Dose, str]:
    if d.sets < caps.max_sets:
        return ResistanceDose(d.load_kg, d.sets + 1, d.reps), "sets"
    if d.reps < caps.max_reps:
        return ResistanceDose(
            d.load_kg, d.sets, min(d.reps + training.reps_step, caps.max_reps)
        ), "repetitions"
    load = _r(d.load_kg + _load_step(d.load_kg, caps, training))
    if load <= caps.max_load_kg + 1e-9:
        return ResistanceDose(load, d.sets, caps.min_reps), "load (repetitions reset)"
    return d, ""


def step_back(
    dose: Dose, caps: Caps, programme: Programme, mode: Mode, *, exercise_id: str, how: StepBack
) -> Dose:
    """One step down as ``how`` says, never below the floors."""
    if isinstance(dose, WalkingDose) and isinstance(caps, WalkingCaps):
        spec = programme.aerobic.walking
        minutes = _shorter(dose.minutes, spec.mode(mode).minutes_step, caps.min_minutes, how)
        speed, incline = dose.speed_kmh, dose.incline_pct
        if how.intensity:
            if incline > 0:
                incline = max(0.0, incline - (spec.standard.incline_step_pct or incline))
            else:
                speed = max(caps.min_speed_kmh, speed - spec.mode(mode).speed_step_kmh)
        return WalkingDose(_r(minutes), _r(speed), _r(incline))
    if isinstance(dose, CyclingDose) and isinstance(caps, CyclingCaps):
        cspec = programme.aerobic.cycling
        if cspec is None:
            raise RehabError("the programme defines no cycling")
        minutes = _shorter(dose.minutes, cspec.mode(mode).minutes_step, caps.min_minutes, how)
        watts = max(caps.min_watts, dose.watts - cspec.mode(mode).watts_step) if how.intensity else dose.watts
        return CyclingDose(_r(minutes), _r(watts))
    if isinstance(dose, ResistanceDose) and isinstance(caps, ResistanceCaps):
        return _step_back_resistance(dose, caps, _training(programme, exercise_id), how)
    raise RehabError(f"cannot step back {exercise_id}: dose and caps differ in kind")


def _shorter(minutes: float, step: float, floor: float, how: StepBack) -> float:
    if not how.duration:
        return minutes
    target = minutes - step
    if how.duration_fraction is not None:
        target = min(target, math.floor(minutes * (1 - how.duration_fraction)))
    return max(floor, target)


def _step_back_resistance(
    d: ResistanceDose, caps: ResistanceCaps, training: TrainingType, how: StepBack
) -> ResistanceDose:
    load, sets, reps = d.load_kg, d.sets, d.reps

    def drop_volume() -> None:
        nonlocal sets, reps
        if sets > caps.min_sets:
            sets -= 1
        else:
            reps = max(1, reps - training.reps_step)

    if how.intensity or how.duration:
        if load > caps.min_load_kg + 1e-9:
            load = max(caps.min_load_kg, _r(load - _load_step(load, caps, training)))
        else:
            drop_volume()
    if how.drop_set:
        drop_volume()
    return ResistanceDose(_r(load), sets, reps)
