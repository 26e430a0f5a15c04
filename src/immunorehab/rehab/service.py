"""Store-facing rehabilitation functions: prescribe, read a participant's progress, clear a review.

Roles: rehabilitation data reveal a participant's arm, so the blinded roles (``lab``,
``assessor``) are refused for every function here. Prescribing is for ``physio`` (and
``admin``); clearing a clinical review for ``physio`` only; reading for every unblinded role.
Session logging lives in :mod:`immunorehab.rehab.logbook`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from immunorehab.errors import ClearanceError, PrescriptionError
from immunorehab.rehab.assessment import Assessment, assessment_from_values
from immunorehab.rehab.doses import CyclingDose, Dose, ResistanceDose, WalkingDose
from immunorehab.rehab.outcome import Clearance, ExerciseOutcome, SessionOutcome, Symptoms, stop_findings
from immunorehab.rehab.prescribe import Plan, build_plan, plan_from_json
from immunorehab.rehab.programme import (
    Mode,
    Programme,
    default_programme_paths,
    load_programme,
    parse_programme,
)
from immunorehab.rehab.progression import NextSession, Progress, SessionDecision, next_session, replay
from immunorehab.rehab.tables import RehabClearance, RehabExercise, RehabPrescription, RehabSession
from immunorehab.study.models import Participant, VisitRecord
from immunorehab.study.participants import get_participant
from immunorehab.study.service import actor_of, get_protocol, now_utc
from immunorehab.study.store import Store

__all__ = [
    "READERS",
    "ParticipantProgress",
    "PrescriptionView",
    "RehabContext",
    "baseline_values",
    "clear_review",
    "full_progress",
    "load_context",
    "participant_progress",
    "prescribe",
    "programme_for_arm",
    "require_unblinded",
]

READERS = ("admin", "coordinator", "physio", "statistician")
PRESCRIBERS = ("admin", "physio")
_PROGRAMMES: dict[str, Programme] = {}


def require_unblinded(session: Session, action: str, roles: tuple[str, ...] = READERS) -> None:
    """Refuse blinded roles (rehabilitation data reveal the arm) and any role not in ``roles``."""
    actor_of(session).require(*roles, action=f"{action} (rehabilitation data reveal the allocated arm)")


def programme_for_arm(arm: str, path: str | Path | None = None) -> Programme:
    """The programme file given, or the shipped programme whose ``programme.arms`` lists ``arm``."""
    if path is not None:
        programme = load_programme(path)
        if arm not in programme.programme.arms:
            raise PrescriptionError(
                f"programme {programme.id!r} is for arms {', '.join(programme.programme.arms)}, "
                f"not for the participant's arm {arm!r}"
            )
        return programme
    shipped = [_shipped(p) for p in default_programme_paths()]
    for programme in shipped:
        if arm in programme.programme.arms:
            return programme
    covered = sorted({a for p in shipped for a in p.programme.arms})
    raise PrescriptionError(
        f"arm {arm!r} has no rehabilitation programme (the shipped programmes cover {', '.join(covered)}); "
        "usual care receives no prescription, or pass --programme FILE for another arm"
    )


def _shipped(path: Path) -> Programme:
    """A shipped programme, parsed once per process (package data does not change)."""
    key = f"file:{path}"
    cached = _PROGRAMMES.get(key)
    if cached is None:
        cached = _PROGRAMMES[key] = load_programme(path)
    return cached


def _parse_stored(text: str, sha: str) -> Programme:
    cached = _PROGRAMMES.get(sha)
    if cached is None:
        cached = parse_programme(text, source="stored programme")
        _PROGRAMMES[sha] = cached
    return cached


def baseline_values(session: Session, person: Participant) -> tuple[dict[str, Any], dt.date | None]:
    """The baseline visit's values typed by the protocol (booleans, numbers, text) and its date."""
    protocol = get_protocol(session)
    visit = next((v for v in protocol.visits if v.day == 0), protocol.visits[0])
    types = {m.id: m.type for m in visit.measures}
    record = session.scalar(
        select(VisitRecord).where(VisitRecord.participant_pk == person.id, VisitRecord.visit_id == visit.id)
    )
    if record is None:
        return {}, None
    values: dict[str, Any] = {}
    for m in record.measurements:
        kind = types.get(m.measure_id)
        if kind == "boolean":
            values[m.measure_id] = m.value_text == "true"
        elif kind in ("number", "integer") and m.value_num is not None:
            values[m.measure_id] = m.value_num
        else:
            values[m.measure_id] = m.value_text
    return values, record.visit_date


@dataclass(frozen=True, slots=True)
class PrescriptionView:
    """A stored prescription as shown to a user."""

    participant_id: str
    version: int
    prescribed_on: dt.date
    prescribed_by: str
    programme: Programme
    plan: Plan
    assessment: dict[str, Any]


def _assessment_json(a: Assessment) -> str:
    return json.dumps(asdict(a), sort_keys=True, default=str)


def _latest(session: Session, person: Participant) -> RehabPrescription | None:
    return session.scalar(
        select(RehabPrescription)
        .where(RehabPrescription.participant_pk == person.id)
        .order_by(RehabPrescription.version.desc())
        .limit(1)
    )


def _arm(person: Participant, action: str) -> tuple[str, dt.date]:
    if person.allocation is None:
        raise PrescriptionError(
            f"{person.participant_id} is not randomised: cannot {action} before allocation"
        )
    return person.allocation.arm, person.allocation.allocated_on


def prescribe(
    store: Store,
    *,
    by: str,
    participant_id: str,
    programme_path: str | Path | None = None,
    on: dt.date | None = None,
    force_pacing: bool = False,
    reason: str | None = None,
    today: dt.date | None = None,
) -> PrescriptionView:
    """Prescribe the programme for a participant from the baseline assessment (physio/admin).

    A second prescription (e.g. after a re-assessment) needs a ``reason`` and starts a new
    version; sessions logged from then on progress from it. Refused while a clinical
    review is pending.
    """
    today = today or dt.date.today()
    with store.write(by, reason=reason) as session:
        require_unblinded(session, "prescribe rehabilitation", PRESCRIBERS)
        person = get_participant(session, participant_id)
        arm, randomised_on = _arm(person, "prescribe")
        programme = programme_for_arm(arm, programme_path)
        day = on or today
        if day < randomised_on or day > today:
            raise PrescriptionError(
                f"prescription date {day} must be between the randomisation date {randomised_on} and today "
                f"({today})"
            )
        previous = _latest(session, person)
        if previous is not None:
            _check_represcribe(session, person, previous, reason)
        values, assessed_on = baseline_values(session, person)
        assessment = assessment_from_values(
            values,
            participant_id=person.participant_id,
            age_years=person.age_years,
            programme=programme,
            assessed_on=assessed_on,
        )
        mode: Mode | None = "pacing" if force_pacing else None
        plan = build_plan(assessment, programme, mode=mode)
        text = _programme_text(programme_path, programme)
        plan_json = plan.to_json()
        row = RehabPrescription(
            participant_pk=person.id,
            participant_id=person.participant_id,
            version=1 if previous is None else previous.version + 1,
            programme_id=programme.id,
            programme_version=programme.programme.version,
            programme_sha256=programme.sha256(),
            programme_yaml=text,
            mode=plan.mode,
            pem_positive=plan.pem.positive,
            plan_json=plan_json,
            plan_sha256=hashlib.sha256(plan_json.encode()).hexdigest(),
            assessment_json=_assessment_json(assessment),
            prescribed_on=day,
            created_at=now_utc(),
            created_by=by,
        )
        session.add(row)
        return PrescriptionView(
            person.participant_id, row.version, day, by, programme, plan, asdict(assessment)
        )


def _programme_text(path: str | Path | None, programme: Programme) -> str:
    if path is not None:
        return Path(path).read_text(encoding="utf-8")
    for candidate in default_programme_paths():
        if _shipped(candidate).id == programme.id:
            return candidate.read_text(encoding="utf-8")
    raise PrescriptionError(f"internal: the text of programme {programme.id!r} was not found")


def _check_represcribe(
    session: Session, person: Participant, previous: RehabPrescription, reason: str | None
) -> None:
    if not reason:
        raise PrescriptionError(
            f"{person.participant_id} was prescribed on {previous.prescribed_on} (version "
            f"{previous.version}): "
            "pass --reason TEXT to re-prescribe (e.g. after a re-assessment)"
        )
    ctx = _context_from(session, person, previous)
    pending = ctx.progress().state.pending_reviews
    cleared = {c.session_no for c in ctx.clearances}
    open_reviews = [n for n in pending if n not in cleared]
    if open_reviews:
        raise PrescriptionError(
            f"{person.participant_id}: clinical review of session {', '.join(map(str, open_reviews))} is "
            "pending; "
            "a physio must clear it before a new prescription"
        )


# -- reading a participant's rehabilitation record -----------------------------------------


def _dose(row: RehabExercise, prefix: str) -> Dose | None:
    def get(name: str) -> Any:
        return getattr(row, f"{prefix}_{name}")

    if row.kind == "walking":
        if get("minutes") is None:
            return None
        return WalkingDose(get("minutes"), get("speed_kmh"), get("incline_pct") or 0.0)
    if row.kind == "cycling":
        return None if get("minutes") is None else CyclingDose(get("minutes"), get("watts"))
    return None if get("sets") is None else ResistanceDose(get("load_kg"), get("sets"), get("reps"))


def _symptoms(row: RehabSession, when: str) -> Symptoms:
    return Symptoms(
        *(getattr(row, f"sym_{when}_{n}") for n in ("fatigue", "breathlessness", "pain", "cognition"))
    )


def session_outcome(row: RehabSession) -> SessionOutcome:
    """A stored session as the engine's input."""
    exercises = tuple(
        ExerciseOutcome(
            e.exercise_id,
            _dose(e, "done") if e.done else None,
            _dose(e, "prescribed"),
            e.borg_dyspnoea,
            e.borg_fatigue,
            e.rpe,
            override=e.prescribed_by == "physio",
        )
        for e in row.exercises
    )
    return SessionOutcome(
        session_no=row.session_no,
        date=row.session_date,
        attended=row.attended,
        supervised=row.supervised,
        exercises=exercises,
        hr_pre_bpm=row.hr_pre_bpm,
        hr_peak_bpm=row.hr_peak_bpm,
        hr_post_bpm=row.hr_post_bpm,
        spo2_pre_pct=row.spo2_pre_pct,
        spo2_lowest_pct=row.spo2_lowest_pct,
        borg_dyspnoea=row.borg_dyspnoea,
        borg_fatigue=row.borg_fatigue,
        rpe=row.rpe,
        symptoms_pre=_symptoms(row, "pre"),
        symptoms_24h=_symptoms(row, "24h"),
        symptoms_48h=_symptoms(row, "48h"),
        crash_reported=row.crash_reported,
        red_flags=tuple(f for f in row.red_flags.split(";") if f),
        stopped_during=row.stopped_during,
    )


@dataclass(frozen=True)
class RehabContext:
    """A prescribed participant's record: prescription, programme, sessions and clearances."""

    person: Participant
    arm: str
    randomised_on: dt.date
    prescription: RehabPrescription
    plan: Plan
    programme: Programme
    sessions: list[RehabSession]
    clearances: list[Clearance]

    def outcomes(self, *, version: int | None = None) -> list[SessionOutcome]:
        wanted = self.prescription.version if version is None else version
        return [session_outcome(s) for s in self.sessions if s.prescription_version == wanted]

    def progress(self) -> Progress:
        return replay(self.plan, self.programme, self.outcomes(), self.clearances)


def _context_from(session: Session, person: Participant, prescription: RehabPrescription) -> RehabContext:
    arm, randomised_on = _arm(person, "use rehabilitation records")
    programme = _parse_stored(prescription.programme_yaml, prescription.programme_sha256)
    query = (
        select(RehabSession)
        .where(RehabSession.participant_pk == person.id)
        .order_by(RehabSession.session_no)
        .options(selectinload(RehabSession.exercises), selectinload(RehabSession.adverse_events))
    )
    sessions = list(session.scalars(query))
    clearances = [
        Clearance(c.session_no, c.cleared_on, c.cleared_by, c.reason)
        for c in session.scalars(select(RehabClearance).where(RehabClearance.participant_pk == person.id))
    ]
    plan = plan_from_json(prescription.plan_json)
    return RehabContext(person, arm, randomised_on, prescription, plan, programme, sessions, clearances)


def load_context(session: Session, participant_id: str) -> RehabContext:
    """The participant's rehabilitation record; explains why there is none (usual care, not prescribed)."""
    person = get_participant(session, participant_id)
    arm, _ = _arm(person, "use rehabilitation records")
    prescription = _latest(session, person)
    if prescription is None:
        programme_for_arm(arm)  # raises for arms without a programme (usual care)
        raise PrescriptionError(
            f"{person.participant_id} has no prescription yet: `immunorehab rehab prescribe "
            f"{person.participant_id}`"
        )
    return _context_from(session, person, prescription)


def full_progress(ctx: RehabContext, session: Session) -> Progress:
    """Decisions over every prescription version (each version's sessions replayed from its own plan)."""
    versions = session.scalars(
        select(RehabPrescription)
        .where(RehabPrescription.participant_pk == ctx.person.id)
        .order_by(RehabPrescription.version)
    )
    decisions: list[SessionDecision] = []
    outcomes: list[SessionOutcome] = []
    state = None
    for rx in versions:
        programme = _parse_stored(rx.programme_yaml, rx.programme_sha256)
        part = replay(
            plan_from_json(rx.plan_json), programme, ctx.outcomes(version=rx.version), ctx.clearances
        )
        decisions += part.decisions
        outcomes += part.outcomes
        state = part.state
    assert state is not None
    return Progress(tuple(decisions), state, tuple(outcomes))


@dataclass(frozen=True, slots=True)
class ParticipantProgress:
    """Everything ``rehab next`` / ``rehab explain`` show."""

    participant_id: str
    arm: str
    randomised_on: dt.date
    prescription_version: int
    prescribed_on: dt.date
    plan: Plan
    programme: Programme
    outcomes: tuple[SessionOutcome, ...]
    clearances: tuple[Clearance, ...]
    progress: Progress
    next: NextSession


def participant_progress(store: Store, *, by: str, participant_id: str) -> ParticipantProgress:
    """Replay the participant's log through the progression engine (unblinded roles)."""
    with store.read(by) as session:
        require_unblinded(session, "see rehabilitation progress")
        ctx = load_context(session, participant_id)
        progress = full_progress(ctx, session)
        last = max((s.session_no for s in ctx.sessions), default=0)
        return ParticipantProgress(
            ctx.person.participant_id,
            ctx.arm,
            ctx.randomised_on,
            ctx.prescription.version,
            ctx.prescription.prescribed_on,
            ctx.plan,
            ctx.programme,
            progress.outcomes,
            tuple(ctx.clearances),
            progress,
            next_session(progress, ctx.plan, ctx.programme, ctx.clearances, last_logged=last),
        )


def clear_review(
    store: Store,
    *,
    by: str,
    participant_id: str,
    session_no: int,
    reason: str,
    on: dt.date | None = None,
    today: dt.date | None = None,
) -> Clearance:
    """A physio clears the clinical review flagged at ``session_no`` (reason required, audited)."""
    today = today or dt.date.today()
    if not reason or not reason.strip():
        raise ClearanceError("a clearance needs a clinical reason: pass --reason TEXT")
    with store.write(by, reason=reason.strip()) as session:
        require_unblinded(session, "clear a clinical review", ("physio",))
        ctx = load_context(session, participant_id)
        row = next((s for s in ctx.sessions if s.session_no == session_no), None)
        if row is None:
            raise ClearanceError(f"{ctx.person.participant_id} has no session {session_no} logged")
        stops = stop_findings(
            session_outcome(row),
            spo2_floor_pct=ctx.plan.spo2_floor_pct,
            hr_stop_bpm=ctx.plan.hr_stop_bpm,
            stop_on=tuple(ctx.programme.safety.stop_on),
        )
        if not stops or not row.attended:
            raise ClearanceError(
                f"session {session_no} of {ctx.person.participant_id} met no stop criterion: nothing to clear"
            )
        done = next((c for c in ctx.clearances if c.session_no == session_no), None)
        if done is not None:
            raise ClearanceError(
                f"session {session_no} was already cleared on {done.cleared_on} by {done.cleared_by}"
            )
        day = on or today
        if day < row.session_date or day > today:
            raise ClearanceError(
                f"clearance date {day} must be between the session date {row.session_date} and today "
                f"({today})"
            )
        session.add(
            RehabClearance(
                participant_pk=ctx.person.id,
                participant_id=ctx.person.participant_id,
                session_no=session_no,
                cleared_on=day,
                cleared_by=by,
                reason=reason.strip(),
                created_at=now_utc(),
            )
        )
        return Clearance(session_no, day, by, reason.strip())


def current_prescription(store: Store, *, by: str, participant_id: str) -> PrescriptionView:
    """The participant's latest prescription."""
    with store.read(by) as session:
        require_unblinded(session, "see a prescription")
        ctx = load_context(session, participant_id)
        p = ctx.prescription
        return PrescriptionView(
            ctx.person.participant_id,
            p.version,
            p.prescribed_on,
            p.created_by,
            ctx.programme,
            ctx.plan,
            json.loads(p.assessment_json),
        )
