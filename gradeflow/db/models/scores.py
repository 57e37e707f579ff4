"""Attempts, their scores, and stored idempotent responses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gradeflow.core.statuses import ATTEMPT_STATUSES, LATE_STATUSES, SCORE_SOURCES, sql_in
from gradeflow.db.base import POINTS, Base, CreatedAt, IdPk, UpdatedAt

# The result every reader uses: the entered score less the late policy's deduction, or the policy's score for
# missing work nobody scored (possible - the missing deduction). Computed by the database from the row alone, so
# no writer can forget it; the policy's figures are set by gradeflow/deadlines/service/late_results.py.
FINAL_SCORE = (
    "CASE WHEN late_status = 'missing' AND entered IS NULL THEN possible - points_deducted"
    " WHEN points_deducted IS NULL OR entered IS NULL THEN entered"
    " WHEN points_deducted > entered THEN LEAST(entered, 0)"
    " ELSE entered - points_deducted END"
)


class Attempt(Base):
    """A learner's attempt at an assessment, carrying the assessment-level score.

    For assessments with items the score is the sum of the item scores, kept in step by the
    score service in the same transaction; for assessments without items it is written directly.
    """

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("assessment_id", "enrollment_id"),
        CheckConstraint(sql_in("status", ATTEMPT_STATUSES), name="status"),
        CheckConstraint(sql_in("source", SCORE_SOURCES), name="source"),
        CheckConstraint("entered >= 0 AND possible >= 0", name="points"),
        CheckConstraint(sql_in("late_status", LATE_STATUSES), name="late_status"),
        CheckConstraint("points_deducted >= 0", name="points_deducted"),
        CheckConstraint("attempt_number >= 1", name="attempt_number"),
        # The gradebook's sort by an assessment and its score-range filter (gradeflow/readside/service/gradebook.py).
        Index(
            "ix_attempts_assessment_percent",
            "assessment_id",
            # The migration's expression as PostgreSQL gives it back, line breaks included (alembic check
            # compares the two texts).
            text(
                "COALESCE(\nCASE\n"
                "    WHEN status::text = 'graded'::text AND NOT excused AND possible > 0::numeric"
                " THEN earned::double precision / possible::double precision * 100::double precision\n"
                "    ELSE NULL::double precision\nEND, '-1'::integer::double precision)"
            ),
            "enrollment_id",
        ),
        # Excused results are few: grade reads look them up only where a course has any.
        Index("ix_attempts_excused", "assessment_id", "enrollment_id", postgresql_where=text("excused")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    assessment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("assessments.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("enrollments.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    # The score as entered (by a scorer, a mark, an import; for items the sum of the item scores) ...
    entered: Mapped[Decimal | None] = mapped_column(POINTS)
    # ... and the final result after the course's late policy (FINAL_SCORE), which every reader uses.
    earned: Mapped[Decimal | None] = mapped_column(POINTS, Computed(FINAL_SCORE, persisted=True))
    # The late policy's deduction: for late work the points taken off the entered score (0.00 when late without a
    # deduction); for missing work the missing deduction. Null when the policy does not apply.
    points_deducted: Mapped[Decimal | None] = mapped_column(POINTS)
    late_status: Mapped[str | None] = mapped_column(String(8))
    # Which try this is (1 for the first); extra attempts let a learner start again (scores/service/attempts.py).
    attempt_number: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    possible: Mapped[Decimal | None] = mapped_column(POINTS)
    source: Mapped[str | None] = mapped_column(String(8))
    scored_by: Mapped[str | None] = mapped_column(String(255))
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The automatic score under an override, kept visible.
    computed_earned: Mapped[Decimal | None] = mapped_column(POINTS)
    # Grading with manual items must be confirmed before the attempt has a final result.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_by: Mapped[str | None] = mapped_column(String(255))
    # The learner is excused from the assessment: independent of the status and the scores (kept, and
    # counted again once the flag is cleared); every preset leaves the result out as it defines excused.
    excused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The course session (sitting) the attempt belongs to, if any.
    session_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("course_sessions.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class ItemScore(Base):
    __tablename__ = "item_scores"
    __table_args__ = (
        CheckConstraint(sql_in("source", SCORE_SOURCES), name="source"),
        CheckConstraint("earned >= 0 AND possible >= 0", name="points"),
    )

    attempt_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    earned: Mapped[Decimal] = mapped_column(POINTS)
    possible: Mapped[Decimal] = mapped_column(POINTS)
    source: Mapped[str] = mapped_column(String(8))
    scored_by: Mapped[str | None] = mapped_column(String(255))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    computed_earned: Mapped[Decimal | None] = mapped_column(POINTS)
    item_revision: Mapped[int] = mapped_column(Integer)


class IdempotencyRecord(Base):
    """The first response to a request sent with an Idempotency-Key, kept for the TTL."""

    __tablename__ = "idempotency_records"

    id: Mapped[IdPk]
    organization_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("organizations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[CreatedAt]

    __table_args__ = (UniqueConstraint("organization_id", "key"),)
