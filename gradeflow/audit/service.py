"""The audit trail: every change appended in the transaction that makes it; read by course."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.access.identity import CourseRef
from gradeflow.audit import repository
from gradeflow.audit.repository import COLUMNS, Entry, Filters, NewEntry, Scope, stamp
from gradeflow.core import csv_cells, jsonutil
from gradeflow.core.paging import Page, last_id_after, page_of

# COLUMNS and stamp live in the repository (set-based inserts of other domains' repositories take them from there);
# the names stay here for the use cases that still build such inserts.
__all__ = [
    "COLUMNS",
    "Entry",
    "Filters",
    "Scope",
    "course_scope",
    "export_csv",
    "list_entries",
    "record",
    "record_many",
    "stamp",
]

_CSV_CHUNK = 5000


def course_scope(ref: CourseRef) -> Scope:
    """A course's entries."""
    return Scope(ref.organization_id, ref.id)


async def record(
    session: AsyncSession,
    organization_id: int,
    course_id: int | None,
    actor: str,
    action: str,
    *,
    learner: str | None = None,
    assessment: str | None = None,
    item: str | None = None,
    old: Any = None,
    new: Any = None,
) -> None:
    """Append one entry in the caller's transaction (it commits or rolls back with the change)."""
    entry = {"action": action, "learner": learner, "assessment": assessment, "item": item, "old": old, "new": new}
    await record_many(session, organization_id, course_id, actor, [entry])


async def record_many(
    session: AsyncSession, organization_id: int, course_id: int | None, actor: str, entries: list[dict[str, Any]]
) -> None:
    """Append entries (action, learner, assessment, item, old, new) in one batched statement."""
    if not entries:
        return
    await repository.append(
        session,
        stamp(organization_id, course_id, actor),
        [
            NewEntry(
                action=e["action"],
                learner=e.get("learner"),
                assessment=e.get("assessment"),
                item=e.get("item"),
                old=None if e.get("old") is None else jsonutil.dumps(e["old"]),
                new=None if e.get("new") is None else jsonutil.dumps(e["new"]),
            )
            for e in entries
        ],
    )


async def list_entries(
    session: AsyncSession, scope: Scope, limit: int, cursor: str | None, filters: Filters
) -> Page[Entry]:
    """The scope's entries, oldest first (the order they happened in), filtered."""
    rows = await repository.entries_after(session, scope, filters, last_id_after(cursor), limit + 1)
    return page_of(rows, limit, lambda r: r.id)


async def export_csv(
    sessionmaker: async_sessionmaker[AsyncSession], scope: Scope, filters: Filters
) -> AsyncIterator[str]:
    """The same entries as CSV, streamed in chunks (memory does not grow with the log). It opens its
    own session: the body is sent after the request's session has closed."""
    after = 0
    writer = csv_cells.Writer()
    writer.row(repository.ENTRY_COLUMNS.split(", "))
    while True:
        async with sessionmaker() as session:
            rows = await repository.entries_after(session, scope, filters, after, _CSV_CHUNK)
        for r in rows:
            writer.row(
                [
                    r.id,
                    r.at,
                    r.actor,
                    r.request_id,
                    r.action,
                    r.learner,
                    r.assessment,
                    r.item,
                    None if r.old is None else jsonutil.dumps(r.old),
                    None if r.new is None else jsonutil.dumps(r.new),
                    r.import_id,
                ]
            )
        yield writer.take()
        if len(rows) < _CSV_CHUNK:
            return
        after = rows[-1].id
