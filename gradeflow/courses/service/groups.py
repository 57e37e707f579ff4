"""Learner groups: the names enrollments carry in `groups`, and which of them are archived.

A group exists as soon as an enrollment names it; the learner_groups row only records its state. An
archived group is a class of a past term that planners no longer want to see: its learners are left
out of the results table, the dashboard and the reports unless a request asks to include archived
groups. A learner is hidden only when every group they are in is archived (a learner in no group, or
in one live group, is always shown), so archiving a group never hides someone who still belongs to a
current one. Archiving and unarchiving are audited (`group.archived` / `group.unarchived`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import NotFound
from gradeflow.core.paging import Page, decode_cursor, not_ours, page_of
from gradeflow.courses.repository import groups as repository
from gradeflow.courses.repository.groups import GroupRow


async def list_groups(session: AsyncSession, ref: CourseRef, limit: int, cursor: str | None) -> Page[GroupRow]:
    """The course's groups by name, each with its number of learners and whether it is archived."""
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise not_ours()
    rows = await repository.groups_of(session, ref.id, limit + 1, after=after or "")
    return page_of(rows, limit, lambda r: r.name)


async def set_archived(session: AsyncSession, ref: CourseRef, name: str, archived: bool, actor: str) -> GroupRow:
    """Archive a group or bring it back (idempotent: the same state again changes and records
    nothing). A group that no enrollment names and that has no state is 404: a misspelt name must not
    quietly create a group."""
    found = await repository.groups_of(session, ref.id, 1, name=name)
    if not found:
        raise NotFound(f"Nobody in the course is in group {name!r}.")
    if found[0].archived == archived:
        return found[0]
    at = clock.now() if archived else None
    if await repository.set_state(session, ref.id, name, at, actor if archived else None):
        # else a concurrent request made the same change (and recorded it)
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "group.archived" if archived else "group.unarchived",
            old={"group": name, "archived": found[0].archived},
            new={"group": name, "archived": archived, "learners": found[0].learners},
        )
    await session.commit()
    return (await repository.groups_of(session, ref.id, 1, name=name))[0]
