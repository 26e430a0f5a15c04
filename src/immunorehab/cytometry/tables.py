"""Store tables of gated flow-cytometry results (created by migration 0003).

``cytometry_file``         one row per FCS file gated for a participant and visit: file and
                           strategy hashes (provenance; a file is processed once per strategy),
                           template, panel, event count, draw time, absolute-count inputs and the
                           per-sample Gating-ML that produced the results
``cytometry_gate_result``  one row per file and population: count, pct_parent, pct_total,
                           cells/uL and median intensities (JSON ``{marker: median}``)
``cytometry_gate_move``    where automatic placement moved each gate for this file
``cytometry_qc_flag``      QC flags of the file

Every table is audited. Nothing here refers to allocation, so blinded roles (``lab``) write
and read it without learning anyone's arm.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from immunorehab.study.models import Audited, Base

__all__ = ["CytometryFile", "GateMoveRow", "GateResultRow", "QcFlagRow"]


class CytometryFile(Audited, Base):
    __tablename__ = "cytometry_file"
    __audit_entity__ = "cytometry_file"
    __audit_exclude__ = frozenset({"id", "placed_gatingml"})
    __table_args__ = (UniqueConstraint("file_sha256", "strategy_sha256", name="uq_cytometry_file_strategy"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_pk: Mapped[int] = mapped_column(ForeignKey("participant.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[str] = mapped_column(String(64))
    tube: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    strategy_sha256: Mapped[str] = mapped_column(String(64))
    placed_strategy_sha256: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(Text)
    panel_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auto_placement: Mapped[bool] = mapped_column()
    n_events: Mapped[int] = mapped_column(Integer)
    draw_time: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    absolute_method: Mapped[str] = mapped_column(String(20))
    beads_per_tube: Mapped[float | None] = mapped_column(Float, nullable=True)
    volume_ul: Mapped[float | None] = mapped_column(Float, nullable=True)
    lymphocytes_per_ul: Mapped[float | None] = mapped_column(Float, nullable=True)
    placed_gatingml: Mapped[str] = mapped_column(Text)
    processed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    processed_by: Mapped[str] = mapped_column(String(64))

    results: Mapped[list[GateResultRow]] = relationship(back_populates="file", cascade="all, delete-orphan")
    moves: Mapped[list[GateMoveRow]] = relationship(back_populates="file", cascade="all, delete-orphan")
    flags: Mapped[list[QcFlagRow]] = relationship(back_populates="file", cascade="all, delete-orphan")

    def audit_key(self) -> str:
        return f"{self.participant_id}/{self.visit_id}/{self.tube}/{self.file_sha256[:12]}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class GateResultRow(Audited, Base):
    __tablename__ = "cytometry_gate_result"
    __audit_entity__ = "cytometry_gate_result"
    __table_args__ = (UniqueConstraint("file_id", "gate", name="uq_cytometry_gate_result"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("cytometry_file.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[str] = mapped_column(String(64))
    gate: Mapped[str] = mapped_column(String(128))
    parent: Mapped[str | None] = mapped_column(String(128), nullable=True)
    count: Mapped[int] = mapped_column(Integer)
    parent_count: Mapped[int] = mapped_column(Integer)
    pct_parent: Mapped[float | None] = mapped_column(Float, nullable=True)
    pct_total: Mapped[float | None] = mapped_column(Float, nullable=True)
    cells_per_ul: Mapped[float | None] = mapped_column(Float, nullable=True)
    medians_json: Mapped[str] = mapped_column(Text)

    file: Mapped[CytometryFile] = relationship(back_populates="results")

    def audit_key(self) -> str:
        return f"{self.participant_id}/{self.visit_id}/{self.gate}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class GateMoveRow(Audited, Base):
    __tablename__ = "cytometry_gate_move"
    __audit_entity__ = "cytometry_gate_move"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("cytometry_file.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(128))
    gates: Mapped[str] = mapped_column(Text)
    dimension: Mapped[str] = mapped_column(String(128))
    template_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    placed_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text)

    file: Mapped[CytometryFile] = relationship(back_populates="moves")

    def audit_key(self) -> str:
        return f"{self.participant_id}/{self.visit_id}/{self.rule}"

    def audit_participant(self) -> str | None:
        return self.participant_id


class QcFlagRow(Audited, Base):
    __tablename__ = "cytometry_qc_flag"
    __audit_entity__ = "cytometry_qc_flag"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("cytometry_file.id"))
    participant_id: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)

    file: Mapped[CytometryFile] = relationship(back_populates="flags")

    def audit_key(self) -> str:
        return f"{self.participant_id}/{self.visit_id}/{self.code}"

    def audit_participant(self) -> str | None:
        return self.participant_id
