"""Rehabilitation: prescriptions, session logs, progression decisions, clinical reviews.

Tables of :mod:`immunorehab.rehab.tables`. Check constraints repeat the validation's
ranges (SpO2 0-100 %, Borg CR10 0-10, RPE 6-20, symptoms 0-10, non-negative doses) so
that no code path can store an impossible value.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
SYMPTOMS = ("fatigue", "breathlessness", "pain", "cognition")


def _between(column: str, low: float, high: float) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        f"{column} IS NULL OR ({column} >= {low} AND {column} <= {high})", name=f"ck_{column}"
    )


def _non_negative(column: str, table: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IS NULL OR {column} >= 0", name=f"ck_{table}_{column}")


def upgrade() -> None:
    op.create_table(
        "rehab_prescription",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("participant_pk", sa.Integer, sa.ForeignKey("participant.id"), nullable=False),
        sa.Column("participant_id", sa.String(16), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("programme_id", sa.String(100), nullable=False),
        sa.Column("programme_version", sa.String(32), nullable=False),
        sa.Column("programme_sha256", sa.String(64), nullable=False),
        sa.Column("programme_yaml", sa.Text, nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("pem_positive", sa.Boolean, nullable=False),
        sa.Column("plan_json", sa.Text, nullable=False),
        sa.Column("plan_sha256", sa.String(64), nullable=False),
        sa.Column("assessment_json", sa.Text, nullable=False),
        sa.Column("prescribed_on", sa.Date, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("participant_pk", "version", name="uq_rehab_prescription"),
        sa.CheckConstraint("mode IN ('standard', 'pacing')", name="ck_rehab_prescription_mode"),
        sa.CheckConstraint("version >= 1", name="ck_rehab_prescription_version"),
    )
    symptom_columns = [
        sa.Column(f"sym_{when}_{name}", sa.Integer) for when in ("pre", "24h", "48h") for name in SYMPTOMS
    ]
    op.create_table(
        "rehab_session",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("participant_pk", sa.Integer, sa.ForeignKey("participant.id"), nullable=False),
        sa.Column("participant_id", sa.String(16), nullable=False, index=True),
        sa.Column("prescription_version", sa.Integer, nullable=False),
        sa.Column("session_no", sa.Integer, nullable=False),
        sa.Column("session_date", sa.Date, nullable=False),
        sa.Column("attended", sa.Boolean, nullable=False),
        sa.Column("supervised", sa.Boolean, nullable=False),
        sa.Column("education_attended", sa.Boolean),
        sa.Column("hr_pre_bpm", sa.Float),
        sa.Column("hr_peak_bpm", sa.Float),
        sa.Column("hr_post_bpm", sa.Float),
        sa.Column("spo2_pre_pct", sa.Float),
        sa.Column("spo2_lowest_pct", sa.Float),
        sa.Column("borg_dyspnoea", sa.Float),
        sa.Column("borg_fatigue", sa.Float),
        sa.Column("rpe", sa.Integer),
        *symptom_columns,
        sa.Column("crash_reported", sa.Boolean, nullable=False),
        sa.Column("red_flags", sa.Text, nullable=False),
        sa.Column("stopped_during", sa.String(64)),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("participant_pk", "session_no", name="uq_rehab_session"),
        sa.CheckConstraint("session_no >= 1", name="ck_rehab_session_no"),
        _between("spo2_pre_pct", 0, 100),
        _between("spo2_lowest_pct", 0, 100),
        _between("borg_dyspnoea", 0, 10),
        _between("borg_fatigue", 0, 10),
        _between("rpe", 6, 20),
        *[_between(f"sym_{when}_{name}", 0, 10) for when in ("pre", "24h", "48h") for name in SYMPTOMS],
    )
    dose_columns = ("minutes", "speed_kmh", "incline_pct", "watts", "sets", "reps", "load_kg")
    op.create_table(
        "rehab_exercise",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "session_pk", sa.Integer, sa.ForeignKey("rehab_session.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("participant_id", sa.String(16), nullable=False, index=True),
        sa.Column("session_no", sa.Integer, nullable=False),
        sa.Column("exercise_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("prescribed_by", sa.String(8), nullable=False),
        *[
            sa.Column(f"{which}_{name}", sa.Integer if name in ("sets", "reps") else sa.Float)
            for which in ("prescribed",)
            for name in dose_columns
        ],
        sa.Column("done", sa.Boolean, nullable=False),
        *[
            sa.Column(f"done_{name}", sa.Integer if name in ("sets", "reps") else sa.Float)
            for name in dose_columns
        ],
        sa.Column("borg_dyspnoea", sa.Float),
        sa.Column("borg_fatigue", sa.Float),
        sa.Column("rpe", sa.Integer),
        sa.UniqueConstraint("session_pk", "exercise_id", name="uq_rehab_exercise"),
        sa.CheckConstraint("kind IN ('walking', 'cycling', 'resistance')", name="ck_rehab_exercise_kind"),
        sa.CheckConstraint("prescribed_by IN ('engine', 'physio')", name="ck_rehab_exercise_by"),
        sa.CheckConstraint(
            "borg_dyspnoea IS NULL OR (borg_dyspnoea >= 0 AND borg_dyspnoea <= 10)", name="ck_rehab_ex_borg_d"
        ),
        sa.CheckConstraint(
            "borg_fatigue IS NULL OR (borg_fatigue >= 0 AND borg_fatigue <= 10)", name="ck_rehab_ex_borg_f"
        ),
        sa.CheckConstraint("rpe IS NULL OR (rpe >= 6 AND rpe <= 20)", name="ck_rehab_ex_rpe"),
        *[_non_negative(f"{w}_{n}", "rehab_ex") for w in ("prescribed", "done") for n in dose_columns],
    )
    op.create_table(
        "rehab_adverse_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "session_pk", sa.Integer, sa.ForeignKey("rehab_session.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("participant_id", sa.String(16), nullable=False, index=True),
        sa.Column("session_no", sa.Integer, nullable=False),
        sa.Column("term", sa.Text, nullable=False),
        sa.Column("serious", sa.Boolean, nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("relatedness", sa.String(12), nullable=False),
        sa.CheckConstraint("severity IN ('mild', 'moderate', 'severe')", name="ck_rehab_ae_severity"),
    )
    op.create_table(
        "rehab_clearance",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("participant_pk", sa.Integer, sa.ForeignKey("participant.id"), nullable=False),
        sa.Column("participant_id", sa.String(16), nullable=False, index=True),
        sa.Column("session_no", sa.Integer, nullable=False),
        sa.Column("cleared_on", sa.Date, nullable=False),
        sa.Column("cleared_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("participant_pk", "session_no", name="uq_rehab_clearance"),
    )


def downgrade() -> None:
    for name in (
        "rehab_clearance",
        "rehab_adverse_event",
        "rehab_exercise",
        "rehab_session",
        "rehab_prescription",
    ):
        op.drop_table(name)
