"""Candidate review sessions (`review_sessions`) and what a learner reviews in one (gradeflow/publishing/service/
reviews.py says the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.statuses import LateStatus
from gradeflow.publishing.repository import visibility as published

# SQL condition: review session `r` includes enrollment `e` (its published result is checked apart).
INCLUDES = """(
    coalesce(jsonb_array_length(r.audience->'learners'), 0) + coalesce(jsonb_array_length(r.audience->'groups'), 0)
      + coalesce(jsonb_array_length(r.audience->'cohorts'), 0) = 0
    OR coalesce(r.audience->'learners' @> to_jsonb(e.external_id), false)
    OR coalesce(r.audience->'cohorts' @> to_jsonb(e.cohort), false)
    OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.audience->'groups') g(name) WHERE g.name = ANY(e.groups)))"""

# `learners`: how many learners the session includes as things stand (in the audience, with a
# published result of the assessment).
_VIEW = f"""
    SELECT r.id, r.external_id, a.external_id AS assessment, r.title, r.starts_at, r.ends_at, r.audience,
           r.created_by, r.created_at, r.updated_at,
           (SELECT count(*) FROM published_results pr JOIN enrollments e ON e.id = pr.enrollment_id
            WHERE pr.assessment_id = r.assessment_id AND {INCLUDES}) AS learners
    FROM review_sessions r JOIN assessments a ON a.id = r.assessment_id
    WHERE r.assessment_id = :a
"""  # noqa: S608  (constant SQL)


@dataclass(frozen=True, slots=True)
class ReviewSessionRow:
    """A review session as staff see it; `learners`: how many it includes now."""

    id: int
    external_id: str
    assessment: str
    title: str | None
    starts_at: datetime
    ends_at: datetime
    audience: dict[str, Any] | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    learners: int


async def unknown_learners(session: AsyncSession, course_id: int, learners: list[str]) -> list[int]:
    """The positions (from 0) in `learners` of those not enrolled in the course, the first 100."""
    rows = await session.execute(
        text(
            """
            SELECT x.n - 1 FROM unnest(CAST(:l AS text[])) WITH ORDINALITY x(ext, n)
            WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.course_id = :c AND e.external_id = x.ext)
            ORDER BY x.n LIMIT 100
            """
        ),
        {"c": course_id, "l": learners},
    )
    return list(rows.scalars())


async def sessions_after(
    session: AsyncSession, assessment_id: int, after: tuple[datetime, int] | None, limit: int
) -> list[ReviewSessionRow]:
    """Up to `limit` of the assessment's sessions after (starts_at, id) `after`, in the order they open."""
    rows = await session.execute(
        text(
            f"""
            SELECT * FROM ({_VIEW}) q
            WHERE CAST(:at AS timestamptz) IS NULL OR (q.starts_at, q.id) > (CAST(:at AS timestamptz), :id)
            ORDER BY q.starts_at, q.id LIMIT :lim
            """  # noqa: S608  (constant SQL)
        ),
        {"a": assessment_id, "at": after and after[0], "id": after and after[1], "lim": limit},
    )
    return [ReviewSessionRow(**r) for r in rows.mappings()]


async def review_session(session: AsyncSession, assessment_id: int, review: str) -> ReviewSessionRow | None:
    row = (
        (await session.execute(text(_VIEW + " AND r.external_id = :r"), {"a": assessment_id, "r": review}))
        .mappings()
        .first()
    )
    return None if row is None else ReviewSessionRow(**row)


async def insert_review_session(
    session: AsyncSession,
    course_id: int,
    assessment_id: int,
    *,
    external_id: str,
    title: str | None,
    starts_at: datetime,
    ends_at: datetime,
    audience_json: str,
    actor: str,
    now: datetime,
) -> int | None:
    """A new session; None when the external id is taken for the assessment."""
    created: int | None = await session.scalar(
        text(
            """
            INSERT INTO review_sessions (course_id, assessment_id, external_id, title, starts_at, ends_at, audience,
                                         created_by, created_at, updated_at)
            VALUES (:c, :a, :ext, :title, :starts, :ends, CAST(:audience AS jsonb), :actor, :now, :now)
            ON CONFLICT (assessment_id, external_id) DO NOTHING RETURNING id
            """
        ),
        {
            "c": course_id,
            "a": assessment_id,
            "ext": external_id,
            "title": title,
            "starts": starts_at,
            "ends": ends_at,
            "audience": audience_json,
            "actor": actor,
            "now": now,
        },
    )
    return created


@dataclass(frozen=True, slots=True)
class LockedReviewSession:
    id: int
    title: str | None
    starts_at: datetime
    ends_at: datetime
    audience: dict[str, Any] | None


async def lock_review_session(session: AsyncSession, assessment_id: int, review: str) -> LockedReviewSession | None:
    row = (
        await session.execute(
            text(
                """
                SELECT id, title, starts_at, ends_at, audience FROM review_sessions
                WHERE assessment_id = :a AND external_id = :r FOR UPDATE
                """
            ),
            {"a": assessment_id, "r": review},
        )
    ).first()
    return None if row is None else LockedReviewSession(*row)


async def update_review_session(
    session: AsyncSession,
    review_session_id: int,
    *,
    title: str | None,
    starts_at: datetime,
    ends_at: datetime,
    audience_json: str,
    now: datetime,
) -> None:
    await session.execute(
        text(
            """
            UPDATE review_sessions SET title = :title, starts_at = :starts_at, ends_at = :ends_at,
                   audience = CAST(:audience AS jsonb), updated_at = :now
            WHERE id = :id
            """
        ),
        {
            "title": title,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "audience": audience_json,
            "now": now,
            "id": review_session_id,
        },
    )


@dataclass(frozen=True, slots=True)
class DeletedReviewSession:
    external_id: str
    title: str | None
    starts_at: datetime
    ends_at: datetime
    audience: dict[str, Any] | None


async def delete_review_session(session: AsyncSession, assessment_id: int, review: str) -> DeletedReviewSession | None:
    row = (
        await session.execute(
            text(
                """
                DELETE FROM review_sessions WHERE assessment_id = :a AND external_id = :r
                RETURNING external_id, title, starts_at, ends_at, audience
                """
            ),
            {"a": assessment_id, "r": review},
        )
    ).first()
    return None if row is None else DeletedReviewSession(*row)


# --- learners: their reviews ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LearnerReviewSession:
    """A review session that includes the learner, open now or still to come."""

    review: str
    assessment: str
    title: str | None
    starts_at: datetime
    ends_at: datetime
    open: bool


async def sessions_of_learner(session: AsyncSession, enrollment_id: int, now: datetime) -> list[LearnerReviewSession]:
    """The learner's review sessions open at `now` or still to come, in the order they open."""
    rows = await session.execute(
        text(
            f"""
            SELECT r.external_id AS review, a.external_id AS assessment, r.title, r.starts_at, r.ends_at,
                   r.starts_at <= :now AS open
            FROM enrollments e
            JOIN published_results pr ON pr.enrollment_id = e.id
            JOIN review_sessions r ON r.assessment_id = pr.assessment_id
            JOIN assessments a ON a.id = r.assessment_id
            WHERE e.id = :e AND r.ends_at > :now AND {INCLUDES}
            ORDER BY r.starts_at, a.position, a.id, r.id
            """  # noqa: S608  (constant SQL)
        ),
        {"e": enrollment_id, "now": now},
    )
    return [LearnerReviewSession(*r) for r in rows]


# Attempt `t` (or its feedback) was written after result `pr` was published: its items may no longer
# be what was released (a re-mark that keeps the total, a draft note on an item), so a review of a
# total-only publication shows no items until the result is published again.
_TOUCHED_SINCE = """(t.updated_at > pr.published_at
    OR EXISTS (SELECT 1 FROM feedback f WHERE f.attempt_id = t.id AND f.updated_at > pr.published_at))"""

# The learner's published result of the assessment under review, during the open session that
# includes them and closes last; items as the module docstring says.
_REVIEW = f"""
    SELECT a.external_id AS assessment, a.title, a.category, pr.earned, pr.possible, pr.excused, pr.published_at,
           pr.points_deducted, pr.late_status, pr.feedback,
           CASE WHEN pr.items IS NOT NULL OR pr.excused THEN pr.items
                WHEN t.id IS NULL OR {published.AWAITS_CONFIRMATION} OR {published.CHANGED}
                     OR {_TOUCHED_SINCE} THEN NULL
                ELSE {published.ITEMS_JSON}
           END AS items,
           w.external_id AS review, w.title AS review_title, w.starts_at, w.ends_at
    FROM enrollments e
    JOIN assessments a ON a.course_id = e.course_id AND a.external_id = :a
    JOIN published_results pr ON pr.enrollment_id = e.id AND pr.assessment_id = a.id
    LEFT JOIN attempts t ON t.enrollment_id = e.id AND t.assessment_id = a.id
    JOIN LATERAL (
      SELECT r.external_id, r.title, r.starts_at, r.ends_at FROM review_sessions r
      WHERE r.assessment_id = a.id AND r.starts_at <= :now AND r.ends_at > :now AND {INCLUDES}
      ORDER BY r.ends_at DESC, r.id LIMIT 1
    ) w ON TRUE
    WHERE e.id = :e
"""  # noqa: S608  (constant SQL)

# When the next session that includes the learner opens (null: none to come).
_NEXT = f"""
    SELECT min(r.starts_at) FROM enrollments e
    JOIN assessments a ON a.course_id = e.course_id AND a.external_id = :a
    JOIN published_results pr ON pr.enrollment_id = e.id AND pr.assessment_id = a.id
    JOIN review_sessions r ON r.assessment_id = a.id
    WHERE e.id = :e AND r.starts_at > :now AND {INCLUDES}
"""  # noqa: S608  (constant SQL)


# The columns of _REVIEW that say the review's window (ReviewWindow's fields).
_WINDOW = ("review", "review_title", "starts_at", "ends_at")


@dataclass(frozen=True, slots=True)
class ReviewWindow:
    """The open session a learner reviews in."""

    review: str
    title: str | None
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Review:
    """The learner's published result under review (as their results show it: the late policy's deduction and flag
    included), and the session they review it in."""

    assessment: str
    title: str
    category: str
    earned: Decimal | None
    possible: Decimal
    excused: bool
    published_at: datetime
    points_deducted: Decimal | None
    late_status: LateStatus | None
    feedback: str | None
    items: list[dict[str, Any]] | None
    review_session: ReviewWindow


async def open_review(session: AsyncSession, enrollment_id: int, assessment: str, now: datetime) -> Review | None:
    """The learner's review of the assessment open at `now` (None: none open)."""
    row = (await session.execute(text(_REVIEW), {"e": enrollment_id, "a": assessment, "now": now})).mappings().first()
    if row is None:
        return None
    result = {k: v for k, v in row.items() if k not in _WINDOW}
    return Review(**result, review_session=ReviewWindow(*(row[k] for k in _WINDOW)))


async def next_review_opens(
    session: AsyncSession, enrollment_id: int, assessment: str, now: datetime
) -> datetime | None:
    """When the learner's next review session of the assessment opens (None: none to come)."""
    opens: datetime | None = await session.scalar(text(_NEXT), {"e": enrollment_id, "a": assessment, "now": now})
    return opens
