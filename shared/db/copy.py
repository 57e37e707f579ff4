"""COPY a query's rows out of PostgreSQL straight into a polars frame (the fast path for bulk reads)."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession


async def copy_frame(session: AsyncSession, sql: str, args: list[Any], schema: dict[str, Any]) -> pl.DataFrame:
    """Run `sql` (asyncpg placeholders $1, $2, ...) as COPY ... TO STDOUT CSV inside the session's
    transaction; the frame has `schema`'s columns in order (empty when no rows)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    buffer = io.BytesIO()
    await raw.driver_connection.copy_from_query(sql, *args, output=buffer, format="csv")  # type: ignore[union-attr]
    if not buffer.getvalue():
        return pl.DataFrame(schema=schema)
    return pl.read_csv(buffer.getvalue(), has_header=False, new_columns=list(schema), schema_overrides=schema)
