"""Exercise doses and their caps: the values a prescription and the progression engine work on.

Three kinds of exercise, each with a dose and its caps (floors and ceilings):

* walking (treadmill or outdoors): minutes, speed in km/h, incline in %;
* cycling (ergometer): minutes, watts;
* resistance (one exercise): load in kg, sets, repetitions per set.

Doses are ordered so that "a prescription never lower than another" has a meaning:
aerobic doses componentwise (every component >=), resistance doses lexicographically by
(load, sets, reps) -- the order in which the programme progresses them (sets, then reps,
then load with reps reset; domain.md A5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from immunorehab.errors import RehabError

__all__ = [
    "Caps",
    "CyclingCaps",
    "CyclingDose",
    "Dose",
    "ResistanceCaps",
    "ResistanceDose",
    "WalkingCaps",
    "WalkingDose",
    "caps_from_dict",
    "describe_dose",
    "dose_at_least",
    "dose_from_dict",
    "dose_to_dict",
    "dose_within_caps",
    "kind_of_dose",
    "round_kmh",
    "work",
]

_EPS = 1e-9


def round_kmh(speed_kmh: float) -> float:
    """A treadmill setting: km/h to 0.1, rounded to nearest (ties down)."""
    return math.ceil(speed_kmh * 10 - 0.5 - _EPS) / 10 if speed_kmh > 0 else 0.0


@dataclass(frozen=True, slots=True)
class WalkingDose:
    """Walking for ``minutes`` at ``speed_kmh`` on ``incline_pct`` gradient."""

    minutes: float
    speed_kmh: float
    incline_pct: float = 0.0


@dataclass(frozen=True, slots=True)
class CyclingDose:
    """Cycling for ``minutes`` at ``watts``."""

    minutes: float
    watts: float


@dataclass(frozen=True, slots=True)
class ResistanceDose:
    """``sets`` x ``reps`` with ``load_kg``."""

    load_kg: float
    sets: int
    reps: int


Dose = WalkingDose | CyclingDose | ResistanceDose


@dataclass(frozen=True, slots=True)
class WalkingCaps:
    """Floors and ceilings of walking; ``target_minutes`` is the duration goal (e.g. 30 min)."""

    min_minutes: float
    target_minutes: float
    max_minutes: float
    min_speed_kmh: float
    max_speed_kmh: float
    max_incline_pct: float


@dataclass(frozen=True, slots=True)
class CyclingCaps:
    min_minutes: float
    target_minutes: float
    max_minutes: float
    min_watts: float
    max_watts: float


@dataclass(frozen=True, slots=True)
class ResistanceCaps:
    """Load in kg between one increment and the capped fraction of 1RM; sets/reps from the training type."""

    increment_kg: float
    min_load_kg: float
    max_load_kg: float
    min_sets: int
    max_sets: int
    min_reps: int
    max_reps: int


Caps = WalkingCaps | CyclingCaps | ResistanceCaps


def kind_of_dose(dose: Dose) -> str:
    if isinstance(dose, WalkingDose):
        return "walking"
    if isinstance(dose, CyclingDose):
        return "cycling"
    return "resistance"


def dose_at_least(a: Dose, b: Dose) -> bool:
    """Whether dose ``a`` is not lower than ``b`` (componentwise aerobic; lexicographic resistance)."""
    if isinstance(a, WalkingDose) and isinstance(b, WalkingDose):
        return (
            a.minutes >= b.minutes - _EPS
            and a.speed_kmh >= b.speed_kmh - _EPS
            and a.incline_pct >= b.incline_pct - _EPS
        )
    if isinstance(a, CyclingDose) and isinstance(b, CyclingDose):
        return a.minutes >= b.minutes - _EPS and a.watts >= b.watts - _EPS
    if isinstance(a, ResistanceDose) and isinstance(b, ResistanceDose):
        return (round(a.load_kg, 6), a.sets, a.reps) >= (round(b.load_kg, 6), b.sets, b.reps)
    raise RehabError(f"cannot compare a {kind_of_dose(a)} dose with a {kind_of_dose(b)} dose")


def dose_within_caps(dose: Dose, caps: Caps) -> list[str]:
    """Every way ``dose`` exceeds ``caps`` (empty when within); floors are not checked here."""
    over: list[str] = []

    def check(name: str, value: float, limit: float, unit: str) -> None:
        if value > limit + _EPS:
            over.append(f"{name} {value:g}{unit} is above the cap of {limit:g}{unit}")

    if isinstance(dose, WalkingDose) and isinstance(caps, WalkingCaps):
        check("minutes", dose.minutes, caps.max_minutes, " min")
        check("speed", dose.speed_kmh, caps.max_speed_kmh, " km/h")
        check("incline", dose.incline_pct, caps.max_incline_pct, "%")
    elif isinstance(dose, CyclingDose) and isinstance(caps, CyclingCaps):
        check("minutes", dose.minutes, caps.max_minutes, " min")
        check("workload", dose.watts, caps.max_watts, " W")
    elif isinstance(dose, ResistanceDose) and isinstance(caps, ResistanceCaps):
        check("load", dose.load_kg, caps.max_load_kg, " kg")
        check("sets", dose.sets, caps.max_sets, "")
        check("repetitions", dose.reps, caps.max_reps, "")
    else:
        raise RehabError(f"caps do not fit a {kind_of_dose(dose)} dose")
    return over


def work(dose: Dose) -> float:
    """External work of a dose: walking distance (m), cycling energy (kJ), resistance volume load (kg).

    Used to compare what was done with what was prescribed (incline is not counted).
    """
    if isinstance(dose, WalkingDose):
        return dose.minutes * dose.speed_kmh * 1000 / 60
    if isinstance(dose, CyclingDose):
        return dose.minutes * 60 * dose.watts / 1000
    return dose.sets * dose.reps * dose.load_kg


def describe_dose(dose: Dose) -> str:
    """Short human text, e.g. ``12 min at 4.2 km/h, 1% incline`` or ``2 x 10 x 37 kg``."""
    if isinstance(dose, WalkingDose):
        incline = f", {dose.incline_pct:g}% incline" if dose.incline_pct else ""
        return f"{dose.minutes:g} min at {dose.speed_kmh:.1f} km/h{incline}"
    if isinstance(dose, CyclingDose):
        return f"{dose.minutes:g} min at {dose.watts:g} W"
    return f"{dose.sets} x {dose.reps} x {dose.load_kg:g} kg"


def dose_to_dict(dose: Dose) -> dict[str, Any]:
    return {"kind": kind_of_dose(dose), **asdict(dose)}


def dose_from_dict(data: dict[str, Any]) -> Dose:
    values = {k: v for k, v in data.items() if k != "kind"}
    kind = data.get("kind")
    if kind == "walking":
        return WalkingDose(**values)
    if kind == "cycling":
        return CyclingDose(**values)
    if kind == "resistance":
        return ResistanceDose(**values)
    raise RehabError(f"unknown dose kind {kind!r}")


def caps_from_dict(kind: str, data: dict[str, Any]) -> Caps:
    if kind == "walking":
        return WalkingCaps(**data)
    if kind == "cycling":
        return CyclingCaps(**data)
    return ResistanceCaps(**data)
