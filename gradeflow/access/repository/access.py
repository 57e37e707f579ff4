"""Courses and course roles as the permission checks read them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# SQL condition: attempt `t` is allocated to one of :scope (a grader's names); true when :scope is null.
IN_SCOPE = (
    "(CAST(:scope AS text[]) IS NULL OR EXISTS (SELECT 1 FROM allocations l"
    " WHERE l.attempt_id = t.id AND l.grader = ANY(CAST(:scope AS text[]))))"
)


@dataclass(frozen=True, slots=True)
class CourseRoles:
    """A course of the organization and the roles the user holds in it (none for an API key)."""

    id: int
    roles: frozenset[str]


_COURSE_ROLES = text(
    """
    SELECT c.id, array_remove(array_agg(m.role), NULL) AS roles
    FROM courses c
    LEFT JOIN course_members m ON m.course_id = c.id AND m.user_id = :user
    WHERE c.organization_id = :org AND c.external_id = :ext
    GROUP BY c.id
    """
)


async def course_roles(
    session: AsyncSession, organization_id: int, course_external_id: str, user: str | None
) -> CourseRoles | None:
    """The organization's course with this external id and `user`'s roles in it (None: no such course)."""
    row = (
        await session.execute(_COURSE_ROLES, {"org": organization_id, "ext": course_external_id, "user": user})
    ).first()
    return None if row is None else CourseRoles(row.id, frozenset(row.roles))


async def publisher_assessments(session: AsyncSession, course_id: int, user: str) -> list[list[str] | None]:
    """Each publisher membership of the user in the course: the assessments it is limited to (None: all)."""
    rows = (
        await session.execute(
            text("SELECT assessments FROM course_members WHERE course_id = :c AND user_id = :u AND role = 'publisher'"),
            {"c": course_id, "u": user},
        )
    ).all()
    return [None if r[0] is None else list(r[0]) for r in rows]
