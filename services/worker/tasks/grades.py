"""Course grade recomputes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from shared import clock, jobs
from shared.services import policies


async def recompute_course_grades(ctx: dict[str, Any], recompute_id: int) -> str:
    """Recompute a course's stored grades under one policy version (runs once per record)."""
    return await policies.run_recompute(ctx["sessionmaker"], recompute_id)


async def sweep_recomputes(ctx: dict[str, Any]) -> int:
    """PostgreSQL is the source of truth: re-enqueue queued recomputes whose job is gone (Redis
    restarted or flushed; the job id deduplicates) and fail those stuck running past an hour."""
    now = clock.now()
    async with ctx["sessionmaker"]() as session:
        await session.execute(
            text(
                """
                UPDATE grade_recomputes SET status = 'failed', finished_at = :now,
                  error = 'stopped making progress for an hour (worker lost); it will be retried'
                WHERE status = 'running' AND started_at < :stale
                """
            ),
            {"now": now, "stale": now - timedelta(hours=1)},
        )
        queued = (
            await session.scalars(
                text("SELECT id FROM grade_recomputes WHERE status = 'queued' AND created_at < :t"),
                {"t": now - timedelta(minutes=1)},
            )
        ).all()
        await session.commit()
    for recompute_id in queued:
        await jobs.enqueue(ctx["redis"], jobs.RECOMPUTE_GRADES, f"recompute-{recompute_id}", recompute_id)
    return len(queued)
