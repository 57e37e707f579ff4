"""How a course's learners are organised for sittings and reviews: sessions (the test platform's test
sessions, which attempts may belong to), learner groups (archivable), and candidate review sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, CreatedAt, IdPk, UpdatedAt


class CourseSession(Base):
    """A sitting of the course's assessments (a test platform's "test session"): attempts may belong to
    one, and the results table, the dashboard and the reports filter by it."""

    __tablename__ = "course_sessions"
    __table_args__ = (
        UniqueConstraint("course_id", "external_id"),
        CheckConstraint("starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at", name="window"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500))
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class LearnerGroup(Base):
    """A group named in enrollments' `groups`, with its state: an archived group's learners are hidden
    from the results table, the dashboard and the reports unless asked for."""

    __tablename__ = "learner_groups"
    __table_args__ = (UniqueConstraint("course_id", "name"),)

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class ReviewSession(Base):
    """A window during which an audience of learners may review their published result of one
    assessment: item scores and learner-visible feedback (Cirrus's candidate review)."""

    __tablename__ = "review_sessions"
    __table_args__ = (
        UniqueConstraint("assessment_id", "external_id"),
        CheckConstraint("ends_at > starts_at", name="window"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    assessment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # {"learners": [...], "groups": [...], "cohorts": [...]}: a learner in any list; all empty: every
    # learner with a published result of the assessment.
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
