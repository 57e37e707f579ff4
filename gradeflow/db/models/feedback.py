"""Feedback to learners: what planners and graders write for the learner to read, apart from marks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, CreatedAt, IdPk


class Feedback(Base):
    """Feedback on one attempt: on the assessment as a whole (item_id null) or on one item of it.

    Marks' comments are internal to the markers; this is what publishing shows to the learner."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("uq_feedback_attempt_item", "attempt_id", sql_text("coalesce(item_id, 0)"), unique=True),
        CheckConstraint("char_length(text) BETWEEN 1 AND 5000", name="text"),
    )

    id: Mapped[IdPk]
    attempt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("attempts.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
