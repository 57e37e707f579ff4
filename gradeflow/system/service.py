"""What is waiting, for the metrics an operator alerts on: reports not finished, webhooks due."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.core import clock

_BACKLOG = text(
    """
    SELECT (SELECT count(*) FROM reports WHERE status IN ('queued', 'running')) AS reports,
           (SELECT count(*) FROM webhook_deliveries
             WHERE status IN ('pending', 'sending') AND next_attempt_at <= :now) AS webhooks
    """
)


async def backlog(session: AsyncSession) -> tuple[int, int]:
    """(reports queued or running, webhook deliveries due now) over every organization."""
    row = (await session.execute(_BACKLOG, {"now": clock.now()})).one()
    return int(row.reports), int(row.webhooks)
