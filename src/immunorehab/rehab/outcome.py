"""What happened in a session (the engine's input) and the safety findings derived from it.

:class:`SessionOutcome` is a logged session as plain values; :func:`stop_findings` and
:func:`pese_finding` apply the programme's safety and PEM rules to it (domain.md A7, A8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Literal

from immunorehab.rehab.doses import Dose

__all__ = [
    "SYMPTOMS",
    "Clearance",
    "ExerciseOutcome",
    "PeseFinding",
    "SessionOutcome",
    "StopFinding",
    "SymptomRise",
    "Symptoms",
    "pese_finding",
    "stop_findings",
]

#: Symptoms rated 0-10 before a session and 24 h and 48 h after it.
SYMPTOMS: tuple[str, ...] = ("fatigue", "breathlessness", "pain", "cognition")


@dataclass(frozen=True, slots=True)
class Symptoms:
    """Symptom ratings 0 (none) - 10 (worst); ``None`` when not recorded."""

    fatigue: int | None = None
    breathlessness: int | None = None
    pain: int | None = None
    cognition: int | None = None

    def recorded(self) -> dict[str, int]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    def is_empty(self) -> bool:
        return not self.recorded()


@dataclass(frozen=True, slots=True)
class ExerciseOutcome:
    """One exercise of a session: what was prescribed (None = the engine's dose) and done."""

    exercise_id: str
    done: Dose | None
    prescribed: Dose | None = None
    borg_dyspnoea: float | None = None
    borg_fatigue: float | None = None
    rpe: int | None = None
    override: bool = False


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """A logged session (HR in bpm, SpO2 in %, Borg CR10 0-10, RPE 6-20)."""

    session_no: int
    date: dt.date
    attended: bool = True
    supervised: bool = True
    exercises: tuple[ExerciseOutcome, ...] = ()
    hr_pre_bpm: float | None = None
    hr_peak_bpm: float | None = None
    hr_post_bpm: float | None = None
    spo2_pre_pct: float | None = None
    spo2_lowest_pct: float | None = None
    borg_dyspnoea: float | None = None
    borg_fatigue: float | None = None
    rpe: int | None = None
    symptoms_pre: Symptoms | None = None
    symptoms_24h: Symptoms | None = None
    symptoms_48h: Symptoms | None = None
    crash_reported: bool = False
    red_flags: tuple[str, ...] = ()
    stopped_during: str | None = None

    def exercise(self, exercise_id: str) -> ExerciseOutcome | None:
        return next((e for e in self.exercises if e.exercise_id == exercise_id), None)

    def has_followup(self) -> bool:
        """Whether the 24 h (or 48 h) symptom follow-up was recorded."""
        return any(s is not None and not s.is_empty() for s in (self.symptoms_24h, self.symptoms_48h))


@dataclass(frozen=True, slots=True)
class Clearance:
    """A physio's clearance of the clinical review flagged at ``session_no``."""

    session_no: int
    cleared_on: dt.date
    cleared_by: str
    reason: str


@dataclass(frozen=True, slots=True)
class StopFinding:
    """An in-session stop criterion and the values that met it."""

    criterion: str
    detail: str


def stop_findings(
    outcome: SessionOutcome, *, spo2_floor_pct: float, hr_stop_bpm: float, stop_on: tuple[str, ...]
) -> tuple[StopFinding, ...]:
    """Stop criteria met in a session: SpO2 below the floor, HR above the limit, reported red flags.

    Derived criteria are found from the values even if the log did not report them; only
    criteria the programme lists in ``safety.stop_on`` count.
    """
    found: list[StopFinding] = []
    low = outcome.spo2_lowest_pct
    if "spo2_below_floor" in stop_on and low is not None and low < spo2_floor_pct:
        found.append(StopFinding("spo2_below_floor", f"lowest SpO2 {low:g}% < floor {spo2_floor_pct:g}%"))
    peak = outcome.hr_peak_bpm
    if "hr_above_limit" in stop_on and peak is not None and peak > hr_stop_bpm:
        found.append(StopFinding("hr_above_limit", f"peak HR {peak:g} bpm > limit {hr_stop_bpm:.0f} bpm"))
    for flag in outcome.red_flags:
        if flag in stop_on and flag not in {f.criterion for f in found}:
            found.append(StopFinding(flag, f"{flag.replace('_', ' ')} reported"))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class SymptomRise:
    symptom: str
    at: Literal["24h", "48h"]
    before: int
    after: int

    @property
    def rise(self) -> int:
        return self.after - self.before


@dataclass(frozen=True, slots=True)
class PeseFinding:
    """A post-exertional symptom exacerbation: a reported crash and/or symptom rises >= threshold."""

    crash: bool
    rises: tuple[SymptomRise, ...]
    threshold: int

    def describe(self) -> str:
        parts = ["crash reported"] if self.crash else []
        parts += [
            f"{r.symptom} {r.before} -> {r.after} at {r.at} (+{r.rise} >= {self.threshold})"
            for r in self.rises
        ]
        return "PESE: " + "; ".join(parts)


def pese_finding(outcome: SessionOutcome, *, min_rise: int) -> PeseFinding | None:
    """PESE when a crash is reported or any symptom rises >= ``min_rise`` points at 24 or 48 h.

    Rises compare each follow-up rating with the same symptom before the session; a
    symptom not rated at both times cannot show a rise.
    """
    rises: list[SymptomRise] = []
    before = outcome.symptoms_pre.recorded() if outcome.symptoms_pre else {}
    for at, after in (("24h", outcome.symptoms_24h), ("48h", outcome.symptoms_48h)):
        if after is None:
            continue
        for name, value in after.recorded().items():
            if name in before and value - before[name] >= min_rise:
                rises.append(SymptomRise(name, at, before[name], value))  # type: ignore[arg-type]
    if not rises and not outcome.crash_reported:
        return None
    return PeseFinding(outcome.crash_reported, tuple(rises), min_rise)
