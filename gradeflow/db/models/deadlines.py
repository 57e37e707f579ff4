"""Due dates per learner or group (extensions and extra attempts) and a course's late policy."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.db.base import Base, CreatedAt, IdPk, UpdatedAt

PERCENT = Numeric(5, 2)


class AssessmentOverride(Base):
    """An exception for one learner or one group on an assessment: their own due date and/or extra attempts.

    A learner's own override wins over their groups'; among groups the latest due date and the most extra attempts
    apply (as Canvas's assignment overrides). ``due_at`` null keeps the assessment's due date.
    """

    __tablename__ = "assessment_overrides"
    __table_args__ = (
        CheckConstraint("(enrollment_id IS NULL) <> (group_name IS NULL)", name="target"),
        CheckConstraint("extra_attempts BETWEEN 0 AND 1000", name="extra_attempts"),
        Index(
            "uq_assessment_overrides_learner",
            "assessment_id",
            "enrollment_id",
            unique=True,
            postgresql_where=sql("enrollment_id IS NOT NULL"),
        ),
        Index(
            "uq_assessment_overrides_group",
            "assessment_id",
            "group_name",
            unique=True,
            postgresql_where=sql("group_name IS NOT NULL"),
        ),
    )

    id: Mapped[IdPk]
    assessment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), index=True
    )
    group_name: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extra_attempts: Mapped[int] = mapped_column(Integer, server_default=sql("0"))
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class LatePolicy(Base):
    """A course's late and missing submission policy, with Canvas's field names (gradeflow/grading/late_policy.py)."""

    __tablename__ = "late_policies"
    __table_args__ = (
        CheckConstraint("late_submission_interval IN ('hour', 'day')", name="interval"),
        CheckConstraint(
            "missing_submission_deduction BETWEEN 0 AND 100 AND late_submission_deduction BETWEEN 0 AND 100"
            " AND late_submission_minimum_percent BETWEEN 0 AND 100",
            name="percents",
        ),
    )

    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    missing_submission_deduction_enabled: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    missing_submission_deduction: Mapped[Decimal] = mapped_column(PERCENT, server_default=sql("0"))
    late_submission_deduction_enabled: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    late_submission_deduction: Mapped[Decimal] = mapped_column(PERCENT, server_default=sql("0"))
    late_submission_interval: Mapped[str] = mapped_column(String(4), server_default="day")
    late_submission_minimum_percent_enabled: Mapped[bool] = mapped_column(Boolean, server_default=sql("false"))
    late_submission_minimum_percent: Mapped[Decimal] = mapped_column(PERCENT, server_default=sql("0"))
    revision: Mapped[int] = mapped_column(Integer, server_default=sql("1"))
    updated_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class LateApplication(Base):
    """A course's late policy waiting to be applied again to many results (after the policy, a due date or a group's
    override changed): the worker applies it in chunks of learners. ``assessment_ids`` null means every assessment.
    The row is the job's state (claim, lease, sweep): a job lost from Redis is found again from it."""

    __tablename__ = "late_applications"

    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    assessment_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set by the worker that took it (a lease: a worker that died leaves it to be taken again).
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Learners done so far in this run (keyset position over enrollment ids) and how many results changed.
    after_enrollment: Mapped[int] = mapped_column(BigInteger, server_default=sql("0"))
    changed: Mapped[int] = mapped_column(BigInteger, server_default=sql("0"))
