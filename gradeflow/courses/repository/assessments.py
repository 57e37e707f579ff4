"""SQL of assessments and their items (ORM rows)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.models import Assessment, Item


async def assessment_id(session: AsyncSession, course_id: int, external_id: str) -> int | None:
    found: int | None = await session.scalar(
        select(Assessment.id).where(Assessment.course_id == course_id, Assessment.external_id == external_id)
    )
    return found


async def last_position(session: AsyncSession, course_id: int) -> int | None:
    """The highest position of the course's assessments (None without any)."""
    last: int | None = await session.scalar(
        select(func.max(Assessment.position)).where(Assessment.course_id == course_id)
    )
    return last


async def add_assessment(session: AsyncSession, assessment: Assessment) -> None:
    """Insert it (flushed: it has its id)."""
    session.add(assessment)
    await session.flush()


def add_items(session: AsyncSession, items: Iterable[Item]) -> None:
    """Insert them with the session's next flush."""
    session.add_all(items)


# Whether following initial-test links from :start reaches :final (linking :final to :start would loop).
_LOOP = """
    WITH RECURSIVE chain(id) AS (
      SELECT CAST(:start AS bigint)
      UNION SELECT a.initial_assessment_id FROM assessments a JOIN chain c ON a.id = c.id
      WHERE a.initial_assessment_id IS NOT NULL
    )
    SELECT EXISTS (SELECT 1 FROM chain WHERE id = :final)
"""


async def leads_to(session: AsyncSession, start: int, final: int) -> bool:
    """Whether following initial-test links from assessment `start` reaches `final`."""
    return bool(await session.scalar(text(_LOOP), {"start": start, "final": final}))


async def external_ids(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """The external ids of these assessments, by id."""
    rows = await session.execute(select(Assessment.id, Assessment.external_id).where(Assessment.id.in_(ids)))
    return {r.id: r.external_id for r in rows}


async def assessment(session: AsyncSession, course_id: int, external_id: str) -> Assessment | None:
    found: Assessment | None = await session.scalar(
        select(Assessment).where(Assessment.course_id == course_id, Assessment.external_id == external_id)
    )
    return found


async def items_of(session: AsyncSession, assessment_id: int) -> list[Item]:
    """The assessment's items in order."""
    return list(await session.scalars(select(Item).where(Item.assessment_id == assessment_id).order_by(Item.position)))


async def assessments_page(
    session: AsyncSession, course_id: int, after: tuple[int, int] | None, limit: int
) -> list[Assessment]:
    """Up to `limit` of the course's assessments in course order (position, then id), after `after`."""
    stmt = select(Assessment).where(Assessment.course_id == course_id)
    if after is not None:
        stmt = stmt.where(func.row(Assessment.position, Assessment.id) > func.row(*after))
    return list(await session.scalars(stmt.order_by(Assessment.position, Assessment.id).limit(limit)))


async def items_of_many(session: AsyncSession, assessment_ids: list[int]) -> list[Item]:
    """The items of these assessments, by assessment and position."""
    return list(
        await session.scalars(
            select(Item).where(Item.assessment_id.in_(assessment_ids)).order_by(Item.assessment_id, Item.position)
        )
    )
