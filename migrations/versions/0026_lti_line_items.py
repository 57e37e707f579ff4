"""LTI AGS line items and the last score timestamp per learner

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 19:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_line_items",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.BigInteger(), nullable=False),
        sa.Column("assessment_id", sa.BigInteger(), nullable=False),
        sa.Column("tool_id", sa.BigInteger(), nullable=True),
        sa.Column("resource_id", sa.String(length=255), nullable=True),
        sa.Column("resource_link_id", sa.String(length=255), nullable=True),
        sa.Column("tag", sa.String(length=255), nullable=True),
        sa.Column("start_date_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_date_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "start_date_time IS NULL OR end_date_time IS NULL OR end_date_time >= start_date_time",
            name=op.f("ck_lti_line_items_dates"),
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_lti_line_items_assessment_id_assessments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_lti_line_items_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["lti_tools.id"], name=op.f("fk_lti_line_items_tool_id_lti_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_line_items")),
        sa.UniqueConstraint("assessment_id", name=op.f("uq_lti_line_items_assessment_id")),
    )
    op.create_index("ix_lti_line_items_course_id", "lti_line_items", ["course_id", "id"], unique=False)
    op.create_index(op.f("ix_lti_line_items_tool_id"), "lti_line_items", ["tool_id"], unique=False)
    op.create_table(
        "lti_score_timestamps",
        sa.Column("assessment_id", sa.BigInteger(), nullable=False),
        sa.Column("enrollment_id", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_lti_score_timestamps_assessment_id_assessments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_lti_score_timestamps_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assessment_id", "enrollment_id", name=op.f("pk_lti_score_timestamps")),
    )
    op.create_index(
        op.f("ix_lti_score_timestamps_enrollment_id"), "lti_score_timestamps", ["enrollment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_lti_score_timestamps_enrollment_id"), table_name="lti_score_timestamps")
    op.drop_table("lti_score_timestamps")
    op.drop_index(op.f("ix_lti_line_items_tool_id"), table_name="lti_line_items")
    op.drop_index("ix_lti_line_items_course_id", table_name="lti_line_items")
    op.drop_table("lti_line_items")
