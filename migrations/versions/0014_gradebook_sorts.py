"""gradebook sorts: learners by name, stored grades by final percent, attempts by percent

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 13:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ATTEMPT_PERCENT = (
    "coalesce(CASE WHEN status = 'graded' AND possible > 0"
    " THEN CAST(earned AS float8) / CAST(possible AS float8) * 100 END, -1)"
)


def upgrade() -> None:
    # The expressions are the gradebook's sort keys, written as it writes them (gradeflow/readside/service/gradebook.py).
    op.create_index(
        "ix_enrollments_course_name",
        "enrollments",
        ["course_id", sa.text("lower(coalesce(full_name, username, external_id))"), "id"],
    )
    op.create_index(
        "ix_course_grades_course_version_final",
        "course_grades",
        ["course_id", "policy_version", sa.text("coalesce(final_percent, -1)"), "enrollment_id"],
    )
    op.create_index(
        "ix_attempts_assessment_percent", "attempts", ["assessment_id", sa.text(ATTEMPT_PERCENT), "enrollment_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_attempts_assessment_percent", table_name="attempts")
    op.drop_index("ix_course_grades_course_version_final", table_name="course_grades")
    op.drop_index("ix_enrollments_course_name", table_name="enrollments")
