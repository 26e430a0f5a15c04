"""Cytokines: plates, standard curves, concentrations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cytokine_plate",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plate_id", sa.String(100), nullable=False, unique=True),
        sa.Column("run_order", sa.Integer, nullable=False),
        sa.Column("assay_id", sa.String(64), nullable=False),
        sa.Column("assay_name", sa.Text, nullable=False),
        sa.Column("reading_format", sa.String(16), nullable=False),
        sa.Column("readings_file", sa.Text, nullable=False),
        sa.Column("readings_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("plate_map_file", sa.Text, nullable=False),
        sa.Column("plate_map_sha256", sa.String(64), nullable=False),
        sa.Column("assay_sha256", sa.String(64), nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("imported_at", TZ, nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "cytokine_curve",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plate_pk", sa.Integer, sa.ForeignKey("cytokine_plate.id"), nullable=False),
        sa.Column("plate_id", sa.String(100), nullable=False),
        sa.Column("analyte", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("model", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("params_json", sa.Text, nullable=False),
        sa.Column("se_json", sa.Text, nullable=False),
        sa.Column("rse", sa.Float),
        sa.Column("r_squared", sa.Float),
        sa.Column("lloq", sa.Float),
        sa.Column("uloq", sa.Float),
        sa.Column("lod", sa.Float),
        sa.UniqueConstraint("plate_pk", "analyte", name="uq_cytokine_curve"),
        sa.CheckConstraint("status IN ('ok','failed')", name="ck_cytokine_curve_status"),
    )
    op.create_table(
        "cytokine_result",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("plate_pk", sa.Integer, sa.ForeignKey("cytokine_plate.id"), nullable=False),
        sa.Column("plate_id", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("participant_pk", sa.Integer, sa.ForeignKey("participant.id")),
        sa.Column("participant_id", sa.String(16)),
        sa.Column("visit_id", sa.String(64)),
        sa.Column("control", sa.String(64)),
        sa.Column("replicate_group", sa.String(100), nullable=False),
        sa.Column("wells", sa.Text, nullable=False),
        sa.Column("analyte", sa.String(64), nullable=False),
        sa.Column("concentration", sa.Float),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("flag", sa.String(100), nullable=False),
        sa.Column("cv", sa.Float),
        sa.Column("dilution", sa.Float, nullable=False),
        sa.Column("signal", sa.Float),
        sa.UniqueConstraint("plate_pk", "replicate_group", "analyte", name="uq_cytokine_result"),
        sa.CheckConstraint("role IN ('sample','control')", name="ck_cytokine_result_role"),
        sa.CheckConstraint("dilution > 0", name="ck_cytokine_result_dilution"),
    )
    op.create_index("ix_cytokine_result_participant_id", "cytokine_result", ["participant_id"])


def downgrade() -> None:
    op.drop_index("ix_cytokine_result_participant_id", table_name="cytokine_result")
    for name in ("cytokine_result", "cytokine_curve", "cytokine_plate"):
        op.drop_table(name)
