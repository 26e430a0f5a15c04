"""Flow cytometry: FCS files, gating strategies, per-sample gate results.

Tables (models in :mod:`immunorehab.cytometry.tables`): ``cytometry_file`` (one gated file
of a participant's visit, with file and strategy hashes), ``cytometry_gate_result`` (counts,
percentages, cells/uL, medians per population), ``cytometry_gate_move`` (automatic gate
placement record) and ``cytometry_qc_flag``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _file_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "file_id", sa.Integer, sa.ForeignKey("cytometry_file.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("participant_id", sa.String(16), nullable=False),
        sa.Column("visit_id", sa.String(64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "cytometry_file",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("participant_pk", sa.Integer, sa.ForeignKey("participant.id"), nullable=False),
        sa.Column("participant_id", sa.String(16), nullable=False),
        sa.Column("visit_id", sa.String(64), nullable=False),
        sa.Column("tube", sa.String(64), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("strategy_sha256", sa.String(64), nullable=False),
        sa.Column("placed_strategy_sha256", sa.String(64), nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("panel_sha256", sa.String(64)),
        sa.Column("auto_placement", sa.Boolean, nullable=False),
        sa.Column("n_events", sa.Integer, nullable=False),
        sa.Column("draw_time", TZ),
        sa.Column("absolute_method", sa.String(20), nullable=False),
        sa.Column("beads_per_tube", sa.Float),
        sa.Column("volume_ul", sa.Float),
        sa.Column("lymphocytes_per_ul", sa.Float),
        sa.Column("placed_gatingml", sa.Text, nullable=False),
        sa.Column("processed_at", TZ, nullable=False),
        sa.Column("processed_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("file_sha256", "strategy_sha256", name="uq_cytometry_file_strategy"),
        sa.CheckConstraint(
            "absolute_method IN ('none', 'single_platform', 'dual_platform')", name="ck_cytometry_absolute"
        ),
        sa.CheckConstraint("n_events >= 0", name="ck_cytometry_events"),
    )
    op.create_index("ix_cytometry_file_participant_visit", "cytometry_file", ["participant_id", "visit_id"])
    op.create_table(
        "cytometry_gate_result",
        *_file_columns(),
        sa.Column("gate", sa.String(128), nullable=False),
        sa.Column("parent", sa.String(128)),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("parent_count", sa.Integer, nullable=False),
        sa.Column("pct_parent", sa.Float),
        sa.Column("pct_total", sa.Float),
        sa.Column("cells_per_ul", sa.Float),
        sa.Column("medians_json", sa.Text, nullable=False),
        sa.UniqueConstraint("file_id", "gate", name="uq_cytometry_gate_result"),
        sa.CheckConstraint("count >= 0 AND count <= parent_count", name="ck_cytometry_count"),
    )
    op.create_index("ix_cytometry_gate_result_file", "cytometry_gate_result", ["file_id"])
    op.create_table(
        "cytometry_gate_move",
        *_file_columns(),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("gates", sa.Text, nullable=False),
        sa.Column("dimension", sa.String(128), nullable=False),
        sa.Column("template_value", sa.Float),
        sa.Column("placed_value", sa.Float),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('moved', 'unchanged', 'kept')", name="ck_cytometry_move_status"),
    )
    op.create_index("ix_cytometry_gate_move_file", "cytometry_gate_move", ["file_id"])
    op.create_table(
        "cytometry_qc_flag",
        *_file_columns(),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_cytometry_qc_flag_file", "cytometry_qc_flag", ["file_id"])


def downgrade() -> None:
    for table in ("cytometry_qc_flag", "cytometry_gate_move", "cytometry_gate_result"):
        op.drop_index(f"ix_{table}_file", table_name=table)
        op.drop_table(table)
    op.drop_index("ix_cytometry_file_participant_visit", table_name="cytometry_file")
    op.drop_table("cytometry_file")
