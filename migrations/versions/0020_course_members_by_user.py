"""course members by user: is a user staff anywhere in the organization (the staff directory asks
when a user token names its user)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 03:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The unique (course_id, user_id, role) index answers per course; this one answers per user.
    op.create_index("ix_course_members_user_id", "course_members", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_course_members_user_id", table_name="course_members")
