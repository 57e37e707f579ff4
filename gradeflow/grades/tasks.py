"""Course grade jobs: recomputes under a policy version, and the follow-up after score changes."""

from __future__ import annotations

from gradeflow import jobs
from gradeflow.grades.service import followup, policies
from gradeflow.jobs import JobName, WorkerContext


async def recompute_course_grades(ctx: WorkerContext, recompute_id: int) -> str:
    """Recompute a course's stored grades under one policy version (runs once per record)."""
    return await policies.run_recompute(ctx["sessionmaker"], recompute_id)


async def follow_up_course(ctx: WorkerContext, course_id: int) -> str:
    """After score changes: bring the course's stale grades current and publish what its release modes make due
    (their e-mails go by their own jobs)."""
    async with ctx["sessionmaker"]() as session:
        refreshed, publications = await followup.run(session, course_id)
    for publication_id in publications:
        job_id = jobs.job_id(JobName.SEND_NOTIFICATIONS, publication_id)
        await jobs.enqueue(ctx["redis"], JobName.SEND_NOTIFICATIONS, job_id, publication_id)
    return f"{refreshed} grades refreshed, {len(publications)} publications"
