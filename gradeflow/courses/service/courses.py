"""Courses and their staff roles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.core.errors import Conflict, Forbidden, NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.commands import CourseCreate, CoursePatch, MemberRoles
from gradeflow.courses.repository import courses as repository
from gradeflow.courses.repository.courses import Role
from gradeflow.db.models import Course


async def create_course(session: AsyncSession, principal: Principal, body: CourseCreate, actor: str) -> Course:
    """Create a course in the caller's organization; its external id must be new there."""
    course = await repository.add_course(session, principal.organization_id, body.model_dump())
    if course is None:
        raise Conflict(f"Course {body.external_id!r} already exists.")
    await audit.record(session, course.organization_id, course.id, actor, "course.created", new=body.model_dump())
    await session.commit()
    return course


async def get_course(session: AsyncSession, ref: CourseRef) -> Course:
    course = await repository.course(session, ref.id)
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
    member = None if principal.is_key else principal.subject
    after = last_id_after(cursor)
    rows = await repository.courses_page(session, principal.organization_id, after, limit + 1, archived, member)
    return page_of(rows, limit, lambda c: c.id)


@dataclass(frozen=True, slots=True)
class Member:
    """A staff user's roles in a course, as the API shows them and the audit trail keeps them."""

    user_id: str
    roles: list[str]
    publish_assessments: list[str] | None  # the publisher role's assessments (None: the whole course)


def _member_of(user_id: str, rows: list[Role]) -> Member:
    scope = next((r.assessments for r in rows if r.role == "publisher"), None)
    return Member(user_id, [r.role for r in rows], scope)


async def _member(session: AsyncSession, ref: CourseRef, user_id: str) -> Member | None:
    """A user's roles in the course, or None when they hold none."""
    rows = await repository.lock_roles_of(session, ref.id, user_id)
    return _member_of(user_id, rows) if rows else None


async def _check_role_change(
    session: AsyncSession, principal: Principal, ref: CourseRef, user_id: str, old: Member | None, new: Member | None
) -> None:
    """Separation of duties: nobody changes their own roles, and the publisher permission (independent
    of grading) is granted, changed or taken away only by admin keys or by members who publish
    themselves - a limited publisher only within their own assessments."""
    if not principal.is_key and principal.subject == user_id:
        raise Forbidden("Nobody can change their own roles in a course.")

    def publishing(member: Member | None) -> tuple[bool, list[str] | None] | None:
        return (True, member.publish_assessments) if member and "publisher" in member.roles else None

    if publishing(old) == publishing(new) or principal.is_admin:
        return
    if principal.is_key:
        raise Forbidden("Only an admin API key or a publisher of the course can change who publishes.")
    mine = await _member(session, ref, principal.subject)
    if publishing(mine) is None:
        raise Forbidden("Only an admin API key or a publisher of the course can change who publishes.")
    if mine is not None and mine.publish_assessments is not None:
        theirs = [p[1] for p in (publishing(old), publishing(new)) if p is not None]
        if any(scope is None or not set(scope) <= set(mine.publish_assessments) for scope in theirs):
            raise Forbidden("A publisher limited to some assessments can only grant publishing within them.")


async def set_member_roles(
    session: AsyncSession, principal: Principal, ref: CourseRef, user_id: str, body: MemberRoles, actor: str
) -> Member:
    """Replace a staff user's roles in the course (the publisher role optionally limited to assessments)."""
    old = await _member(session, ref, user_id)
    unique: list[str] = sorted(set(body.roles))
    scope = sorted(set(body.publish_assessments)) if body.publish_assessments is not None else None
    new = Member(user_id, unique, scope if "publisher" in unique else None)
    await _check_role_change(session, principal, ref, user_id, old, new)
    await repository.remove_roles(session, ref.id, user_id)
    await repository.add_roles(session, ref.id, [Role(user_id, r, scope if r == "publisher" else None) for r in unique])
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
    await repository.remove_roles(session, ref.id, user_id)
    await audit.record(session, ref.organization_id, ref.id, actor, "member.removed", old=old)
    await session.commit()


async def list_members(session: AsyncSession, ref: CourseRef) -> list[Member]:
    """Staff users of the course with their roles."""
    roles: dict[str, list[Role]] = {}
    for r in await repository.roles(session, ref.id):
        roles.setdefault(r.user_id, []).append(r)
    return [_member_of(user_id, rows) for user_id, rows in roles.items()]
