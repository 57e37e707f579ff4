"""After scores change, the worker follows up on the course a moment later: it brings stale grades
current and publishes what the assessments' release modes make due. A burst of writes to a course
costs one follow-up; the worker's sweep runs it for every course too, in case Redis lost the job."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.grades.service import grades
from gradeflow.jobs import JobName
from gradeflow.publishing.service import publishing

log = logging.getLogger(__name__)

DELAY = 0.5  # seconds the worker waits, gathering a course's writes into one follow-up
_ASKED: dict[int, float] = {}  # course -> when this process last asked


async def ask(queue: jobs.Queue, course_id: int) -> None:
    """Ask the worker to follow up on the course soon (at most once per DELAY per process). A write
    never fails for this: if Redis is down, the worker's sweep finds the course."""
    now = time.monotonic()
    if now - _ASKED.get(course_id, 0.0) < DELAY:
        return
    if len(_ASKED) > 10_000:
        _ASKED.clear()
    _ASKED[course_id] = now
    try:
        await jobs.enqueue(
            queue, JobName.FOLLOW_UP, jobs.job_id(JobName.FOLLOW_UP, course_id), course_id, defer_by=DELAY
        )
    except (OSError, RedisError):
        log.warning("could not ask the worker to follow up on course %s; its sweep will", course_id)


async def run(session: AsyncSession, course_id: int) -> tuple[int, list[int]]:
    """Refresh the course's stale grades and make the due releases: (grades refreshed, publications)."""
    refreshed = await grades.bring_current(session, course_id)
    published = await publishing.release_due(session, course_id)
    await session.commit()
    return refreshed, published
