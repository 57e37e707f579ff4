"""Course grade recomputes, and the sweep that keeps every queued job alive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from shared import clock, jobs
from shared.notify import mail
from shared.services import policies, reports

# Tables whose rows are jobs: the job each queued row needs, and its job-id prefix.
JOB_TABLES = {
    "grade_recomputes": (jobs.RECOMPUTE_GRADES, "recompute"),
    "score_imports": (jobs.RUN_IMPORT, "import"),
    "item_rescores": (jobs.RESCORE_ITEM, "rescore"),
    "reports": (jobs.RUN_REPORT, "report"),
}


async def recompute_course_grades(ctx: dict[str, Any], recompute_id: int) -> str:
    """Recompute a course's stored grades under one policy version (runs once per record)."""
    return await policies.run_recompute(ctx["sessionmaker"], recompute_id)


async def sweep_jobs(ctx: dict[str, Any]) -> int:
    """PostgreSQL is the source of truth: re-enqueue queued records whose job is gone (Redis
    restarted or flushed; the job id deduplicates), e-mails due for a (re)try, and follow-ups for
    courses with stale grades or a release mode; fail recomputes stuck running past an hour, reports
    whose worker went silent, and e-mails whose sender died mid-send."""
    now = clock.now()
    found: list[tuple[str, str, int]] = []
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
        for table, (job, prefix) in JOB_TABLES.items():
            ids = await session.scalars(
                text(f"SELECT id FROM {table} WHERE status = 'queued' AND created_at < :t"),  # noqa: S608
                {"t": now - timedelta(minutes=1)},
            )
            found += [(job, prefix, record_id) for record_id in ids]
        found += [(jobs.SEND_NOTIFICATIONS, "notify", p) for p in await mail.fail_interrupted(session)]
        await reports.fail_stuck(session, timedelta(minutes=ctx["settings"].reports.running_limit_minutes))
        courses = await session.scalars(
            text(
                "SELECT course_id FROM stale_grades UNION"
                " SELECT course_id FROM assessments WHERE coalesce(release->>'mode', 'manual') <> 'manual'"
            )
        )
        found += [(jobs.FOLLOW_UP, "follow-up", course_id) for course_id in courses]
        await session.commit()
    for job, prefix, record_id in found:
        await jobs.enqueue(ctx["redis"], job, f"{prefix}-{record_id}", record_id)
    return len(found)
