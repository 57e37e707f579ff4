"""The audit log's SQL: appending entries in the caller's transaction, and reading a scope's entries in pages.

Other domains' repositories that append entries set-based (`INSERT INTO audit_log (COLUMNS) SELECT ...`) take the
column list and the shared parameters (`stamp`) from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import clock, context

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

# What a reader gets of an entry, in this order (the CSV's header too).
ENTRY_COLUMNS = "id, at, actor, request_id, action, learner, assessment, item, old, new, import_id"


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


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One entry to append (its old and new value already JSON text, or None)."""

    action: str
    learner: str | None
    assessment: str | None
    item: str | None
    old: str | None
    new: str | None


async def append(session: AsyncSession, shared: dict[str, Any], entries: list[NewEntry]) -> None:
    """Append entries that share `stamp`'s parameters, in one batched statement (flushed, not committed)."""
    await session.execute(
        _INSERT,
        [
            {
                **shared,
                "action": e.action,
                "learner": e.learner,
                "assessment": e.assessment,
                "item": e.item,
                "old": e.old,
                "new": e.new,
            }
            for e in entries
        ],
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry as readers see it."""

    id: int
    at: datetime
    actor: str
    request_id: str | None
    action: str
    learner: str | None
    assessment: str | None
    item: str | None
    old: Any
    new: Any
    import_id: int | None


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose entries: one course's, or an organization's own (API keys, token keys, webhooks: no course)."""

    organization_id: int
    course_id: int | None

    @property
    def where(self) -> str:
        if self.course_id is None:
            return "organization_id = :o AND course_id IS NULL"
        return "course_id = :c"

    @property
    def params(self) -> dict[str, Any]:
        return {"o": self.organization_id} if self.course_id is None else {"c": self.course_id}


@dataclass(frozen=True, slots=True)
class Filters:
    """Which entries: by learner, assessment, actor, action, and time range [since, until)."""

    learner: str | None = None
    assessment: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        """The filters as `AND ...` clauses (constant text only) and their parameters."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for name in ("learner", "assessment", "actor", "action"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = :{name}")
                params[name] = value
        if self.since is not None:
            clauses.append("at >= :since")
            params["since"] = self.since
        if self.until is not None:
            clauses.append("at < :until")
            params["until"] = self.until
        return "".join(f" AND {c}" for c in clauses), params


async def entries_after(session: AsyncSession, scope: Scope, filters: Filters, after: int, limit: int) -> list[Entry]:
    """Up to `limit` of the scope's entries with an id above `after`, oldest first, filtered."""
    where, params = filters.sql()
    sql = f"SELECT {ENTRY_COLUMNS} FROM audit_log WHERE {scope.where} AND id > :after{where} ORDER BY id LIMIT :lim"  # noqa: S608
    rows = await session.execute(text(sql), {**scope.params, "after": after, "lim": limit, **params})
    return [Entry(*r) for r in rows]
