"""Keyset pages read from the database (the cursor itself is gradeflow/core/paging.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core.paging import Page, last_id_after, page_of


async def newest_first(
    session: AsyncSession, sql: str, params: dict[str, Any], limit: int, cursor: str | None
) -> Page[Any]:
    """A page of `sql`'s rows (they need an `id` column), most recent (highest id) first."""
    after = last_id_after(cursor) or 2**63 - 1
    rows = await session.execute(
        text(f"SELECT * FROM ({sql}) q WHERE id < :after ORDER BY id DESC LIMIT :lim"),  # noqa: S608 (constant SQL)
        {**params, "after": after, "lim": limit + 1},
    )
    return page_of(list(rows.mappings()), limit, lambda r: r["id"])
