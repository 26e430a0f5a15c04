"""Store-facing reports: adherence per participant and arm, week-8 outcome change, tidy session export.

Unblinded roles only (the reports name arms or are only available for exercise arms).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunorehab.rehab.adherence import (
    ArmAdherence,
    ParticipantAdherence,
    arm_adherence,
    participant_adherence,
)
from immunorehab.rehab.outcomes import OutcomeChange, outcome_changes
from immunorehab.rehab.service import full_progress, load_context, require_unblinded
from immunorehab.rehab.tables import RehabExercise, RehabPrescription, RehabSession
from immunorehab.study.models import Allocation, Measurement, Participant, VisitRecord
from immunorehab.study.participants import get_participant
from immunorehab.study.service import get_protocol
from immunorehab.study.store import Store

__all__ = ["OutcomeRow", "adherence_report", "outcomes_report", "sessions_frame"]


def _prescribed_ids(session: Session) -> list[str]:
    rows = session.scalars(select(RehabPrescription.participant_id).distinct())
    return sorted(set(rows))


def adherence_report(
    store: Store, *, by: str, today: dt.date | None = None
) -> tuple[list[ParticipantAdherence], list[ArmAdherence]]:
    """Adherence of every prescribed participant, and per arm (unblinded roles only)."""
    today = today or dt.date.today()
    with store.read(by) as session:
        require_unblinded(session, "see adherence")
        rows = []
        for pid in _prescribed_ids(session):
            ctx = load_context(session, pid)
            progress = full_progress(ctx, session)
            aes = [ae for s in ctx.sessions for ae in s.adverse_events]
            rows.append(
                participant_adherence(
                    participant_id=pid,
                    arm=ctx.arm,
                    programme=ctx.programme,
                    progress=progress,
                    outcomes=progress.outcomes,
                    randomised_on=ctx.randomised_on,
                    today=today,
                    adverse_events=len(aes),
                    serious_adverse_events=sum(ae.serious for ae in aes),
                )
            )
        return rows, arm_adherence(rows)


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    participant_id: str
    arm: str
    changes: tuple[OutcomeChange, ...]


def _visit_numbers(session: Session, visit_id: str) -> dict[str, dict[str, float]]:
    query = (
        select(Measurement.participant_id, Measurement.measure_id, Measurement.value_num)
        .join(VisitRecord, Measurement.visit_record_id == VisitRecord.id)
        .where(VisitRecord.visit_id == visit_id, Measurement.value_num.is_not(None))
    )
    out: dict[str, dict[str, float]] = {}
    for pid, measure, value in session.execute(query):
        out.setdefault(pid, {})[measure] = float(value)
    return out


def outcomes_report(
    store: Store, *, by: str, participant_id: str | None = None, visit_id: str = "week8"
) -> list[OutcomeRow]:
    """Change from baseline to ``visit_id`` per randomised participant, vs. the MCIDs (unblinded roles)."""
    with store.read(by) as session:
        require_unblinded(session, "see outcome change by arm")
        protocol = get_protocol(session)
        protocol.visit(visit_id)  # NotFoundError names the visits
        baseline_id = next((v.id for v in protocol.visits if v.day == 0), protocol.visits[0].id)
        numeric = {m.id for v in protocol.visits for m in v.measures if m.type in ("number", "integer")}
        before, after = _visit_numbers(session, baseline_id), _visit_numbers(session, visit_id)
        query = select(Participant).join(Allocation).order_by(Participant.site, Participant.site_seq)
        people = (
            [get_participant(session, participant_id)] if participant_id else list(session.scalars(query))
        )
        rows = []
        for person in people:
            if person.allocation is None:
                continue
            pid = person.participant_id
            base = {k: v for k, v in before.get(pid, {}).items() if k in numeric}
            changes = outcome_changes(base, after.get(pid, {}))
            rows.append(OutcomeRow(pid, person.allocation.arm, tuple(changes)))
        return rows


def sessions_frame(store: Store, *, by: str) -> pd.DataFrame:
    """One row per session and exercise: prescribed vs done, ratings, vitals, symptoms (unblinded roles)."""
    with store.read(by) as session:
        require_unblinded(session, "export rehabilitation sessions")
        query = select(RehabSession).order_by(RehabSession.participant_id, RehabSession.session_no)
        records = []
        for row in session.scalars(query):
            base = {
                c.key: getattr(row, c.key)
                for c in RehabSession.__table__.columns
                if c.key not in ("id", "participant_pk")
            }
            arm = _arm_of(session, row.participant_pk)
            exercises: list[RehabExercise | None] = list(row.exercises) or [None]
            for ex in exercises:
                extra = (
                    {}
                    if ex is None
                    else {
                        f"ex_{c.key}": getattr(ex, c.key)
                        for c in RehabExercise.__table__.columns
                        if c.key not in ("id", "session_pk", "participant_id", "session_no")
                    }
                )
                records.append({**base, "arm": arm, **extra, "adverse_events": len(row.adverse_events)})
        return pd.DataFrame.from_records(records)


def _arm_of(session: Session, participant_pk: int) -> str | None:
    return session.scalar(select(Allocation.arm).where(Allocation.participant_pk == participant_pk))
