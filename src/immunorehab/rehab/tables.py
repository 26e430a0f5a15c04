"""SQLAlchemy models of the rehabilitation store (created by migration 0002).

``rehab_prescription``   a participant's prescription (versioned): programme text + hash, plan JSON
``rehab_session``        one row per logged session (attended or missed): vitals, ratings, symptoms
``rehab_exercise``       prescribed vs done per exercise of a session
``rehab_adverse_event``  adverse events reported at a session, with seriousness
``rehab_clearance``      a physio's clearance of a session flagged for clinical review

Every model is :class:`~immunorehab.study.models.Audited`: each insert/update/delete
leaves an audit event (with the participant) in the same transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from immunorehab.study.models import Audited, Base

__all__ = ["RehabAdverseEvent", "RehabClearance", "RehabExercise", "RehabPrescription", "RehabSession"]

_SYMPTOM_COLUMNS = tuple(
    f"sym_{when}_{name}"
    for when in ("pre", "24h", "48h")
    for name in ("fatigue", "breathlessness", "pain", "cognition")
)


class RehabPrescription(Audited, Base):
    __tablename__ = "rehab_prescription"
    __audit_entity__ = "rehab_prescription"
    __audit_exclude__ = frozenset({"id", "programme_yaml", "plan_json", "assessment_json"})
    __table_args__ = (UniqueConstraint("participant_pk", "version", name="uq_rehab_prescription"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_pk: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    programme_id: Mapped[str] = mapped_column(String(100))
    programme_version: Mapped[str] = mapped_column(String(32))
    programme_sha256: Mapped[str] = mapped_column(String(64))
    programme_yaml: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(10))
    pem_positive: Mapped[bool] = mapped_column(Boolean)
    plan_json: Mapped[str] = mapped_column(Text)
    plan_sha256: Mapped[str] = mapped_column(String(64))
    assessment_json: Mapped[str] = mapped_column(Text)
    prescribed_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))

    def audit_key(self) -> str:
        return f"{self.participant_id}/v{self.version}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class RehabSession(Audited, Base):
    __tablename__ = "rehab_session"
    __audit_entity__ = "rehab_session"
    __table_args__ = (UniqueConstraint("participant_pk", "session_no", name="uq_rehab_session"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_pk: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    prescription_version: Mapped[int] = mapped_column(Integer)
    session_no: Mapped[int] = mapped_column(Integer)
    session_date: Mapped[dt.date] = mapped_column(Date)
    attended: Mapped[bool] = mapped_column(Boolean)
    supervised: Mapped[bool] = mapped_column(Boolean)
    education_attended: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    hr_pre_bpm: Mapped[float | None] = mapped_column(Float, nullable=True)
    hr_peak_bpm: Mapped[float | None] = mapped_column(Float, nullable=True)
    hr_post_bpm: Mapped[float | None] = mapped_column(Float, nullable=True)
    spo2_pre_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    spo2_lowest_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    borg_dyspnoea: Mapped[float | None] = mapped_column(Float, nullable=True)
    borg_fatigue: Mapped[float | None] = mapped_column(Float, nullable=True)
    rpe: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_pre_fatigue: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_pre_breathlessness: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_pre_pain: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_pre_cognition: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_24h_fatigue: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_24h_breathlessness: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_24h_pain: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_24h_cognition: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_48h_fatigue: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_48h_breathlessness: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_48h_pain: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sym_48h_cognition: Mapped[int | None] = mapped_column(Integer, nullable=True)
    crash_reported: Mapped[bool] = mapped_column(Boolean)
    red_flags: Mapped[str] = mapped_column(Text)
    stopped_during: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(64))

    exercises: Mapped[list[RehabExercise]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="RehabExercise.id"
    )
    adverse_events: Mapped[list[RehabAdverseEvent]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="RehabAdverseEvent.id"
    )

    def audit_key(self) -> str:
        return f"{self.participant_id}/session {self.session_no}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class RehabExercise(Audited, Base):
    __tablename__ = "rehab_exercise"
    __audit_entity__ = "rehab_exercise"
    __table_args__ = (UniqueConstraint("session_pk", "exercise_id", name="uq_rehab_exercise"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_pk: Mapped[int] = mapped_column(ForeignKey("rehab_session.id", ondelete="CASCADE"))
    participant_id: Mapped[str] = mapped_column(String(16))
    session_no: Mapped[int] = mapped_column(Integer)
    exercise_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))
    prescribed_by: Mapped[str] = mapped_column(String(8))  # "engine" or "physio" (an override)
    prescribed_minutes: Mapped[float | None] = mapped_column(Float, nullable=True)
    prescribed_speed_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    prescribed_incline_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    prescribed_watts: Mapped[float | None] = mapped_column(Float, nullable=True)
    prescribed_sets: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prescribed_reps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prescribed_load_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    done: Mapped[bool] = mapped_column(Boolean)
    done_minutes: Mapped[float | None] = mapped_column(Float, nullable=True)
    done_speed_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    done_incline_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    done_watts: Mapped[float | None] = mapped_column(Float, nullable=True)
    done_sets: Mapped[int | None] = mapped_column(Integer, nullable=True)
    done_reps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    done_load_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    borg_dyspnoea: Mapped[float | None] = mapped_column(Float, nullable=True)
    borg_fatigue: Mapped[float | None] = mapped_column(Float, nullable=True)
    rpe: Mapped[int | None] = mapped_column(Integer, nullable=True)

    session: Mapped[RehabSession] = relationship(back_populates="exercises")

    def audit_key(self) -> str:
        return f"{self.participant_id}/session {self.session_no}/{self.exercise_id}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class RehabAdverseEvent(Audited, Base):
    __tablename__ = "rehab_adverse_event"
    __audit_entity__ = "rehab_adverse_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_pk: Mapped[int] = mapped_column(ForeignKey("rehab_session.id", ondelete="CASCADE"))
    participant_id: Mapped[str] = mapped_column(String(16))
    session_no: Mapped[int] = mapped_column(Integer)
    term: Mapped[str] = mapped_column(Text)
    serious: Mapped[bool] = mapped_column(Boolean)
    severity: Mapped[str] = mapped_column(String(10))
    relatedness: Mapped[str] = mapped_column(String(12))

    session: Mapped[RehabSession] = relationship(back_populates="adverse_events")

    def audit_key(self) -> str:
        return f"{self.participant_id}/session {self.session_no}/AE {self.term}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class RehabClearance(Audited, Base):
    __tablename__ = "rehab_clearance"
    __audit_entity__ = "rehab_clearance"
    __table_args__ = (UniqueConstraint("participant_pk", "session_no", name="uq_rehab_clearance"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_pk: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    session_no: Mapped[int] = mapped_column(Integer)
    cleared_on: Mapped[dt.date] = mapped_column(Date)
    cleared_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    def audit_key(self) -> str:
        return f"{self.participant_id}/clearance of session {self.session_no}"

    def audit_participant(self) -> str | None:
        return self.participant_id
