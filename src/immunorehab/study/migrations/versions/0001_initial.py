"""Initial schema: study, users, participants, allocations, visits, audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
IMMUTABLE_TABLES = ("allocation", "audit_event")


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(100), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("protocol_yaml", sa.Text, nullable=False),
        sa.Column("protocol_sha256", sa.String(64), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint(
            "role IN ('admin','coordinator','physio','lab','statistician','assessor')", name="ck_user_role"
        ),
    )
    op.create_table(
        "participant",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("participant_id", sa.String(16), nullable=False, unique=True),
        sa.Column("site", sa.String(3), nullable=False),
        sa.Column("site_seq", sa.Integer, nullable=False),
        sa.Column("consent_date", sa.Date),
        sa.Column("age_years", sa.Integer),
        sa.Column("sex", sa.String(10)),
        sa.Column("who_severity", sa.Integer),
        sa.Column("hospitalised", sa.Boolean),
        sa.Column("icu_admitted", sa.Boolean),
        sa.Column("invasive_ventilation", sa.Boolean),
        sa.Column("vaccination_doses", sa.Integer),
        sa.Column("cmv_serostatus", sa.String(10)),
        sa.Column("days_since_infection", sa.Integer),
        sa.Column("eligible", sa.Boolean, nullable=False),
        sa.Column("failed_criteria", sa.Text, nullable=False),
        sa.Column("withdrawn_on", sa.Date),
        sa.Column("withdrawal_reason", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("site", "site_seq", name="uq_participant_site_seq"),
        sa.CheckConstraint("age_years IS NULL OR (age_years >= 0 AND age_years <= 120)", name="ck_age"),
        sa.CheckConstraint("who_severity IS NULL OR (who_severity BETWEEN 0 AND 10)", name="ck_who"),
    )
    op.create_table(
        "allocation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sequence", sa.Integer, nullable=False, unique=True),
        sa.Column("participant_pk", sa.Integer, sa.ForeignKey("participant.id"), nullable=False, unique=True),
        sa.Column("participant_id", sa.String(16), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("stratum", sa.Text, nullable=False),
        sa.Column("stratum_position", sa.Integer, nullable=False),
        sa.Column("levels_json", sa.Text, nullable=False),
        sa.Column("detail_json", sa.Text, nullable=False),
        sa.Column("allocated_on", sa.Date, nullable=False),
        sa.Column("allocated_at", TZ, nullable=False),
        sa.Column("allocated_by", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "visit_record",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("participant_pk", sa.Integer, sa.ForeignKey("participant.id"), nullable=False),
        sa.Column("participant_id", sa.String(16), nullable=False),
        sa.Column("visit_id", sa.String(64), nullable=False),
        sa.Column("visit_date", sa.Date, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("participant_pk", "visit_id", name="uq_visit_record"),
    )
    op.create_table(
        "measurement",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("visit_record_id", sa.Integer, sa.ForeignKey("visit_record.id"), nullable=False),
        sa.Column("participant_id", sa.String(16), nullable=False),
        sa.Column("visit_id", sa.String(64), nullable=False),
        sa.Column("measure_id", sa.String(64), nullable=False),
        sa.Column("value_text", sa.Text, nullable=False),
        sa.Column("value_num", sa.Float),
        sa.UniqueConstraint("visit_record_id", "measure_id", name="uq_measurement"),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_key", sa.Text, nullable=False),
        sa.Column("participant_id", sa.String(16)),
        sa.Column("changes_json", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_event_participant_id", "audit_event", ["participant_id"])
    _install_immutability_triggers()


def _install_immutability_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for table in IMMUTABLE_TABLES:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
                )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE OR REPLACE FUNCTION {table}_immutable() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{table} rows are immutable'; END; $$ LANGUAGE plpgsql"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_immutable()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_immutable()"
            )


def downgrade() -> None:
    for name in (
        "audit_event",
        "measurement",
        "visit_record",
        "allocation",
        "participant",
        "app_user",
        "study",
    ):
        op.drop_table(name)
