"""Store tables of the cytokine capability (created by migration ``0004_cytokines``).

``cytokine_plate``   one imported plate: assay, files and their SHA-256 (provenance), run order
``cytokine_curve``   one standard curve per plate and analyte: status, parameters, LLOQ/ULOQ/LOD
``cytokine_result``  one result per plate, replicate group and analyte (samples and controls),
                     linked to the participant and visit for samples
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from immunorehab.study.models import Audited, Base

__all__ = ["CytokineCurve", "CytokinePlate", "CytokineResult"]


class CytokinePlate(Audited, Base):
    __tablename__ = "cytokine_plate"
    __audit_entity__ = "cytokine_plate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate_id: Mapped[str] = mapped_column(String(100), unique=True)
    run_order: Mapped[int] = mapped_column(Integer)
    assay_id: Mapped[str] = mapped_column(String(64))
    assay_name: Mapped[str] = mapped_column(Text)
    reading_format: Mapped[str] = mapped_column(String(16))
    readings_file: Mapped[str] = mapped_column(Text)
    readings_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    plate_map_file: Mapped[str] = mapped_column(Text)
    plate_map_sha256: Mapped[str] = mapped_column(String(64))
    assay_sha256: Mapped[str] = mapped_column(String(64))
    metadata_json: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    imported_by: Mapped[str] = mapped_column(String(64))

    curves: Mapped[list[CytokineCurve]] = relationship(back_populates="plate", cascade="all, delete-orphan")
    results: Mapped[list[CytokineResult]] = relationship(back_populates="plate", cascade="all, delete-orphan")

    def audit_key(self) -> str:
        return self.plate_id


class CytokineCurve(Audited, Base):
    __tablename__ = "cytokine_curve"
    __audit_entity__ = "cytokine_curve"
    __table_args__ = (UniqueConstraint("plate_pk", "analyte", name="uq_cytokine_curve"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate_pk: Mapped[int] = mapped_column(ForeignKey("cytokine_plate.id"))
    plate_id: Mapped[str] = mapped_column(String(100))
    analyte: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    params_json: Mapped[str] = mapped_column(Text)
    se_json: Mapped[str] = mapped_column(Text)
    rse: Mapped[float | None] = mapped_column(Float, nullable=True)
    r_squared: Mapped[float | None] = mapped_column(Float, nullable=True)
    lloq: Mapped[float | None] = mapped_column(Float, nullable=True)
    uloq: Mapped[float | None] = mapped_column(Float, nullable=True)
    lod: Mapped[float | None] = mapped_column(Float, nullable=True)

    plate: Mapped[CytokinePlate] = relationship(back_populates="curves")

    def audit_key(self) -> str:
        return f"{self.plate_id}/{self.analyte}"


class CytokineResult(Audited, Base):
    __tablename__ = "cytokine_result"
    __audit_entity__ = "cytokine_result"
    __table_args__ = (UniqueConstraint("plate_pk", "replicate_group", "analyte", name="uq_cytokine_result"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate_pk: Mapped[int] = mapped_column(ForeignKey("cytokine_plate.id"))
    plate_id: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    participant_pk: Mapped[int | None] = mapped_column(ForeignKey("participant.id"), nullable=True)
    participant_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    visit_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    control: Mapped[str | None] = mapped_column(String(64), nullable=True)
    replicate_group: Mapped[str] = mapped_column(String(100))
    wells: Mapped[str] = mapped_column(Text)
    analyte: Mapped[str] = mapped_column(String(64))
    concentration: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str] = mapped_column(String(32))
    flag: Mapped[str] = mapped_column(String(100))
    cv: Mapped[float | None] = mapped_column(Float, nullable=True)
    dilution: Mapped[float] = mapped_column(Float)
    signal: Mapped[float | None] = mapped_column(Float, nullable=True)

    plate: Mapped[CytokinePlate] = relationship(back_populates="results")

    def audit_key(self) -> str:
        who = (
            self.participant_id
            and f"{self.participant_id}/{self.visit_id}"
            or self.control
            or self.replicate_group
        )
        return f"{self.plate_id}/{who}/{self.analyte}"

    def audit_participant(self) -> str | None:
        return self.participant_id
