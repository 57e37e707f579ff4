"""The SQL of NRPS: a course's members (learners and staff), one row per user, in user id order."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A user of the course: their enrollment (status None: not a learner) and their staff roles."""

    user_id: str
    enrollment_status: str | None
    staff_roles: list[str] | None
    name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None


# A page is the first `n` user ids after the cursor among the wanted learners and the staff holding a wanted role:
# each side an ordered index scan stopped after `n` users, so a page costs the same at any depth. Its users are
# then described in full (every role, whatever the filter). Ids are compared and ordered in the database's
# collation, the same for the cursor as for the order.
_PAGE = text(
    """
    WITH page AS (
      SELECT user_id FROM (
        (SELECT e.external_id AS user_id FROM enrollments e
         WHERE :learners AND e.course_id = :course AND e.external_id > :after
         ORDER BY e.external_id LIMIT :n)
        UNION
        (SELECT DISTINCT m.user_id FROM course_members m
         WHERE m.course_id = :course AND m.user_id > :after AND m.role = ANY(CAST(:roles AS text[]))
         ORDER BY m.user_id LIMIT :n)
      ) wanted
      ORDER BY user_id LIMIT :n
    )
    SELECT p.user_id, e.status,
           (SELECT array_agg(CAST(m.role AS text) ORDER BY m.role) FROM course_members m
            WHERE m.course_id = :course AND m.user_id = p.user_id),
           coalesce(e.full_name, d.name), e.given_name, e.family_name, e.email
    FROM page p
    LEFT JOIN enrollments e ON e.course_id = :course AND e.external_id = p.user_id
    LEFT JOIN staff d ON d.organization_id = :org AND d.user_id = p.user_id AND e.id IS NULL
    ORDER BY p.user_id
    """
)


async def members_after(
    session: AsyncSession,
    organization_id: int,
    course_id: int,
    after: str,
    *,
    learners: bool,
    staff_roles: list[str],
    limit: int,
) -> list[MemberRow]:
    """Up to `limit` members whose user id sorts after `after`: learners if `learners`, staff holding one of
    `staff_roles`."""
    params = {
        "org": organization_id,
        "course": course_id,
        "after": after,
        "learners": learners,
        "roles": staff_roles,
        "n": limit,
    }
    return [MemberRow(*r) for r in await session.execute(_PAGE, params)]
