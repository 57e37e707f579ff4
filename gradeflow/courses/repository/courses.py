"""SQL of courses and their staff roles (ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.models import Course, CourseMember


@dataclass(frozen=True, slots=True)
class Role:
    user_id: str
    role: str
    assessments: list[str] | None  # a publisher's scope (None: every assessment)


async def add_course(session: AsyncSession, organization_id: int, fields: dict[str, Any]) -> Course | None:
    """The new course, or None when the organization has one with its external id already."""
    stmt = (
        pg_insert(Course)
        .values(organization_id=organization_id, **fields)
        .on_conflict_do_nothing(index_elements=["organization_id", "external_id"])
        .returning(Course)
    )
    course: Course | None = (await session.execute(stmt)).scalar_one_or_none()
    return course


async def course(session: AsyncSession, course_id: int) -> Course | None:
    return await session.get(Course, course_id)


async def courses_page(
    session: AsyncSession, organization_id: int, after: int, limit: int, archived: bool | None, member: str | None
) -> list[Course]:
    """Up to `limit` courses of the organization after id `after` (archived or not, when given; only
    those `member` holds a role in, when given)."""
    stmt = (
        select(Course)
        .where(Course.organization_id == organization_id, Course.id > after)
        .order_by(Course.id)
        .limit(limit)
    )
    if archived is not None:
        stmt = stmt.where(Course.archived.is_(archived))
    if member is not None:
        member_of = select(CourseMember.course_id).where(CourseMember.user_id == member)
        stmt = stmt.where(Course.id.in_(member_of))
    return list((await session.scalars(stmt)).all())


async def lock_roles_of(session: AsyncSession, course_id: int, user_id: str) -> list[Role]:
    """A user's roles in the course (by role), locked against a concurrent change."""
    rows = (
        await session.execute(
            select(CourseMember.role, CourseMember.assessments)
            .where(CourseMember.course_id == course_id, CourseMember.user_id == user_id)
            .order_by(CourseMember.role)
            .with_for_update()
        )
    ).all()
    return [Role(user_id, r, a) for r, a in rows]


async def remove_roles(session: AsyncSession, course_id: int, user_id: str) -> None:
    await session.execute(
        delete(CourseMember).where(CourseMember.course_id == course_id, CourseMember.user_id == user_id)
    )


async def add_roles(session: AsyncSession, course_id: int, roles: list[Role]) -> None:
    await session.execute(
        insert(CourseMember),
        [{"course_id": course_id, "user_id": r.user_id, "role": r.role, "assessments": r.assessments} for r in roles],
    )


async def roles(session: AsyncSession, course_id: int) -> list[Role]:
    """Every role in the course, by user and role."""
    rows = await session.execute(
        select(CourseMember.user_id, CourseMember.role, CourseMember.assessments)
        .where(CourseMember.course_id == course_id)
        .order_by(CourseMember.user_id, CourseMember.role)
    )
    return [Role(u, r, a) for u, r, a in rows]
