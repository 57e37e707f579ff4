"""Who marks what (allocations) and the marks graders give."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.core.statuses import RESCORE_STATUSES, SAMPLE_STATUSES, sql_in
from gradeflow.db.base import POINTS, Base, CreatedAt, IdPk


class Allocation(Base):
    """A grader assigned to an attempt's manual items (item_id null) or to one item of it."""

    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint("role IN ('marker', 'third', 'final')", name="role"),
        Index("uq_allocations_attempt_item_grader", "attempt_id", text("coalesce(item_id, 0)"), "grader", unique=True),
        Index("ix_allocations_grader", "grader"),
    )

    id: Mapped[IdPk]
    attempt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("attempts.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"))
    grader: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(8), server_default="marker")
    created_at: Mapped[CreatedAt]


class Mark(Base):
    """One grader's (or workgroup's) mark for one item of one attempt.

    A moderator's adjustment is a mark too (role ``moderator``), kept beside the graders' own."""

    __tablename__ = "marks"
    __table_args__ = (
        Index("uq_marks_attempt_item_grader", "attempt_id", "item_id", "grader", unique=True),
        CheckConstraint("points >= 0", name="points"),
        CheckConstraint("role IN ('marker', 'third', 'final', 'moderator')", name="role"),
    )

    id: Mapped[IdPk]
    attempt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("attempts.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"))
    grader: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), server_default="marker")
    points: Mapped[Decimal] = mapped_column(POINTS)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ItemRescore(Base):
    """A worker job rescoring one item for every attempt after its points or key changed."""

    __tablename__ = "item_rescores"
    __table_args__ = (
        CheckConstraint(sql_in("status", RESCORE_STATUSES), name="status"),
        CheckConstraint("mode IN ('scale', 'full_credit', 'keep')", name="mode"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("items.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(12))
    old_points: Mapped[Decimal] = mapped_column(POINTS)
    new_points: Mapped[Decimal] = mapped_column(POINTS)
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    progress: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rescored: Mapped[int] = mapped_column(BigInteger, server_default="0")
    requested_by: Mapped[str] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Workgroup(Base):
    """Graders who mark together (shared workflow): their marks are the workgroup's."""

    __tablename__ = "workgroups"

    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    members: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[CreatedAt]


class CandidateNumber(Base):
    """The number graders know a learner by on an anonymous assessment: stable, and unrelated to any id."""

    __tablename__ = "candidate_numbers"
    __table_args__ = (
        UniqueConstraint("assessment_id", "number"),
        CheckConstraint("number > 0", name="number"),
    )

    assessment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True
    )
    enrollment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[CreatedAt]


class ModerationSample(Base):
    """An attempt picked for moderation, in the stratum of the grader who marked it, and the moderator's decision."""

    __tablename__ = "moderation_samples"
    __table_args__ = (
        UniqueConstraint("assessment_id", "attempt_id"),
        CheckConstraint(sql_in("status", SAMPLE_STATUSES), name="status"),
    )

    id: Mapped[IdPk]
    assessment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    attempt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("attempts.id", ondelete="CASCADE"), index=True)
    grader: Mapped[str | None] = mapped_column(String(255))
    picked_by: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(8), server_default="pending")
    moderator: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]


class ModerationScaling(Base):
    """A moderator's scaling of one grader's marks on an assessment (the marks themselves stay as given)."""

    __tablename__ = "moderation_scalings"
    __table_args__ = (CheckConstraint("factor > 0 AND factor <= 10", name="factor"),)

    assessment_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True
    )
    grader: Mapped[str] = mapped_column(String(255), primary_key=True)
    factor: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    scaled_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
