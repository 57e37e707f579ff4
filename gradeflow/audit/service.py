"""The audit trail: every change appended in the transaction that makes it; read by course."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow.core import clock, context, csv_cells, jsonutil
from gradeflow.core.paging import Page, last_id_after, page_of

if TYPE_CHECKING:  # access imports auth, which records through this module
    from gradeflow.access.service.access import CourseRef

# The columns a set-based statement fills (from `stamp`'s parameters: :org, :course, :at, :actor, :rid).
COLUMNS = "organization_id, course_id, at, actor, request_id, action, learner, assessment, item, old, new"

_INSERT = text(
    """
    INSERT INTO audit_log (organization_id, course_id, at, actor, request_id, action, learner, assessment, item,
                           old, new, import_id)
    VALUES (:org, :course, :at, :actor, :rid, :action, :learner, :assessment, :item,
            CAST(:old AS jsonb), CAST(:new AS jsonb), :import_id)
    """
)


def stamp(organization_id: int, course_id: int | None, actor: str) -> dict[str, Any]:
    """The parameters every entry of one change shares (for set-based inserts too)."""
    return {
        "org": organization_id,
        "course": course_id,
        "actor": actor,
        "rid": context.request_id.get(),
        "at": clock.now(),
        "import_id": context.import_id.get(),
    }


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
    shared = stamp(organization_id, course_id, actor)
    await session.execute(
        _INSERT,
        [
            {
                **shared,
                "action": e["action"],
                "learner": e.get("learner"),
                "assessment": e.get("assessment"),
                "item": e.get("item"),
                "old": None if e.get("old") is None else jsonutil.dumps(e["old"]),
                "new": None if e.get("new") is None else jsonutil.dumps(e["new"]),
            }
            for e in entries
        ],
    )


def _filters(
    learner: str | None,
    assessment: str | None,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for name, value in (("learner", learner), ("assessment", assessment), ("actor", actor), ("action", action)):
        if value is not None:
            clauses.append(f"{name} = :{name}")
            params[name] = value
    if since is not None:
        clauses.append("at >= :since")
        params["since"] = since
    if until is not None:
        clauses.append("at < :until")
        params["until"] = until
    return "".join(f" AND {c}" for c in clauses), params


_COLUMNS = "id, at, actor, request_id, action, learner, assessment, item, old, new, import_id"


@dataclass(frozen=True)
class Scope:
    """Whose entries: one course's, or an organization's own (API keys, token keys, webhooks: no course)."""

    organization_id: int
    course_id: int | None

    @classmethod
    def of(cls, ref: CourseRef) -> Scope:
        return cls(ref.organization_id, ref.id)

    @property
    def where(self) -> str:
        if self.course_id is None:
            return "organization_id = :o AND course_id IS NULL"
        return "course_id = :c"

    @property
    def params(self) -> dict[str, Any]:
        return {"o": self.organization_id} if self.course_id is None else {"c": self.course_id}


def _page_query(scope: Scope, where: str) -> Any:
    """Entries of a scope after an id, filtered; `where` is built only from constant clauses."""
    sql = f"SELECT {_COLUMNS} FROM audit_log WHERE {scope.where} AND id > :after{where} ORDER BY id LIMIT :lim"  # noqa: S608
    return text(sql)


async def list_entries(
    session: AsyncSession,
    scope: Scope,
    limit: int,
    cursor: str | None,
    *,
    learner: str | None = None,
    assessment: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[dict[str, Any]]:
    """The scope's entries, oldest first (the order they happened in), filtered."""
    where, params = _filters(learner, assessment, actor, action, since, until)
    rows = (
        (
            await session.execute(
                _page_query(scope, where),
                {**scope.params, "after": last_id_after(cursor), "lim": limit + 1, **params},
            )
        )
        .mappings()
        .all()
    )
    return page_of([dict(r) for r in rows], limit, lambda r: r["id"])


async def export_csv(
    sessionmaker: async_sessionmaker[AsyncSession], scope: Scope, **filters: Any
) -> AsyncIterator[str]:
    """The same entries as CSV, streamed in chunks (memory does not grow with the log). It opens its
    own session: the body is sent after the request's session has closed."""
    where, params = _filters(**filters)
    header = _COLUMNS.split(", ")
    after = 0
    writer = csv_cells.Writer()
    writer.row(header)
    while True:
        async with sessionmaker() as session:
            rows = (
                await session.execute(
                    _page_query(scope, where),
                    {**scope.params, "after": after, "lim": 5000, **params},
                )
            ).all()
        for r in rows:
            values = [*r[:8], *(None if v is None else jsonutil.dumps(v) for v in r[8:10]), r[10]]
            writer.row(values)
        yield writer.take()
        if len(rows) < 5000:
            return
        after = rows[-1][0]
