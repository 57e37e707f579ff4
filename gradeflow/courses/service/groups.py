"""Learner groups: the names enrollments carry in `groups`, and which of them are archived.

A group exists as soon as an enrollment names it; the learner_groups row only records its state. An
archived group is a class of a past term that planners no longer want to see: its learners are left
out of the results table, the dashboard and the reports unless a request asks to include archived
groups. A learner is hidden only when every group they are in is archived (a learner in no group, or
in one live group, is always shown), so archiving a group never hides someone who still belongs to a
current one. Archiving and unarchiving are audited (`group.archived` / `group.unarchived`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import Page, decode_cursor, not_ours, page_of


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


async def list_groups(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[dict[str, Any]]:
    """The course's groups by name, each with its number of learners and whether it is archived."""
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise not_ours()
    return page_of(await _rows(session, ref.id, limit + 1, after=after or ""), limit, lambda r: r["name"])


async def _rows(
    session: AsyncSession, course_id: int, limit: int, after: str = "", name: str | None = None
) -> list[dict[str, Any]]:
    only = {"named": "", "state": ""} if name is None else {"named": "AND x.name = :n", "state": "AND name = :n"}
    result = await session.execute(
        text(_GROUPS.format(**only)), {"c": course_id, "after": after, "lim": limit, "n": name}
    )
    return [dict(r) for r in result.mappings()]


_UPSERT = text(
    """
    INSERT INTO learner_groups (course_id, name, archived_at, archived_by) VALUES (:c, :n, :at, :by)
    ON CONFLICT (course_id, name) DO UPDATE SET
      archived_at = excluded.archived_at, archived_by = excluded.archived_by, updated_at = excluded.updated_at
    WHERE (learner_groups.archived_at IS NULL) <> (excluded.archived_at IS NULL)
    RETURNING id
    """
)


async def set_archived(session: AsyncSession, ref: CourseRef, name: str, archived: bool, actor: str) -> dict[str, Any]:
    """Archive a group or bring it back (idempotent: the same state again changes and records
    nothing). A group that no enrollment names and that has no state is 404: a misspelt name must not
    quietly create a group."""
    found = await _rows(session, ref.id, 1, name=name)
    if not found:
        raise NotFound(f"Nobody in the course is in group {name!r}.")
    if found[0]["archived"] == archived:
        return found[0]
    at = clock.now() if archived else None
    written = await session.scalar(_UPSERT, {"c": ref.id, "n": name, "at": at, "by": actor if archived else None})
    if written is not None:  # else a concurrent request made the same change (and recorded it)
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "group.archived" if archived else "group.unarchived",
            old={"group": name, "archived": found[0]["archived"]},
            new={"group": name, "archived": archived, "learners": found[0]["learners"]},
        )
    await session.commit()
    return (await _rows(session, ref.id, 1, name=name))[0]
