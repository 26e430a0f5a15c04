"""The reasoning behind a session's decisions, as plain lines (used by ``rehab explain``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from immunorehab.rehab.doses import describe_dose
from immunorehab.rehab.outcome import SYMPTOMS, Clearance, SessionOutcome
from immunorehab.rehab.prescribe import Plan
from immunorehab.rehab.programme import Programme
from immunorehab.rehab.progression import SessionDecision

__all__ = ["ExerciseLine", "SessionExplanation", "explain_session"]


@dataclass(frozen=True, slots=True)
class ExerciseLine:
    exercise_id: str
    prescribed: str
    done: str
    action: str
    rule: str
    reason: str
    next_dose: str
    override: bool


@dataclass(frozen=True, slots=True)
class SessionExplanation:
    header: str
    safety: tuple[str, ...]
    exercises: tuple[ExerciseLine, ...]
    notes: tuple[str, ...]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _symptom_lines(outcome: SessionOutcome, threshold: int) -> list[str]:
    pre = outcome.symptoms_pre.recorded() if outcome.symptoms_pre else {}
    lines = []
    for label, after in (("24 h", outcome.symptoms_24h), ("48 h", outcome.symptoms_48h)):
        got = after.recorded() if after else {}
        if not got:
            lines.append(f"Symptoms {label} after: not recorded")
            continue
        parts = []
        for name in SYMPTOMS:
            if name in got:
                rise = f" ({got[name] - pre[name]:+d})" if name in pre else ""
                parts.append(f"{name} {pre.get(name, '?')} -> {got[name]}{rise}")
        lines.append(f"Symptoms {label} after (PESE if any rise >= {threshold}): " + ", ".join(parts))
    return lines


def _cleared_note(note: str, session_no: int, clearances: Sequence[Clearance]) -> str:
    """The engine's 'flagged, blocked' note as of the session, told with its clearance once there is one."""
    flagged = f"session {session_no} flagged for clinical review"
    cleared = next((c for c in clearances if c.session_no == session_no), None)
    if cleared is None or not note.startswith(flagged):
        return note
    return f"{flagged}; cleared on {cleared.cleared_on} by {cleared.cleared_by}: progression resumed"


def explain_session(
    decision: SessionDecision,
    outcome: SessionOutcome,
    *,
    plan: Plan,
    programme: Programme,
    clearances: Sequence[Clearance] = (),
) -> SessionExplanation:
    """Everything that decided a session's outcome: safety, PESE rule, each exercise's rule and values."""
    where = "supervised" if outcome.supervised else "remote"
    state = "attended" if outcome.attended else "NOT attended"
    mode = (
        decision.mode if decision.mode == decision.next_mode else f"{decision.mode} -> {decision.next_mode}"
    )
    header = f"Session {decision.session_no} of {plan.participant_id} on {decision.date} ({state}, {where})"
    header += f"; mode {mode}"
    safety: list[str] = []
    if outcome.attended:
        hr = "/".join(_num(v) for v in (outcome.hr_pre_bpm, outcome.hr_peak_bpm, outcome.hr_post_bpm))
        vitals = [
            f"HR pre/peak/post {hr} bpm (stop above {plan.hr_stop_bpm:.0f})",
            f"lowest SpO2 {_num(outcome.spo2_lowest_pct)}% (floor {plan.spo2_floor_pct:g}%)",
        ]
        safety.append("Vitals: " + "; ".join(vitals))
        if decision.stops:
            cleared = next((c for c in clearances if c.session_no == decision.session_no), None)
            status = (
                f"cleared on {cleared.cleared_on} by {cleared.cleared_by}: {cleared.reason}"
                if cleared
                else "clinical review PENDING: progression blocked until a physio clears it"
            )
            safety.append("STOP criterion: " + "; ".join(s.detail for s in decision.stops) + f" -> {status}")
        else:
            safety.append("Stop criteria: none met")
        safety += _symptom_lines(outcome, programme.pem.pese_min_rise)
        if outcome.crash_reported:
            safety.append("Crash (PEM) reported")
        safety.append(decision.pese.describe() if decision.pese else "PESE: none")
    lines = []
    for item in decision.exercises:
        done = outcome.exercise(item.exercise_id)
        lines.append(
            ExerciseLine(
                exercise_id=item.exercise_id,
                prescribed=describe_dose(item.before),
                done=describe_dose(done.done) if done is not None and done.done is not None else "-",
                action=item.action.replace("_", " "),
                rule=item.rule.value,
                reason=item.reason,
                next_dose=describe_dose(item.after),
                override=item.override,
            )
        )
    notes = [_cleared_note(note, decision.session_no, clearances) for note in decision.notes]
    if any(line.override for line in lines):
        notes.append("* prescribed by the physio (differs from the engine's prescription)")
    return SessionExplanation(header, tuple(safety), tuple(lines), tuple(notes))
