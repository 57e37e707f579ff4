"""Courses and their staff roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Course, CourseMember
from shared.errors import Conflict, NotFound
from shared.services.access import CourseRef
from shared.services.auth import Principal
from shared.services.inputs import CourseCreate, CoursePatch, MemberRoles
from shared.services.paging import Page, last_id_after, page_of


async def create_course(session: AsyncSession, principal: Principal, body: CourseCreate) -> Course:
    """Create a course in the caller's organization; its external id must be new there."""
    stmt = (
        pg_insert(Course)
        .values(organization_id=principal.organization_id, **body.model_dump())
        .on_conflict_do_nothing(index_elements=["organization_id", "external_id"])
        .returning(Course)
    )
    course = (await session.execute(stmt)).scalar_one_or_none()
    if course is None:
        raise Conflict(f"Course {body.external_id!r} already exists.")
    await session.commit()
    return course


async def get_course(session: AsyncSession, ref: CourseRef) -> Course:
    course = await session.get(Course, ref.id)
    if course is None:
        raise NotFound("Course not found.")
    return course


async def update_course(session: AsyncSession, ref: CourseRef, body: CoursePatch) -> Course:
    course = await get_course(session, ref)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(course, field, value)
    await session.commit()
    await session.refresh(course)
    return course


async def list_courses(
    session: AsyncSession, principal: Principal, limit: int, cursor: str | None, archived: bool | None
) -> Page[Course]:
    """Courses of the organization; a user sees only the courses they hold a role in."""
    stmt = (
        select(Course)
        .where(Course.organization_id == principal.organization_id, Course.id > last_id_after(cursor))
        .order_by(Course.id)
        .limit(limit + 1)
    )
    if archived is not None:
        stmt = stmt.where(Course.archived.is_(archived))
    if not principal.is_key:
        member_of = select(CourseMember.course_id).where(CourseMember.user_id == principal.subject)
        stmt = stmt.where(Course.id.in_(member_of))
    rows = list((await session.scalars(stmt)).all())
    return page_of(rows, limit, lambda c: c.id)


async def set_member_roles(session: AsyncSession, ref: CourseRef, user_id: str, body: MemberRoles) -> dict[str, Any]:
    """Replace a staff user's roles in the course (the publisher role optionally limited to assessments)."""
    await session.execute(delete(CourseMember).where(CourseMember.course_id == ref.id, CourseMember.user_id == user_id))
    unique = sorted(set(body.roles))
    scope = sorted(set(body.publish_assessments)) if body.publish_assessments is not None else None
    await session.execute(
        insert(CourseMember),
        [
            {"course_id": ref.id, "user_id": user_id, "role": r, "assessments": scope if r == "publisher" else None}
            for r in unique
        ],
    )
    await session.commit()
    return {"user_id": user_id, "roles": unique, "publish_assessments": scope}


async def remove_member(session: AsyncSession, ref: CourseRef, user_id: str) -> None:
    result = await session.execute(
        delete(CourseMember).where(CourseMember.course_id == ref.id, CourseMember.user_id == user_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"User {user_id!r} has no role in this course.")
    await session.commit()


async def list_members(session: AsyncSession, ref: CourseRef) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(CourseMember.user_id, CourseMember.role, CourseMember.assessments)
        .where(CourseMember.course_id == ref.id)
        .order_by(CourseMember.user_id, CourseMember.role)
    )
    members: dict[str, dict[str, Any]] = {}
    for user_id, role, scope in rows:
        member = members.setdefault(user_id, {"user_id": user_id, "roles": [], "publish_assessments": None})
        member["roles"].append(role)
        if role == "publisher":
            member["publish_assessments"] = scope
    return list(members.values())
