"""Courses and their staff."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Query, Response, status

from gradeflow.access.service.access import require_key
from gradeflow.core.commands import ExternalId
from gradeflow.courses.commands import CourseCreate, CoursePatch, MemberRoles
from gradeflow.courses.schemas.records import CourseOut, MemberOut
from gradeflow.courses.service import courses
from gradeflow.http.deps import (
    CourseRead,
    CourseWrite,
    Cursor,
    Limit,
    MemberRead,
    MemberWrite,
    PrincipalDep,
    SessionDep,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses", tags=["courses"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_course(
    session: SessionDep, principal: PrincipalDep, body: CourseCreate, response: Response
) -> CourseOut:
    """Create a course (API keys). Its external id must be new in the organization."""
    require_key(principal)
    course = await courses.create_course(session, principal, body, actor(principal))
    response.headers["Location"] = f"/v1/courses/{quote(course.external_id, safe='')}"
    return CourseOut.model_validate(course)


@router.get("")
async def list_courses(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    cursor: Cursor = None,
    archived: bool | None = Query(default=None),
) -> PageOut[CourseOut]:
    """Courses of the organization (for a user: the courses they have a role in)."""
    page = await courses.list_courses(session, principal, limit, cursor, archived)
    return PageOut(items=[CourseOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/{course}")
async def get_course(session: SessionDep, ref: CourseRead) -> CourseOut:
    """One course."""
    return CourseOut.model_validate(await courses.get_course(session, ref))


@router.patch("/{course}")
async def update_course(session: SessionDep, principal: PrincipalDep, ref: CourseWrite, body: CoursePatch) -> CourseOut:
    """Rename or archive a course (audited: `course.updated`)."""
    return CourseOut.model_validate(await courses.update_course(session, ref, body, actor(principal)))


@router.get("/{course}/members")
async def list_members(session: SessionDep, ref: MemberRead) -> list[MemberOut]:
    """Staff users of the course with their roles."""
    return [MemberOut.model_validate(m) for m in await courses.list_members(session, ref)]


@router.put("/{course}/members/{user}")
async def put_member(
    session: SessionDep, principal: PrincipalDep, ref: MemberWrite, user: ExternalId, body: MemberRoles
) -> MemberOut:
    """Give a user exactly these roles in the course: planner, grader, publisher, viewer. The
    publisher role can be limited to some assessments (`publish_assessments`). Nobody changes their
    own roles; who publishes is changed only by admin keys and by planners who publish themselves
    (a limited publisher within their own assessments). Audited (`member.roles_changed`)."""
    member = await courses.set_member_roles(session, principal, ref, user, body, actor(principal))
    return MemberOut.model_validate(member)


@router.delete("/{course}/members/{user}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_member(session: SessionDep, principal: PrincipalDep, ref: MemberWrite, user: ExternalId) -> None:
    """Remove all of a user's roles in the course (the same rules as changing them; audited as
    `member.removed`)."""
    await courses.remove_member(session, principal, ref, user, actor(principal))
