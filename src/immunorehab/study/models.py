"""SQLAlchemy 2.0 models of the study store.

One database holds one study (as a REDCap project does). Tables:

``study``          the protocol (YAML text + hash) and the concealed randomisation seed
``app_user``       users and roles (no names or contact details: a login name only)
``participant``    pseudonymous participants and their baseline covariates
``allocation``     randomisation results, hash-chained and immutable
``visit_record``   one row per participant-visit that has data
``measurement``    one row per value recorded at a visit
``audit_event``    who/when/what/why of every write, hash-chained and immutable

Rows of ``allocation`` and ``audit_event`` cannot be updated or deleted: the
migration installs database triggers that refuse it on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ROLES",
    "BLINDED_ROLES",
    "Allocation",
    "AppUser",
    "AuditEvent",
    "Audited",
    "Base",
    "Measurement",
    "Participant",
    "Study",
    "VisitRecord",
]

ROLES: tuple[str, ...] = ("admin", "coordinator", "physio", "lab", "statistician", "assessor")
BLINDED_ROLES: frozenset[str] = frozenset({"lab", "assessor"})


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class Audited:
    """Mixin: every insert/update/delete of this model writes an audit event.

    ``__audit_entity__`` names the entity in the trail; ``audit_key`` identifies the
    row in human terms; ``audit_participant`` links the event to a participant.
    """

    __audit_entity__: str = ""
    __audit_exclude__: frozenset[str] = frozenset({"id"})

    def audit_key(self) -> str:
        raise NotImplementedError

    def audit_participant(self) -> str | None:
        return None


class Study(Audited, Base):
    __tablename__ = "study"
    __audit_entity__ = "study"
    __audit_exclude__ = frozenset({"id", "seed", "protocol_yaml"})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text)
    protocol_yaml: Mapped[str] = mapped_column(Text)
    protocol_sha256: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))

    def audit_key(self) -> str:
        return self.slug


class AppUser(Audited, Base):
    __tablename__ = "app_user"
    __audit_entity__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    def audit_key(self) -> str:
        return self.username


class Participant(Audited, Base):
    __tablename__ = "participant"
    __audit_entity__ = "participant"
    __table_args__ = (UniqueConstraint("site", "site_seq", name="uq_participant_site_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(16), unique=True)
    site: Mapped[str] = mapped_column(String(3))
    site_seq: Mapped[int] = mapped_column(Integer)
    consent_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    age_years: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sex: Mapped[str | None] = mapped_column(String(10), nullable=True)
    who_severity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hospitalised: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    icu_admitted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    invasive_ventilation: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    vaccination_doses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cmv_serostatus: Mapped[str | None] = mapped_column(String(10), nullable=True)
    days_since_infection: Mapped[int | None] = mapped_column(Integer, nullable=True)
    eligible: Mapped[bool] = mapped_column(Boolean)
    failed_criteria: Mapped[str] = mapped_column(Text, default="")
    withdrawn_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    withdrawal_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))

    allocation: Mapped[Allocation | None] = relationship(back_populates="participant", uselist=False)
    visits: Mapped[list[VisitRecord]] = relationship(back_populates="participant")

    def audit_key(self) -> str:
        return self.participant_id

    def audit_participant(self) -> str | None:
        return self.participant_id

    def covariates(self) -> dict[str, Any]:
        """The baseline covariates as a plain mapping (field name -> value)."""
        from immunorehab.study.fields import COVARIATES

        return {name: getattr(self, name) for name in COVARIATES}


class Allocation(Audited, Base):
    __tablename__ = "allocation"
    __audit_entity__ = "allocation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer, unique=True)
    participant_pk: Mapped[int] = mapped_column(ForeignKey("participant.id"), unique=True)
    participant_id: Mapped[str] = mapped_column(String(16))
    arm: Mapped[str] = mapped_column(String(64))
    stratum: Mapped[str] = mapped_column(Text)
    stratum_position: Mapped[int] = mapped_column(Integer)
    levels_json: Mapped[str] = mapped_column(Text)
    detail_json: Mapped[str] = mapped_column(Text)
    allocated_on: Mapped[dt.date] = mapped_column(Date)
    allocated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    allocated_by: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    participant: Mapped[Participant] = relationship(back_populates="allocation")

    def audit_key(self) -> str:
        return f"{self.sequence}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class VisitRecord(Audited, Base):
    __tablename__ = "visit_record"
    __audit_entity__ = "visit"
    __table_args__ = (UniqueConstraint("participant_pk", "visit_id", name="uq_visit_record"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_pk: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[str] = mapped_column(String(64))
    visit_date: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(64))

    participant: Mapped[Participant] = relationship(back_populates="visits")
    measurements: Mapped[list[Measurement]] = relationship(
        back_populates="visit_record", cascade="all, delete-orphan"
    )

    def audit_key(self) -> str:
        return f"{self.participant_id}/{self.visit_id}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class Measurement(Audited, Base):
    __tablename__ = "measurement"
    __audit_entity__ = "measurement"
    __table_args__ = (UniqueConstraint("visit_record_id", "measure_id", name="uq_measurement"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_record_id: Mapped[int] = mapped_column(ForeignKey("visit_record.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[str] = mapped_column(String(64))
    measure_id: Mapped[str] = mapped_column(String(64))
    value_text: Mapped[str] = mapped_column(Text)
    value_num: Mapped[float | None] = mapped_column(Float, nullable=True)

    visit_record: Mapped[VisitRecord] = relationship(back_populates="measurements")

    def audit_key(self) -> str:
        return f"{self.participant_id}/{self.visit_id}/{self.measure_id}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(10))
    entity: Mapped[str] = mapped_column(String(32))
    entity_key: Mapped[str] = mapped_column(Text)
    participant_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    changes_json: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
