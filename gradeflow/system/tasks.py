"""Housekeeping jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gradeflow.access.service import idempotency


async def purge_idempotency_records(ctx: dict[str, Any]) -> int:
    """Delete stored Idempotency-Key responses past their 24 h window."""
    ttl = timedelta(hours=ctx["settings"].limits.idempotency_ttl_hours)
    async with ctx["sessionmaker"]() as session:
        return await idempotency.purge_expired(session, ttl)
