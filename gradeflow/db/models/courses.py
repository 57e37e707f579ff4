"""Courses, their learners and staff, and their assessments with items."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.core.statuses import ENROLLMENT_STATUSES, sql_in
from gradeflow.db.base import POINTS, Base, CreatedAt, IdPk, Points, UpdatedAt

ExternalId = String(255)


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = (UniqueConstraint("organization_id", "external_id"),)

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(ExternalId)
    title: Mapped[str] = mapped_column(String(500))
    archived: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The active policy version, and the version whose stored grades reads serve (they differ while
    # a recompute under a new policy runs).
    policy_version: Mapped[int | None] = mapped_column(Integer)
    grades_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Enrollment(Base):
    """A learner in a course, addressed by the LMS's user id (`external_id`)."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("course_id", "external_id"),
        # Keyset walks over a course's learners in id order (reports, recomputes, lists).
        Index("ix_enrollments_course_id_id", "course_id", "id"),
        # The gradebook's sort by name (its key expression, as gradeflow/readside/service/gradebook.py writes it).
        Index(
            "ix_enrollments_course_name", "course_id", text("lower(coalesce(full_name, username, external_id))"), "id"
        ),
        CheckConstraint(sql_in("status", ENROLLMENT_STATUSES), name="status"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(ExternalId)
    username: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(500))
    given_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    track: Mapped[str] = mapped_column(String(64), server_default="audit")
    # Whether the learner's identity is verified (it matters only on tracks that require it).
    id_verified: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(16), server_default="enrolled")
    cohort: Mapped[str | None] = mapped_column(String(255))
    team: Mapped[str | None] = mapped_column(String(255))
    groups: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    # Content experiments: the learner's group in each group configuration, {configuration: group}.
    experiment_groups: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    is_course_team: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class CourseMember(Base):
    """A staff user's role in a course (planner, grader, publisher, viewer, moderator)."""

    __tablename__ = "course_members"
    __table_args__ = (
        UniqueConstraint("course_id", "user_id", "role"),
        CheckConstraint("role IN ('planner', 'grader', 'publisher', 'viewer', 'moderator')", name="role"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    # Indexed: whether a user is staff anywhere in the organization (the staff directory asks).
    user_id: Mapped[str] = mapped_column(ExternalId, index=True)
    role: Mapped[str] = mapped_column(String(16))
    # For the publisher role: the assessments (external ids) it covers; null covers the whole course.
    assessments: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[CreatedAt]


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (
        UniqueConstraint("course_id", "external_id"),
        CheckConstraint("points_possible >= 0", name="points_possible"),
        CheckConstraint("allowed_attempts BETWEEN 1 AND 1000", name="allowed_attempts"),
    )

    id: Mapped[IdPk]
    course_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("courses.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(ExternalId)
    title: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(200))
    points_possible: Mapped[Points]
    position: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Marking workflow settings (see gradeflow/core/commands.py MarkingSettings); null = defaults.
    marking: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    release: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # how results reach learners; null: manual
    # How many times a learner may take it (extra attempts per learner or group: AssessmentOverride).
    allowed_attempts: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # Anonymous marking: graders see candidate numbers instead of identities until a planner lifts it.
    anonymous: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    anonymity_lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    anonymity_lifted_by: Mapped[str | None] = mapped_column(String(255))
    # Confirmation waits for moderation: a sample picked and every sampled attempt decided.
    moderation_required: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # A final test names the initial test on the same subject it is compared with (progression reports).
    initial_assessment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("assessments.id", ondelete="SET NULL")
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Item(Base):
    """A question or problem of an assessment."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("assessment_id", "external_id"),
        CheckConstraint("marking IN ('auto', 'manual')", name="marking"),
        CheckConstraint("points_possible >= 0", name="points_possible"),
    )

    id: Mapped[IdPk]
    assessment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(ExternalId)
    number: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(String(500))
    points_possible: Mapped[Decimal] = mapped_column(POINTS)
    marking: Mapped[str] = mapped_column(String(8), server_default="auto")
    # Skills the item measures: [{"skill": name, "weight": w}]; a skill's level is the share of its
    # (weighted) points earned.
    skills: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    position: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
