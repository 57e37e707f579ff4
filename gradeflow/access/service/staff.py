"""The staff directory: what an organization's staff users are called (username, name) beside the user
id everything else records (marks, scores, audit). Reports print it where a document wants a grader's
username (Inspera's GraderUsername).

It fills itself from user tokens: a token of a staff user that carries `preferred_username` or `name`
updates the entry when they differ from it. LMSs whose tokens carry no names set entries through the
API (`PUT /v1/staff/{user}`). Every change is audited as `staff.updated`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.repository import staff as repository
from gradeflow.access.repository.staff import StaffEntry
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.core.validation import clean_text

USERNAME_MAX = 255
NAME_MAX = 500


@dataclass(frozen=True)
class Names:
    """What is known of a user: either may be unknown (None)."""

    username: str | None = None
    name: str | None = None


def _usable(value: Any, max_length: int) -> str | None:
    """A claim worth storing: non-empty text PostgreSQL can store, within the column."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        return None
    try:
        return str(clean_text(value))
    except ValueError:
        return None


def names_in(claims: dict[str, Any]) -> Names:
    """The names a verified token gives its user (OpenID Connect's `preferred_username` and `name`);
    a claim that could not be stored is left out, never a reason to refuse the token."""
    return Names(_usable(claims.get("preferred_username"), USERNAME_MAX), _usable(claims.get("name"), NAME_MAX))


async def remember(session: AsyncSession, organization_id: int, user_id: str, given: Names) -> None:
    """Keep a staff user's entry in step with what their token says (commits only when it changed).

    A name the token does not carry keeps the entry's; users who are not staff are not listed."""
    if given.username is None and given.name is None:
        return
    row = await repository.lookup(session, organization_id, user_id)
    if not (row.listed or row.staff):
        return
    new = Names(given.username or row.username, given.name or row.name)
    old = Names(row.username, row.name) if row.listed else None
    if new == old:
        return
    await _write(session, organization_id, user_id, new, old, actor=user_id)
    await session.commit()


async def _write(
    session: AsyncSession, organization_id: int, user_id: str, new: Names, old: Names | None, actor: str
) -> StaffEntry:
    """Set an entry; audited when it changed. Returns the entry as stored."""
    written = await repository.upsert_entry(session, organization_id, user_id, new.username, new.name, clock.now())
    if written is None:  # nothing differed (a concurrent request wrote the same)
        return await repository.entry(session, organization_id, user_id)
    await audit.record(
        session,
        organization_id,
        None,
        actor,
        "staff.updated",
        old=None if old is None else {"user": user_id, "username": old.username, "name": old.name},
        new={"user": user_id, "username": new.username, "name": new.name},
    )
    return written


async def put(session: AsyncSession, organization_id: int, user_id: str, names: Names, actor: str) -> StaffEntry:
    """Set a user's username and name (both replaced; null: unknown), for LMSs whose tokens carry no
    names. Audited as `staff.updated` when it changes the entry."""
    row = await repository.lookup(session, organization_id, user_id)
    old = Names(row.username, row.name) if row.listed else None
    entry = await _write(session, organization_id, user_id, names, old, actor)
    await session.commit()
    return entry


async def list_entries(session: AsyncSession, organization_id: int, limit: int, cursor: str | None) -> Page[StaffEntry]:
    """The directory in the order entries were made."""
    rows = await repository.entries_after(session, organization_id, last_id_after(cursor), limit + 1)
    return page_of(rows, limit, lambda r: r.id)
