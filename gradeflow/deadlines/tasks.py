"""Late policy jobs: a course's policy applied to many results in chunks (after a policy, due date or group override
change), and results becoming missing once the learners' due dates pass."""

from __future__ import annotations

from datetime import datetime, timedelta

from arq import Retry
from sqlalchemy.exc import DBAPIError

from gradeflow.core import clock
from gradeflow.deadlines.service import late_policies
from gradeflow.jobs import WorkerContext

# Where the sweep keeps the time it has covered up to, one per database (tests run one database each).
KEY = "gradeflow:late-missing-swept:{database}"
# Unsubmitted work is missing from one whole second past the due date: the next run looks back that far again.
SECOND = timedelta(seconds=1)
# Tries of an application that failed on the database (then the cron's sweep takes it up again).
RETRIES = 5


async def mark_missing(ctx: WorkerContext) -> int:
    """Cron (every minute): in courses with a missing deduction, mark unsubmitted work missing for the assessments
    whose due dates (their own or an override's) passed since the last run (or that were added or changed since
    with one already past) and for learners enrolled since; without a record of that run (first start, Redis
    flushed, the clock moved back) every past due date is swept once. Idempotent; cheap when nothing fell due (two
    small queries over the courses with a missing deduction)."""
    now = clock.now()
    redis = ctx["redis"]
    key = KEY.format(database=ctx["engine"].url.database)
    raw = await redis.get(key)
    since = datetime.fromisoformat(raw.decode()) if raw else None
    if since is not None and since > now:
        since = None
    changed = await late_policies.mark_missing(ctx["sessionmaker"], redis, since, now)
    await redis.set(key, (now - SECOND).isoformat())
    # Applications whose job got lost (or whose worker died) are enqueued again.
    await late_policies.find_lost(ctx["sessionmaker"], redis)
    return changed


async def apply_late_policy(ctx: WorkerContext, course_id: int) -> int | None:
    """Apply the course's late policy as its pending request says (``late_policies.run_application``): chunks of
    learners, one transaction each, then the grades' follow-up. Nothing to do when another worker holds it or it
    is done already."""
    try:
        return await late_policies.run_application(ctx["sessionmaker"], ctx["redis"], course_id)
    except DBAPIError as error:  # a deadlock with an inline application, say: again shortly, from where it was
        if ctx.get("job_try", 1) >= RETRIES:
            raise
        raise Retry(defer=2 * ctx.get("job_try", 1)) from error
