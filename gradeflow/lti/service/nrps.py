"""Names and Role Provisioning Services 2.0: a course's roster as LTI context memberships.

Learners are the course's enrollments (`user_id` = the LMS's user id): Active while enrolled, Inactive once
unenrolled. Staff are the course's members with their roles as LIS context roles (Active), each sub-role with its
principal role as LTI 1.3 asks:

    planner    http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor
    grader     .../membership/Instructor#TeachingAssistant and .../membership#Instructor
    moderator  .../membership/Instructor#Grader and .../membership#Instructor
    publisher  .../membership#Manager
    viewer     .../membership#Mentor

A user who is both is one member with every role. `Deleted` is never reported: it belongs to the differences
service, which is not offered. The `role` filter takes a full URI or a short name (`Learner`, `Instructor`,
`Instructor#TeachingAssistant`), in any letter case (some clients lower-case the next-page URL); an unknown role
matches no one. The cursor is the last user id of the page as lowercase hex, so it survives lower-casing too."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.errors import ValidationFailed
from gradeflow.core.validation import clean_text
from gradeflow.lti.repository import nrps as repository
from gradeflow.lti.repository.nrps import MemberRow
from gradeflow.lti.repository.tools import LtiCourse

_LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
LEARNER = f"{_LIS}#Learner"
INSTRUCTOR = f"{_LIS}#Instructor"
STAFF_ROLES: dict[str, tuple[str, ...]] = {
    "planner": (INSTRUCTOR,),
    "grader": (f"{_LIS}/Instructor#TeachingAssistant", INSTRUCTOR),
    "moderator": (f"{_LIS}/Instructor#Grader", INSTRUCTOR),
    "publisher": (f"{_LIS}#Manager",),
    "viewer": (f"{_LIS}#Mentor",),
}
_STATUS = {"enrolled": "Active", "unenrolled": "Inactive"}


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    roles: list[str]
    status: str
    name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class Memberships:
    context: LtiCourse
    members: list[Member]
    next_cursor: str | None


def _full_uri(role: str) -> str:
    """A role as a full URI: a short name `X` is membership#X, `X#Y` is the sub-role membership/X#Y."""
    if "://" in role or role.startswith("urn:"):
        return role
    principal, _, sub = role.partition("#")
    return f"{_LIS}/{principal}#{sub}" if sub else f"{_LIS}#{principal}"


def role_filter(role: str | None) -> tuple[bool, list[str]]:
    """Whether learners are wanted, and which staff roles, for a `role` filter (None: everyone)."""
    if role is None:
        return True, list(STAFF_ROLES)
    wanted = _full_uri(role.strip()).lower()
    staff = [r for r, uris in STAFF_ROLES.items() if wanted in (u.lower() for u in uris)]
    return wanted == LEARNER.lower(), staff


def _after(cursor: str | None) -> str:
    if cursor is None:
        return ""
    try:
        after: str = clean_text(bytes.fromhex(cursor).decode("utf-8"))
    except ValueError as exc:
        raise ValidationFailed.one("cursor", "Not a cursor this API issued.", "query") from exc
    return after


def _member(row: MemberRow) -> Member:
    roles = [LEARNER] if row.enrollment_status is not None else []
    for staff_role in row.staff_roles or []:
        roles += [uri for uri in STAFF_ROLES.get(staff_role, ()) if uri not in roles]
    active = bool(row.staff_roles) or row.enrollment_status == "enrolled"
    status = "Active" if active else _STATUS.get(row.enrollment_status or "", "Inactive")
    return Member(row.user_id, roles, status, row.name, row.given_name, row.family_name, row.email)


async def memberships(
    session: AsyncSession, course: LtiCourse, organization_id: int, role: str | None, limit: int, cursor: str | None
) -> Memberships:
    """One page of the course's members in user id order, from after the cursor."""
    learners, staff = role_filter(role)
    after = _after(cursor)
    rows: list[MemberRow] = []
    if learners or staff:
        rows = await repository.members_after(
            session, organization_id, course.id, after, learners=learners, staff_roles=staff, limit=limit + 1
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = rows[-1].user_id.encode("utf-8").hex() if more else None
    return Memberships(course, [_member(r) for r in rows], next_cursor)
