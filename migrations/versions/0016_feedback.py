"""feedback to learners, apart from markers' comments; published results carry it instead of comments

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("attempt_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("char_length(text) BETWEEN 1 AND 5000", name=op.f("ck_feedback_text")),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_feedback_attempt_id_attempts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_feedback_item_id_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(
        "uq_feedback_attempt_item", "feedback", ["attempt_id", sa.text("coalesce(item_id, 0)")], unique=True
    )
    op.add_column("published_results", sa.Column("feedback", sa.Text(), nullable=True))
    op.add_column("published_results", sa.Column("feedback_digest", sa.Text(), nullable=True))
    # Markers' comments were published with item detail; they are internal: take them out of what
    # learners can still read.
    op.execute(
        """
        UPDATE published_results SET items = (
          SELECT coalesce(jsonb_agg(x - 'comments' ORDER BY n), '[]') FROM jsonb_array_elements(items)
            WITH ORDINALITY AS e(x, n))
        WHERE items IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_column("published_results", "feedback_digest")
    op.drop_column("published_results", "feedback")
    op.drop_index("uq_feedback_attempt_item", table_name="feedback")
    op.drop_table("feedback")
