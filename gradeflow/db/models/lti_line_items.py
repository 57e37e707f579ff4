"""LTI AGS line items: the assessments a tool created or a planner exposed to tools, and the last score
timestamp a tool sent per learner."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, CreatedAt, IdPk, UpdatedAt


class LtiLineItem(Base):
    """An assessment as an AGS line item. `tool_id` set: the tool created it and only that tool sees it;
    null: a planner exposed an existing assessment to every tool that may reach the course. The tool's
    own fields (resource ids, tag, dates) are stored as sent and never changed by Gradeflow."""

    __tablename__ = "lti_line_items"
    __table_args__ = (
        Index("ix_lti_line_items_course_id", "course_id", "id"),
        CheckConstraint(
            "start_date_time IS NULL OR end_date_time IS NULL OR end_date_time >= start_date_time", name="dates"
        ),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    # One line item per assessment; removing the assessment removes the line item.
    assessment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"), unique=True
    )
    # Deleting a tool removes the line items it created; their assessments and scores stay.
    tool_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("lti_tools.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[str | None] = mapped_column(String(255))
    resource_link_id: Mapped[str | None] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(255))
    start_date_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_date_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class LtiScoreTimestamp(Base):
    """The `timestamp` of the last score a tool posted for a learner at an assessment: scores must arrive
    with strictly increasing timestamps (an older or equal one changes nothing)."""

    __tablename__ = "lti_score_timestamps"

    assessment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True
    )
    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
