"""SQL of the system's housekeeping: the backlogs an operator alerts on, and the job records the
sweep finds lost or stuck."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gradeflow.core import clock

_BACKLOG = text(
    """
    SELECT (SELECT count(*) FROM reports WHERE status IN ('queued', 'running')) AS reports,
           (SELECT count(*) FROM webhook_deliveries
             WHERE status IN ('pending', 'sending') AND next_attempt_at <= :now) AS webhooks
    """
)


@dataclass(frozen=True, slots=True)
class Backlog:
    reports: int  # queued or running
    webhooks: int  # deliveries due now


async def backlog(session: AsyncSession) -> Backlog:
    """Over every organization."""
    row = (await session.execute(_BACKLOG, {"now": clock.now()})).one()
    return Backlog(int(row.reports), int(row.webhooks))


async def ping(conn: AsyncConnection) -> None:
    """A round trip to the database."""
    await conn.execute(text("SELECT 1"))


async def fail_running_since(
    session: AsyncSession, table: str, since: str, stale: datetime, why: str, now: datetime
) -> None:
    """Fail (at `now`) the jobs of `table` (a job table, a constant) whose `since` column is before
    `stale` and still running."""
    await session.execute(
        text(
            f"UPDATE {table} SET status = 'failed', finished_at = :now, error = :why"  # noqa: S608
            f" WHERE status = 'running' AND {since} < :stale"
        ),
        {"now": now, "why": why, "stale": stale},
    )


async def queued_before(session: AsyncSession, table: str, before: datetime) -> list[int]:
    """Ids of the records of `table` (a job table, a constant) queued before `before`."""
    ids = await session.scalars(
        text(f"SELECT id FROM {table} WHERE status = 'queued' AND created_at < :t"),  # noqa: S608
        {"t": before},
    )
    return list(ids)


async def queued_reports_before(session: AsyncSession, before: datetime) -> list[tuple[int, int]]:
    """(report id, tries) of the reports queued before `before`."""
    rows = await session.execute(
        text("SELECT id, tries FROM reports WHERE status = 'queued' AND created_at < :t"), {"t": before}
    )
    return [(row.id, row.tries) for row in rows]


async def courses_to_follow_up(session: AsyncSession) -> list[int]:
    """Courses with stale grades, or with an assessment released by a release mode."""
    courses = await session.scalars(
        text(
            "SELECT course_id FROM stale_grades UNION"
            " SELECT course_id FROM assessments WHERE coalesce(release->>'mode', 'manual') <> 'manual'"
        )
    )
    return list(courses)
