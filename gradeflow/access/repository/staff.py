"""The staff directory's rows (the `staff` table) and whether a user is staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class StaffEntry:
    """An entry of the directory as stored."""

    id: int
    user_id: str
    username: str | None
    name: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StaffLookup:
    """The user's entry (`listed`: there is one) and whether they are staff (a member of a course of the
    organization)."""

    listed: bool
    username: str | None
    name: str | None
    staff: bool


# The cheap check: two index lookups, no write.
_LOOKUP = text(
    """
    SELECT s.id IS NOT NULL AS listed, s.username, s.name,
           EXISTS (SELECT 1 FROM course_members m JOIN courses c ON c.id = m.course_id
                   WHERE m.user_id = :u AND c.organization_id = :o) AS staff
    FROM (SELECT 1) one LEFT JOIN staff s ON s.organization_id = :o AND s.user_id = :u
    """
)

_UPSERT = text(
    """
    INSERT INTO staff (organization_id, user_id, username, name, updated_at) VALUES (:o, :u, :username, :name, :now)
    ON CONFLICT (organization_id, user_id) DO UPDATE SET
      username = excluded.username, name = excluded.name, updated_at = excluded.updated_at
    WHERE (staff.username, staff.name) IS DISTINCT FROM (excluded.username, excluded.name)
    RETURNING id, user_id, username, name, updated_at
    """
)


async def lookup(session: AsyncSession, organization_id: int, user_id: str) -> StaffLookup:
    row = (await session.execute(_LOOKUP, {"o": organization_id, "u": user_id})).one()
    return StaffLookup(bool(row.listed), row.username, row.name, bool(row.staff))


async def upsert_entry(
    session: AsyncSession, organization_id: int, user_id: str, username: str | None, name: str | None, now: datetime
) -> StaffEntry | None:
    """Set the entry; None when it already said exactly that (nothing written)."""
    row = (
        await session.execute(
            _UPSERT, {"o": organization_id, "u": user_id, "username": username, "name": name, "now": now}
        )
    ).first()
    return None if row is None else StaffEntry(*row)


async def entry(session: AsyncSession, organization_id: int, user_id: str) -> StaffEntry:
    row = (
        await session.execute(
            text(
                "SELECT id, user_id, username, name, updated_at FROM staff WHERE organization_id = :o AND user_id = :u"
            ),
            {"o": organization_id, "u": user_id},
        )
    ).one()
    return StaffEntry(*row)


async def entries_after(session: AsyncSession, organization_id: int, after: int, limit: int) -> list[StaffEntry]:
    """Up to `limit` entries after id `after`, in the order they were made."""
    rows = await session.execute(
        text(
            "SELECT id, user_id, username, name, updated_at FROM staff WHERE organization_id = :o AND id > :after"
            " ORDER BY id LIMIT :lim"
        ),
        {"o": organization_id, "after": after, "lim": limit},
    )
    return [StaffEntry(*r) for r in rows]
