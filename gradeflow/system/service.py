"""What is waiting, for the metrics an operator alerts on: reports not finished, webhooks due; and
whether the database answers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gradeflow.system import repository


async def backlog(session: AsyncSession) -> tuple[int, int]:
    """(reports queued or running, webhook deliveries due now) over every organization."""
    waiting = await repository.backlog(session)
    return waiting.reports, waiting.webhooks


async def database_answers(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        await repository.ping(conn)
    return True
