"""Housekeeping jobs: stored Idempotency-Key responses past their window, and the sweep that keeps
every queued job alive."""

from __future__ import annotations

from datetime import timedelta

from gradeflow import jobs
from gradeflow.access.service import idempotency
from gradeflow.core import clock
from gradeflow.jobs import JobName, WorkerContext
from gradeflow.lti.service import tokens
from gradeflow.mailings import service as mailings
from gradeflow.notify import mail
from gradeflow.reports.service import reports
from gradeflow.system import repository

# Tables whose rows are jobs: the job each queued row needs (its id is the job's prefix and the row's id).
JOB_TABLES = {
    "grade_recomputes": JobName.RECOMPUTE_GRADES,
    "score_imports": JobName.RUN_IMPORT,
    "item_rescores": JobName.RESCORE_ITEM,
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


async def purge_idempotency_records(ctx: WorkerContext) -> int:
    """Delete stored Idempotency-Key responses past their 24 h window, and expired LTI access tokens (of
    tools that stopped asking for new ones: a tool's own go whenever it is issued one)."""
    ttl = timedelta(hours=ctx["settings"].limits.idempotency_ttl_hours)
    async with ctx["sessionmaker"]() as session:
        purged = await idempotency.purge_expired(session, ttl)
        return purged + await tokens.purge_expired(session)


async def sweep_jobs(ctx: WorkerContext) -> int:
    """PostgreSQL is the source of truth: re-enqueue queued records whose job is gone (Redis
    restarted or flushed; the job id deduplicates), e-mails due for a (re)try, and follow-ups for
    courses with stale grades or a release mode; fail recomputes stuck running past an hour; retry
    reports whose worker went silent past the lease (failed after 3 tries); fail e-mails whose sender
    died mid-send (never sent twice) and send the rest."""
    now = clock.now()
    found: list[tuple[JobName, str, int]] = []  # (job, job id, record id)
    async with ctx["sessionmaker"]() as session:
        for table, (since, why) in LOST_AFTER_AN_HOUR.items():
            await repository.fail_running_since(session, table, since, now - timedelta(hours=1), why, now)
        for table, job in JOB_TABLES.items():
            ids = await repository.queued_before(session, table, now - timedelta(minutes=1))
            found += [(job, jobs.job_id(job, record_id), record_id) for record_id in ids]
        # Reports get a job id per try: a dead worker's job keeps its id in Redis for hours.
        abandoned = await reports.recover_abandoned(session, timedelta(seconds=ctx["settings"].reports.lease_seconds))
        waiting = await repository.queued_reports_before(session, now - timedelta(minutes=1))
        found += [
            (JobName.RUN_REPORT, jobs.job_id(JobName.RUN_REPORT, r, tries or None), r)
            for r, tries in {*abandoned, *waiting}
        ]
        # E-mails whose sender died get a new job id for the same reason; a second sender is harmless.
        mail_due = await mail.fail_interrupted(session, timedelta(seconds=ctx["settings"].smtp.lease_seconds))
        found += [
            (
                JobName.SEND_NOTIFICATIONS,
                jobs.job_id(JobName.SEND_NOTIFICATIONS, p, jobs.lost_at(now) if lost else None),
                p,
            )
            for p, lost in mail_due
        ]
        # Candidate mailings: likewise (letters whose sender died fail), a mailing whose job was lost, and
        # one whose worker went silent while preparing or sending (a new job id, chosen by recover()).
        mailings_due = await mailings.recover(session, timedelta(seconds=ctx["settings"].smtp.lease_seconds))
        found += [(JobName.SEND_MAILING, job_id, m) for m, job_id in mailings_due]
        courses = await repository.courses_to_follow_up(session)
        found += [(JobName.FOLLOW_UP, jobs.job_id(JobName.FOLLOW_UP, course_id), course_id) for course_id in courses]
        await session.commit()
    for job, job_id, record_id in found:
        await jobs.enqueue(ctx["redis"], job, job_id, record_id)
    return len(found)
