"""Publication of results to learners: publication records, what each learner can see, e-mails."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.core.statuses import NOTIFICATION_STATUSES, PUBLICATION_STATUSES, sql_in
from gradeflow.db.base import POINTS, Base, CreatedAt, IdPk


class Publication(Base):
    """One act of publishing or retracting results: what, for whom, how, by whom, and what came of it."""

    __tablename__ = "publications"
    __table_args__ = (
        CheckConstraint("action IN ('publish', 'retract')", name="action"),
        CheckConstraint(sql_in("status", PUBLICATION_STATUSES), name="status"),
        CheckConstraint("show IN ('total_only', 'with_items')", name="show"),
        Index("ix_publications_course_id_id", "course_id", "id"),
        Index("ix_publications_due", "publish_at", postgresql_where="status = 'scheduled'"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))
    assessments: Mapped[list[str]] = mapped_column(ARRAY(Text))  # external ids
    course_grade: Mapped[bool] = mapped_column(Boolean)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB)
    show: Mapped[str] = mapped_column(String(16))
    notify_email: Mapped[bool] = mapped_column(Boolean)
    publish_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))  # request | automatic | scheduled
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed: Mapped[int] = mapped_column(Integer, server_default="0")  # results published or retracted
    skipped: Mapped[int] = mapped_column(Integer, server_default="0")
    skipped_detail: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")


class PublishedResult(Base):
    """What a learner sees of one assessment: the result as it was when published."""

    __tablename__ = "published_results"

    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    assessment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True
    )
    publication_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("publications.id", ondelete="CASCADE"))
    earned: Mapped[Decimal | None] = mapped_column(POINTS)  # null when excused
    possible: Mapped[Decimal] = mapped_column(POINTS)
    excused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # shown as "Excused"
    # The late policy's part in the published result (the learner sees the deduction and "late"/"missing").
    points_deducted: Mapped[Decimal | None] = mapped_column(POINTS)
    late_status: Mapped[str | None] = mapped_column(String(8))
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)  # only when shown with items
    # The feedback on the assessment as published; item feedback is in `items`. The digest covers all
    # feedback published, so a later change of it shows to staff as a changed publication.
    feedback: Mapped[str | None] = mapped_column(Text)
    feedback_digest: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PublishedGrade(Base):
    """What a learner sees of their course grade: the grade as it was when published."""

    __tablename__ = "published_grades"

    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    publication_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("publications.id", ondelete="CASCADE"))
    percent: Mapped[Decimal | None] = mapped_column(POINTS)
    grade: Mapped[str | None] = mapped_column(String(50))
    passed: Mapped[bool | None] = mapped_column(Boolean)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """The one e-mail a publication owes a learner; its status makes sending happen at most once."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(sql_in("status", NOTIFICATION_STATUSES), name="status"),
        Index("ix_notifications_due", "next_try_at", postgresql_where="status = 'queued'"),
    )

    publication_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("publications.id", ondelete="CASCADE"), primary_key=True
    )
    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(8), server_default="queued")
    tries: Mapped[int] = mapped_column(Integer, server_default="0")
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
