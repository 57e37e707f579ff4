"""Grading policies (versioned per course), stored course grades, and recompute jobs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.core.statuses import RECOMPUTE_STATUSES, sql_in
from gradeflow.db.base import POINTS, Base, CreatedAt, IdPk


class GradingPolicy(Base):
    """One version of a course's policy; versions are kept forever."""

    __tablename__ = "grading_policies"

    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    fingerprint: Mapped[str] = mapped_column(String(80))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]


class CourseGrade(Base):
    """A learner's course grade under one policy version; reads serve `courses.grades_version`."""

    __tablename__ = "course_grades"
    __table_args__ = (
        Index("ix_course_grades_course_version", "course_id", "policy_version", "enrollment_id"),
        # The gradebook's sort by grade (its key expression, as gradeflow/readside/service/gradebook.py writes it).
        Index(
            "ix_course_grades_course_version_final",
            "course_id",
            "policy_version",
            text("coalesce(final_percent, -1)"),
            "enrollment_id",
        ),
    )

    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    policy_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    current_percent: Mapped[Decimal | None] = mapped_column(POINTS)
    current_grade: Mapped[str | None] = mapped_column(String(50))
    current_passed: Mapped[bool | None] = mapped_column(Boolean)
    final_percent: Mapped[Decimal | None] = mapped_column(POINTS)
    final_grade: Mapped[str | None] = mapped_column(String(50))
    final_passed: Mapped[bool | None] = mapped_column(Boolean)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StaleGrade(Base):
    """A learner whose scores changed after their stored grades were computed (single score writes
    mark, a worker job or the next grade read refreshes)."""

    __tablename__ = "stale_grades"

    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)


class GradeRecompute(Base):
    """A worker job recomputing a whole course's grades under one policy version."""

    __tablename__ = "grade_recomputes"
    __table_args__ = (CheckConstraint(sql_in("status", RECOMPUTE_STATUSES), name="status"),)

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    policy_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    progress: Mapped[int] = mapped_column(Integer, server_default="0")
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
