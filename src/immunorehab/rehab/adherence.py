"""Adherence and dose: per participant and per arm (pure; the store gathers the inputs).

Per participant: sessions attended / offered (supervised vs remote), % of the prescribed
aerobic minutes and of the prescribed resistance volume achieved in attended sessions
(each session counted up to its prescription, so extra work one day cannot hide a short
session another), total training load (aerobic minutes and resistance volume-load),
PESE and stop-criterion events, adverse events, and the completer status from the
programme's definition (attended >= ``schedule.completer_min_fraction`` of the offered
sessions) for per-protocol analyses.

A participant still inside the programme window is ``in_progress`` unless the
completer threshold is already reached.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from immunorehab.rehab.doses import CyclingDose, ResistanceDose, WalkingDose, work
from immunorehab.rehab.outcome import SessionOutcome
from immunorehab.rehab.programme import Programme
from immunorehab.rehab.progression import Progress

__all__ = ["ArmAdherence", "ParticipantAdherence", "arm_adherence", "participant_adherence"]

Status = Literal["completer", "non_completer", "in_progress"]


@dataclass(frozen=True, slots=True)
class ParticipantAdherence:
    """One participant's attendance and dose (minutes, kg; percentages 0-100)."""

    participant_id: str
    arm: str
    programme_id: str
    sessions_offered: int
    sessions_due: int
    attended: int
    attended_supervised: int
    attended_remote: int
    attendance_pct: float
    aerobic_minutes_prescribed: float
    aerobic_minutes_done: float
    aerobic_pct: float | None
    resistance_volume_prescribed_kg: float
    resistance_volume_done_kg: float
    resistance_pct: float | None
    pese_events: int
    stop_events: int
    adverse_events: int
    serious_adverse_events: int
    completer_threshold: int
    status: Status


def _aerobic_minutes(dose: object) -> float:
    return dose.minutes if isinstance(dose, WalkingDose | CyclingDose) else 0.0


def _pct(done: float, prescribed: float) -> float | None:
    return None if prescribed <= 0 else 100.0 * done / prescribed


def participant_adherence(
    *,
    participant_id: str,
    arm: str,
    programme: Programme,
    progress: Progress,
    outcomes: Sequence[SessionOutcome],
    randomised_on: dt.date,
    today: dt.date,
    adverse_events: int = 0,
    serious_adverse_events: int = 0,
) -> ParticipantAdherence:
    """Adherence of one participant from the replayed log (decisions carry each session's prescription)."""
    offered = programme.sessions_total
    per_week = programme.schedule.sessions_per_week
    weeks_elapsed = max(0, (today - randomised_on).days) // 7
    due = min(offered, weeks_elapsed * per_week)
    attended = [o for o in outcomes if o.attended]
    aer_rx = aer_done = vol_rx = vol_done = 0.0
    for decision in progress.decisions:
        outcome = next(o for o in outcomes if o.session_no == decision.session_no)
        if not outcome.attended:
            continue
        for ex in decision.exercises:
            done = next((e.done for e in outcome.exercises if e.exercise_id == ex.exercise_id), None)
            if isinstance(ex.before, ResistanceDose):
                vol_rx += work(ex.before)
                vol_done += min(work(done), work(ex.before)) if done is not None else 0.0
            else:
                aer_rx += _aerobic_minutes(ex.before)
                aer_done += (
                    min(_aerobic_minutes(done), _aerobic_minutes(ex.before)) if done is not None else 0.0
                )
    threshold = math.ceil(programme.schedule.completer_min_fraction * offered - 1e-9)
    end = randomised_on + dt.timedelta(days=7 * programme.schedule.weeks + programme.schedule.grace_days)
    status: Status
    if len(attended) >= threshold:
        status = "completer"
    elif today > end or len(attended) + (offered - _last_number(outcomes)) < threshold:
        status = "non_completer"
    else:
        status = "in_progress"
    return ParticipantAdherence(
        participant_id=participant_id,
        arm=arm,
        programme_id=programme.id,
        sessions_offered=offered,
        sessions_due=due,
        attended=len(attended),
        attended_supervised=sum(o.supervised for o in attended),
        attended_remote=sum(not o.supervised for o in attended),
        attendance_pct=100.0 * len(attended) / offered,
        aerobic_minutes_prescribed=aer_rx,
        aerobic_minutes_done=aer_done,
        aerobic_pct=_pct(aer_done, aer_rx),
        resistance_volume_prescribed_kg=vol_rx,
        resistance_volume_done_kg=vol_done,
        resistance_pct=_pct(vol_done, vol_rx),
        pese_events=sum(d.pese is not None for d in progress.decisions),
        stop_events=sum(bool(d.stops) for d in progress.decisions),
        adverse_events=adverse_events,
        serious_adverse_events=serious_adverse_events,
        completer_threshold=threshold,
        status=status,
    )


def _last_number(outcomes: Sequence[SessionOutcome]) -> int:
    return max((o.session_no for o in outcomes), default=0)


@dataclass(frozen=True, slots=True)
class ArmAdherence:
    """Adherence summarised over an arm's prescribed participants."""

    arm: str
    participants: int
    completers: int
    non_completers: int
    in_progress: int
    median_attendance_pct: float | None
    mean_aerobic_pct: float | None
    mean_resistance_pct: float | None
    aerobic_minutes_done: float
    resistance_volume_done_kg: float
    pese_events: int
    stop_events: int
    adverse_events: int
    serious_adverse_events: int


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def arm_adherence(rows: Sequence[ParticipantAdherence]) -> list[ArmAdherence]:
    """One summary per arm, in order of first appearance."""
    arms = list(dict.fromkeys(r.arm for r in rows))
    out = []
    for arm in arms:
        mine = [r for r in rows if r.arm == arm]
        out.append(
            ArmAdherence(
                arm=arm,
                participants=len(mine),
                completers=sum(r.status == "completer" for r in mine),
                non_completers=sum(r.status == "non_completer" for r in mine),
                in_progress=sum(r.status == "in_progress" for r in mine),
                median_attendance_pct=statistics.median(r.attendance_pct for r in mine) if mine else None,
                mean_aerobic_pct=_mean([r.aerobic_pct for r in mine]),
                mean_resistance_pct=_mean([r.resistance_pct for r in mine]),
                aerobic_minutes_done=sum(r.aerobic_minutes_done for r in mine),
                resistance_volume_done_kg=sum(r.resistance_volume_done_kg for r in mine),
                pese_events=sum(r.pese_events for r in mine),
                stop_events=sum(r.stop_events for r in mine),
                adverse_events=sum(r.adverse_events for r in mine),
                serious_adverse_events=sum(r.serious_adverse_events for r in mine),
            )
        )
    return out
