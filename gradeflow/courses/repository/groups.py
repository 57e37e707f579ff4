"""SQL of learner groups: their state rows, the groups the enrollments name, and the SQL fragments
other domains' reads use to leave out the learners of archived groups (`service/groups.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def not_archived(course: str, enrollment: str = "e") -> str:
    """SQL: enrollment `enrollment` is shown under the archived-groups rule, for the course whose id
    the SQL expression `course` gives. The archived names are read once per statement (an uncorrelated
    subquery), then each learner's groups are compared to them as arrays."""
    return f"NOT (cardinality({enrollment}.groups) > 0 AND {enrollment}.groups <@ {archived_names(course)})"


def archived_names(course: str) -> str:
    """SQL: the archived group names (text[]) of the course whose id the SQL expression `course` gives,
    read once per statement (an uncorrelated subquery), not once per row."""
    return f"""ARRAY(SELECT CAST(lg.name AS text) FROM learner_groups lg
        WHERE lg.course_id = {course} AND lg.archived_at IS NOT NULL)"""  # noqa: S608 (a placeholder)


# Every group named in the course's enrollments, and every group with a recorded state (an archived
# group whose learners have all left stays listed, so it can be unarchived), by name.
_GROUPS = """
    WITH named AS (
      SELECT x.name, count(DISTINCT e.id) AS learners
      FROM enrollments e CROSS JOIN LATERAL unnest(e.groups) x(name)
      WHERE e.course_id = :c {named}
      GROUP BY x.name
    ), state AS (
      SELECT CAST(name AS text) AS name, archived_at, archived_by FROM learner_groups WHERE course_id = :c {state}
    )
    SELECT coalesce(n.name, s.name) AS name, coalesce(n.learners, 0) AS learners,
           s.archived_at IS NOT NULL AS archived, s.archived_at, s.archived_by
    FROM named n FULL JOIN state s ON s.name = n.name
    WHERE coalesce(n.name, s.name) > :after
    ORDER BY 1 LIMIT :lim
"""


@dataclass(frozen=True, slots=True)
class GroupRow:
    name: str
    learners: int
    archived: bool
    archived_at: datetime | None
    archived_by: str | None


async def groups_of(
    session: AsyncSession, course_id: int, limit: int, after: str = "", name: str | None = None
) -> list[GroupRow]:
    """Up to `limit` of the course's groups by name after `after` (only group `name`, when given)."""
    only = {"named": "", "state": ""} if name is None else {"named": "AND x.name = :n", "state": "AND name = :n"}
    result = await session.execute(
        text(_GROUPS.format(**only)), {"c": course_id, "after": after, "lim": limit, "n": name}
    )
    return [GroupRow(*r) for r in result]


_UPSERT = text(
    """
    INSERT INTO learner_groups (course_id, name, archived_at, archived_by) VALUES (:c, :n, :at, :by)
    ON CONFLICT (course_id, name) DO UPDATE SET
      archived_at = excluded.archived_at, archived_by = excluded.archived_by, updated_at = excluded.updated_at
    WHERE (learner_groups.archived_at IS NULL) <> (excluded.archived_at IS NULL)
    RETURNING id
    """
)


async def set_state(
    session: AsyncSession, course_id: int, name: str, archived_at: datetime | None, archived_by: str | None
) -> bool:
    """Record the group's state; False when it was in that state already (a concurrent change)."""
    written = await session.scalar(_UPSERT, {"c": course_id, "n": name, "at": archived_at, "by": archived_by})
    return written is not None
