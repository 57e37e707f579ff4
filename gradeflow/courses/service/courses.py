"""Courses and their staff roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core.errors import Conflict, Forbidden, NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.commands import CourseCreate, CoursePatch, MemberRoles
from gradeflow.db.models import Course, CourseMember


async def create_course(session: AsyncSession, principal: Principal, body: CourseCreate, actor: str) -> Course:
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
    await audit.record(session, course.organization_id, course.id, actor, "course.created", new=body.model_dump())
    await session.commit()
    return course


async def get_course(session: AsyncSession, ref: CourseRef) -> Course:
    course = await session.get(Course, ref.id)
    if course is None:
        raise NotFound("Course not found.")
    return course


async def update_course(session: AsyncSession, ref: CourseRef, body: CoursePatch, actor: str) -> Course:
    course = await get_course(session, ref)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    old = {field: getattr(course, field) for field in changes}
    for field, value in changes.items():
        setattr(course, field, value)
    if old != changes:
        await audit.record(session, ref.organization_id, ref.id, actor, "course.updated", old=old, new=changes)
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


async def _member(session: AsyncSession, ref: CourseRef, user_id: str) -> dict[str, Any] | None:
    """A user's roles in the course as the API shows them, or None when they hold none."""
    rows = (
        await session.execute(
            select(CourseMember.role, CourseMember.assessments)
            .where(CourseMember.course_id == ref.id, CourseMember.user_id == user_id)
            .order_by(CourseMember.role)
            .with_for_update()
        )
    ).all()
    if not rows:
        return None
    scope = next((a for r, a in rows if r == "publisher"), None)
    return {"user_id": user_id, "roles": [r for r, _ in rows], "publish_assessments": scope}


async def _check_role_change(
    session: AsyncSession, principal: Principal, ref: CourseRef, user_id: str, old: Any, new: Any
) -> None:
    """Separation of duties: nobody changes their own roles, and the publisher permission (independent
    of grading) is granted, changed or taken away only by admin keys or by members who publish
    themselves - a limited publisher only within their own assessments."""
    if not principal.is_key and principal.subject == user_id:
        raise Forbidden("Nobody can change their own roles in a course.")

    def publishing(member: Any) -> Any:
        return (True, member["publish_assessments"]) if member and "publisher" in member["roles"] else None

    if publishing(old) == publishing(new) or principal.is_admin:
        return
    if principal.is_key:
        raise Forbidden("Only an admin API key or a publisher of the course can change who publishes.")
    mine = await _member(session, ref, principal.subject)
    if publishing(mine) is None:
        raise Forbidden("Only an admin API key or a publisher of the course can change who publishes.")
    if mine is not None and mine["publish_assessments"] is not None:
        theirs = [m["publish_assessments"] for m in (old, new) if publishing(m) is not None]
        if any(scope is None or not set(scope) <= set(mine["publish_assessments"]) for scope in theirs):
            raise Forbidden("A publisher limited to some assessments can only grant publishing within them.")


async def set_member_roles(
    session: AsyncSession, principal: Principal, ref: CourseRef, user_id: str, body: MemberRoles, actor: str
) -> dict[str, Any]:
    """Replace a staff user's roles in the course (the publisher role optionally limited to assessments)."""
    old = await _member(session, ref, user_id)
    unique = sorted(set(body.roles))
    scope = sorted(set(body.publish_assessments)) if body.publish_assessments is not None else None
    new = {"user_id": user_id, "roles": unique, "publish_assessments": scope if "publisher" in unique else None}
    await _check_role_change(session, principal, ref, user_id, old, new)
    await session.execute(delete(CourseMember).where(CourseMember.course_id == ref.id, CourseMember.user_id == user_id))
    await session.execute(
        insert(CourseMember),
        [
            {"course_id": ref.id, "user_id": user_id, "role": r, "assessments": scope if r == "publisher" else None}
            for r in unique
        ],
    )
    if old != new:
        await audit.record(session, ref.organization_id, ref.id, actor, "member.roles_changed", old=old, new=new)
    await session.commit()
    return new


async def remove_member(session: AsyncSession, principal: Principal, ref: CourseRef, user_id: str, actor: str) -> None:
    """Take every role of a user in the course away (the same rules as changing them)."""
    old = await _member(session, ref, user_id)
    if old is None:
        raise NotFound(f"User {user_id!r} has no role in this course.")
    await _check_role_change(session, principal, ref, user_id, old, None)
    await session.execute(delete(CourseMember).where(CourseMember.course_id == ref.id, CourseMember.user_id == user_id))
    await audit.record(session, ref.organization_id, ref.id, actor, "member.removed", old=old)
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
