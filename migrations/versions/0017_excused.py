"""excused results: a learner excused from an assessment, and its published snapshot

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The gradebook's sort by an assessment and its score-range filter (gradeflow/readside/service/gradebook.py): an
# excused result has no score there either.
ATTEMPT_PERCENT = (
    "coalesce(CASE WHEN status = 'graded' AND NOT excused AND possible > 0"
    " THEN CAST(earned AS float8) / CAST(possible AS float8) * 100 END, -1)"
)
ATTEMPT_PERCENT_BEFORE = (
    "coalesce(CASE WHEN status = 'graded' AND possible > 0"
    " THEN CAST(earned AS float8) / CAST(possible AS float8) * 100 END, -1)"
)


def upgrade() -> None:
    # Independent of the attempt's status and scores: clearing it gives back what the scores say.
    op.add_column("attempts", sa.Column("excused", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    # Excused results are few: the grade reads look them up by this index only where a course has any.
    op.create_index(
        "ix_attempts_excused", "attempts", ["assessment_id", "enrollment_id"], postgresql_where=sa.text("excused")
    )
    _percent_index(ATTEMPT_PERCENT)
    # A published excused result shows the learner "Excused", with no score.
    op.add_column(
        "published_results", sa.Column("excused", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.alter_column("published_results", "earned", existing_type=sa.Numeric(18, 6), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM published_results WHERE earned IS NULL")
    op.alter_column("published_results", "earned", existing_type=sa.Numeric(18, 6), nullable=False)
    op.drop_column("published_results", "excused")
    _percent_index(ATTEMPT_PERCENT_BEFORE)
    op.drop_index("ix_attempts_excused", table_name="attempts")
    op.drop_column("attempts", "excused")


def _percent_index(expression: str) -> None:
    op.drop_index("ix_attempts_assessment_percent", table_name="attempts")
    op.create_index(
        "ix_attempts_assessment_percent", "attempts", ["assessment_id", sa.text(expression), "enrollment_id"]
    )
