"""Course grade recomputes, and the sweep that keeps every queued job alive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from gradeflow import jobs
from gradeflow.core import clock
from gradeflow.grades.service import policies
from gradeflow.mailings import service as mailings
from gradeflow.notify import mail
from gradeflow.reports.service import reports

# Tables whose rows are jobs: the job each queued row needs, and its job-id prefix.
JOB_TABLES = {
    "grade_recomputes": (jobs.RECOMPUTE_GRADES, "recompute"),
    "score_imports": (jobs.RUN_IMPORT, "import"),
    "item_rescores": (jobs.RESCORE_ITEM, "rescore"),
}

# Jobs still running after an hour lost their worker (arq stops an import after 30 minutes; an
# import's rows are applied in one transaction, which died with it): (column, error).
LOST_AFTER_AN_HOUR = {
    "grade_recomputes": ("started_at", "stopped making progress for an hour (worker lost); it will be retried"),
    "score_imports": (
        "created_at",
        "the worker was lost while it ran; nothing was applied (all or nothing): run it again",
    ),
}


async def recompute_course_grades(ctx: dict[str, Any], recompute_id: int) -> str:
    """Recompute a course's stored grades under one policy version (runs once per record)."""
    return await policies.run_recompute(ctx["sessionmaker"], recompute_id)


async def sweep_jobs(ctx: dict[str, Any]) -> int:
    """PostgreSQL is the source of truth: re-enqueue queued records whose job is gone (Redis
    restarted or flushed; the job id deduplicates), e-mails due for a (re)try, and follow-ups for
    courses with stale grades or a release mode; fail recomputes stuck running past an hour; retry
    reports whose worker went silent past the lease (failed after 3 tries); fail e-mails whose sender
    died mid-send (never sent twice) and send the rest."""
    now = clock.now()
    found: list[tuple[str, str, int]] = []  # (job, job id, record id)
    async with ctx["sessionmaker"]() as session:
        for table, (since, why) in LOST_AFTER_AN_HOUR.items():
            await session.execute(
                text(
                    f"UPDATE {table} SET status = 'failed', finished_at = :now, error = :why"  # noqa: S608
                    f" WHERE status = 'running' AND {since} < :stale"
                ),
                {"now": now, "why": why, "stale": now - timedelta(hours=1)},
            )
        for table, (job, prefix) in JOB_TABLES.items():
            ids = await session.scalars(
                text(f"SELECT id FROM {table} WHERE status = 'queued' AND created_at < :t"),  # noqa: S608
                {"t": now - timedelta(minutes=1)},
            )
            found += [(job, f"{prefix}-{record_id}", record_id) for record_id in ids]
        # Reports get a job id per try: a dead worker's job keeps its id in Redis for hours.
        abandoned = await reports.recover_abandoned(session, timedelta(seconds=ctx["settings"].reports.lease_seconds))
        waiting = await session.execute(
            text("SELECT id, tries FROM reports WHERE status = 'queued' AND created_at < :t"),
            {"t": now - timedelta(minutes=1)},
        )
        found += [
            (jobs.RUN_REPORT, reports.job_id(r, tries), r)
            for r, tries in {*abandoned, *((row.id, row.tries) for row in waiting)}
        ]
        # E-mails whose sender died get a new job id for the same reason; a second sender is harmless.
        mail_due = await mail.fail_interrupted(session, timedelta(seconds=ctx["settings"].smtp.lease_seconds))
        found += [
            (jobs.SEND_NOTIFICATIONS, f"notify-{p}" + (f"-{now.timestamp():.0f}" if lost else ""), p)
            for p, lost in mail_due
        ]
        # Candidate mailings: likewise (letters whose sender died fail), a mailing whose job was lost, and
        # one whose worker went silent while preparing or sending (a new job id, chosen by recover()).
        mailings_due = await mailings.recover(session, timedelta(seconds=ctx["settings"].smtp.lease_seconds))
        found += [(jobs.SEND_MAILING, job_id, m) for m, job_id in mailings_due]
        courses = await session.scalars(
            text(
                "SELECT course_id FROM stale_grades UNION"
                " SELECT course_id FROM assessments WHERE coalesce(release->>'mode', 'manual') <> 'manual'"
            )
        )
        found += [(jobs.FOLLOW_UP, f"follow-up-{course_id}", course_id) for course_id in courses]
        await session.commit()
    for job, job_id, record_id in found:
        await jobs.enqueue(ctx["redis"], job, job_id, record_id)
    return len(found)
