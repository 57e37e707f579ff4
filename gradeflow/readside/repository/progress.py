"""A learner's progress' SQL: who the learner is in the course, the served policy version, their own due
dates, and the results published to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.deadlines.repository import due_dates


async def course_id(session: AsyncSession, organization_id: int, course: str) -> int | None:
    found = await session.scalar(
        text("SELECT id FROM courses WHERE organization_id = :o AND external_id = :c"),
        {"o": organization_id, "c": course},
    )
    return None if found is None else int(found)


async def enrollment_id(session: AsyncSession, course_id: int | None, learner: str) -> int | None:
    found = await session.scalar(
        text("SELECT id FROM enrollments WHERE course_id = :c AND external_id = :l"), {"c": course_id, "l": learner}
    )
    return None if found is None else int(found)


async def served_version(session: AsyncSession, course_id: int) -> int | None:
    """The policy version whose grades the course serves (None: no policy yet)."""
    version = await session.scalar(text("SELECT grades_version FROM courses WHERE id = :c"), {"c": course_id})
    return None if version is None else int(version)


@dataclass(frozen=True, slots=True)
class OwnDates:
    due_at: datetime | None
    allowed_attempts: int


# The learner's own due date and attempts per assessment (deadlines/repository/due_dates.py).
_OWN_DATES = f"""
    SELECT a.external_id, {due_dates.due_at()} AS due_at, {due_dates.allowed_attempts()} AS allowed
    FROM assessments a {due_dates.overrides_join("a.id", ":e")}
    WHERE a.course_id = :c
"""  # noqa: S608 (constant SQL)


async def own_dates(session: AsyncSession, course_id: int, enrollment_id: int) -> dict[str, OwnDates]:
    """The learner's own due date and allowed attempts, by assessment."""
    rows = await session.execute(text(_OWN_DATES), {"c": course_id, "e": enrollment_id})
    return {r.external_id: OwnDates(r.due_at, int(r.allowed)) for r in rows}


@dataclass(frozen=True, slots=True)
class PublishedScore:
    assessment: str  # its external id
    earned: float | None
    possible: float
    excused: bool


async def published_scores(session: AsyncSession, enrollment_id: int) -> list[PublishedScore]:
    """The learner's results as published to them."""
    rows = await session.execute(
        text(
            """
            SELECT a.external_id, CAST(pr.earned AS float8), CAST(pr.possible AS float8), pr.excused
            FROM published_results pr JOIN assessments a ON a.id = pr.assessment_id
            WHERE pr.enrollment_id = :e
            """
        ),
        {"e": enrollment_id},
    )
    return [PublishedScore(*r) for r in rows]
