"""Stored responses of requests sent with an Idempotency-Key (`idempotency_records`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.db.models import IdempotencyRecord


async def live_record(
    session: AsyncSession, organization_id: int, key: str, newer_than: datetime
) -> IdempotencyRecord | None:
    """The organization's record of `key` made after `newer_than` (an older one has expired)."""
    return await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.organization_id == organization_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > newer_than,
        )
    )


async def store(
    session: AsyncSession, organization_id: int, key: str, values: dict[str, Any], expired_at: datetime
) -> int | None:
    """Store a response under `key`, taking over a record made at or before `expired_at`; None when a live record
    holds the key (a concurrent request won)."""
    inserted: int | None = await session.scalar(
        pg_insert(IdempotencyRecord)
        .values(organization_id=organization_id, key=key, **values)
        .on_conflict_do_update(
            index_elements=["organization_id", "key"],
            set_=values,
            where=IdempotencyRecord.created_at <= expired_at,
        )
        .returning(IdempotencyRecord.id)
    )
    return inserted


async def delete_expired(session: AsyncSession, expired_at: datetime) -> int:
    """Delete the records made at or before `expired_at`; how many."""
    result = await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= expired_at))
    return int(result.rowcount)  # type: ignore[attr-defined]
