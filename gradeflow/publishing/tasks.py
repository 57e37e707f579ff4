"""Publishing jobs: scheduled publications and results e-mails."""

from __future__ import annotations

from gradeflow import jobs
from gradeflow.jobs import JobName, WorkerContext
from gradeflow.notify import mail
from gradeflow.publishing.service import publishing


async def _send_later(ctx: WorkerContext, publication_id: int) -> None:
    """The publication's e-mails, by their own job."""
    job_id = jobs.job_id(JobName.SEND_NOTIFICATIONS, publication_id)
    await jobs.enqueue(ctx["redis"], JobName.SEND_NOTIFICATIONS, job_id, publication_id)


async def publish_due(ctx: WorkerContext) -> int:
    """Cron (every 10 s): run the scheduled publications whose time has come, then send their e-mails.
    PostgreSQL holds the schedule, so nothing is lost if Redis is."""
    async with ctx["sessionmaker"]() as session:
        due = await publishing.due_publications(session)
    for publication_id in due:
        if await publishing.run_scheduled(ctx["sessionmaker"], publication_id) == "published":
            await _send_later(ctx, publication_id)
    return len(due)


async def send_notifications(ctx: WorkerContext, publication_id: int) -> str:
    """Send a publication's due e-mails (each at most once); retries are picked up by the sweep."""
    settings = ctx["settings"]
    next_due = await mail.send_due(ctx["sessionmaker"], settings.smtp, settings.results_url_template, publication_id)
    return "done" if next_due is None else f"next retry at {next_due.isoformat()}"
