"""progression pairs: a final test names the initial test on the same subject it is compared with

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 07:58:53
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assessments", sa.Column("initial_assessment_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_assessments_initial_assessment_id_assessments"),
        "assessments",
        "assessments",
        ["initial_assessment_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_assessments_initial_assessment_id_assessments"), "assessments", type_="foreignkey")
    op.drop_column("assessments", "initial_assessment_id")
