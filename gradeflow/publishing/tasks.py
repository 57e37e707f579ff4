"""Publishing jobs: scheduled publications, follow-ups after score changes, results e-mails."""

from __future__ import annotations

from typing import Any

from gradeflow import jobs
from gradeflow.grades.service import followup
from gradeflow.notify import mail
from gradeflow.publishing.service import publishing


async def publish_due(ctx: dict[str, Any]) -> int:
    """Cron (every 10 s): run the scheduled publications whose time has come, then send their e-mails.
    PostgreSQL holds the schedule, so nothing is lost if Redis is."""
    async with ctx["sessionmaker"]() as session:
        due = await publishing.due_publications(session)
    for publication_id in due:
        if await publishing.run_scheduled(ctx["sessionmaker"], publication_id) == "published":
            await jobs.enqueue(ctx["redis"], jobs.SEND_NOTIFICATIONS, f"notify-{publication_id}", publication_id)
    return len(due)


async def follow_up_score_changes(ctx: dict[str, Any], course_id: int) -> str:
    """Bring the course's stale grades current and publish what its release modes make due."""
    async with ctx["sessionmaker"]() as session:
        refreshed, publications = await followup.run(session, course_id)
    for publication_id in publications:
        await jobs.enqueue(ctx["redis"], jobs.SEND_NOTIFICATIONS, f"notify-{publication_id}", publication_id)
    return f"{refreshed} grades refreshed, {len(publications)} publications"


async def send_notifications(ctx: dict[str, Any], publication_id: int) -> str:
    """Send a publication's due e-mails (each at most once); retries are picked up by the sweep."""
    settings = ctx["settings"]
    next_due = await mail.send_due(ctx["sessionmaker"], settings.smtp, settings.results_url_template, publication_id)
    return "done" if next_due is None else f"next retry at {next_due.isoformat()}"
