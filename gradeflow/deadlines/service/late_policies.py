"""A course's late and missing submission policy (Canvas's ``LatePolicy``): read, replace, and the recompute a change
makes (gradeflow/deadlines/service/late_results.py)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import ValidationFailed
from gradeflow.deadlines.repository import late_policies as repository
from gradeflow.deadlines.repository.late_policies import ApplicationRequest, StoredLatePolicy
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import followup
from gradeflow.grading.late_policy import LatePolicy
from gradeflow.jobs import JobName

log = logging.getLogger(__name__)

# What a preset without a late policy refuses (422), in the late-policy PUT and in the switch to that preset: the
# one list of both checks.
ENABLED = (
    "missing_submission_deduction_enabled",
    "late_submission_deduction_enabled",
    "late_submission_minimum_percent_enabled",
)
# Presets without a late policy (Open edX has none): any enabled flag is refused with 422.
NO_LATE_POLICY = frozenset({"openedx"})
# Learners per transaction of the worker's application (tests make it small to cross chunk boundaries).
CHUNK = 5_000
# A worker that took an application and has not moved it on for this long is taken to have died.
LEASE = timedelta(minutes=5)
# A queued application not started after this long has lost its job (Redis flushed, enqueue failed): re-enqueued.
LOST_AFTER = timedelta(seconds=5)


async def deducts(session: AsyncSession, course_id: int) -> str | None:
    """The first enabled field of the course's late policy a preset without one refuses (its name), else None."""
    policy = await repository.policy_of(session, course_id)
    return None if policy is None else next((f for f in ENABLED if getattr(policy, f)), None)


# The late policy of a course that never had one: everything off, revision 0.
_NONE = StoredLatePolicy(**LatePolicy().model_dump(), revision=0, updated_by=None, updated_at=None)


@dataclass(frozen=True, slots=True)
class Application:
    """Where the course's last requested application of its late policy stands: applied (nothing waiting),
    queued or running, with how far it got."""

    status: Literal["applied", "queued", "running"]
    requested_at: datetime | None
    learners_done: int | None
    results_changed: int | None


@dataclass(frozen=True, slots=True)
class LatePolicyView(StoredLatePolicy):
    """A course's late policy with its application to the course's results."""

    application: Application


async def get(session: AsyncSession, ref: CourseRef) -> LatePolicyView:
    """The course's late policy (all off, revision 0, until someone sets one), with its application to the
    course's results (``application``)."""
    policy = await repository.policy_of(session, ref.id) or _NONE
    return LatePolicyView(**dataclasses.asdict(policy), application=await application(session, ref.id))


async def put(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, body: LatePolicy, actor: str) -> LatePolicyView:
    """Replace the course's late policy (revision + 1, audited ``late_policy.updated``) and ask the worker to apply
    it to every result of the course (``request_application``: each changed result audited ``result.late_policy``);
    unchanged: nothing happens (accepted, whatever the preset).

    422 under a preset without a late policy (``openedx``) for any enabled field of ``ENABLED``, naming it."""
    # One change at a time per course, and the preset read under the lock the grading-policy PUT takes too (the row
    # may not exist yet: lock the course's).
    await repository.lock_course(session, ref.id)
    current = await repository.policy_of(session, ref.id)
    new = body.model_dump()
    old = None if current is None else current.fields()
    if (old or LatePolicy().model_dump()) == new:
        await session.rollback()
        return await get(session, ref)
    preset = await repository.course_preset(session, ref.id)
    if preset in NO_LATE_POLICY:
        for field in ENABLED:
            if getattr(body, field):
                raise ValidationFailed.one(
                    f"/{field}", f"The course grades with the {preset!r} preset, which has no late policy."
                )
    revision = 1 if current is None else current.revision + 1
    await repository.put_policy(session, ref.id, new, revision, actor, clock.now())
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "late_policy.updated",
        old=None if old is None else {**LatePolicy(**old).model_dump(mode="json"), "revision": revision - 1},
        new={**body.model_dump(mode="json"), "revision": revision},
    )
    requested_at = await request_application(session, ref.id, None)
    await session.commit()
    await enqueue_application(queue, ref.id, requested_at)
    return await get(session, ref)


# --- The worker's application of the policy to many results (a policy, a due date or a group override changed) ---


async def request_application(session: AsyncSession, course_id: int, assessment_ids: list[int] | None) -> datetime:
    """Ask for the course's late policy to be applied again to the given assessments (None: all) for every learner,
    by the worker: written in the caller's transaction; after its commit the caller calls ``enqueue_application``
    with the time this returns. Single-learner changes apply inline (``late_results.apply``) instead."""
    return await repository.request_application(session, course_id, assessment_ids, clock.now())


async def enqueue_application(queue: jobs.Queue, course_id: int, requested_at: datetime) -> None:
    """After the commit: the worker's job for the request (a lost one is found again by the sweep)."""
    try:
        await jobs.enqueue(
            queue, JobName.APPLY_LATE_POLICY, jobs.late_application_id(course_id, requested_at), course_id
        )
    except (OSError, RedisError):
        log.warning("could not enqueue the late policy application of course %s; the sweep will", course_id)


async def application(session: AsyncSession, course_id: int) -> Application:
    """Where the course's last requested application stands."""
    row = await repository.application_status(session, course_id)
    if row is None:
        return Application("applied", None, None, None)
    return Application(
        "queued" if row.started_at is None else "running", row.requested_at, row.learners_done, row.changed
    )


async def run_application(
    sessionmaker: async_sessionmaker[AsyncSession], queue: jobs.Queue, course_id: int
) -> int | None:
    """The worker's side of ``request_application``: take the course's request (a lease), apply the policy to its
    learners in chunks of ``CHUNK`` in enrollment id order, one transaction per chunk recording the position; done:
    the request is deleted, unless a newer one came in meanwhile (then one more pass for it). On a failure the lease
    is released (the job's retry or the sweep takes it up again, from the position). Each chunk re-reads
    the policy and due dates, so it applies what is current. Idempotent. How many results changed (None: another
    worker holds it, or there is nothing to do)."""
    async with sessionmaker() as session:
        row = await repository.claim_application(session, course_id, clock.now(), LEASE)
        await session.commit()
    if row is None:
        return None
    try:
        return await _run(sessionmaker, queue, course_id, row)
    except BaseException:
        # Leave it to be taken again at once (the job's retry, or the sweep), not after the lease.
        async with sessionmaker() as session:
            await repository.release(session, course_id)
            await session.commit()
        raise


async def _run(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: jobs.Queue,
    course_id: int,
    row: ApplicationRequest | None,
) -> int:
    total = 0
    while row is not None:
        assessment_ids, requested_at, after = row.assessment_ids, row.requested_at, row.after_enrollment
        while True:
            learners, changed = await _chunk(sessionmaker, course_id, assessment_ids, after)
            if not learners:
                break
            after = learners[-1]
            total += len(changed)
            if changed:
                await followup.ask(queue, course_id)
            if len(learners) < CHUNK:
                break
        async with sessionmaker() as session:
            row = None
            if not await repository.finish(session, course_id, requested_at):
                # A newer request came in meanwhile: one more pass, from the first learner, for its assessments.
                row = await repository.restart(session, course_id, clock.now())
            await session.commit()
    await followup.ask(queue, course_id)
    return total


# A chunk that met a concurrent write (a score entered meanwhile, say) is done again, up to this many times.
CHUNK_TRIES = 5
_RETRYABLE = ("40001", "40P01")  # serialization failure, deadlock


async def _chunk(
    sessionmaker: async_sessionmaker[AsyncSession], course_id: int, assessment_ids: list[int] | None, after: int
) -> tuple[list[int], list[int]]:
    """One chunk of learners after ``after``, in one REPEATABLE READ transaction: the policy, the due dates, the
    overrides and the results all read as of one moment, and a result written meanwhile by a request (which applied
    the policy inline) makes the chunk fail and start again rather than overwrite it with figures from before."""
    for attempt in range(1, CHUNK_TRIES + 1):
        try:
            async with sessionmaker() as session:
                await repository.read_as_of_one_moment(session)
                learners = await repository.learners_after(session, course_id, after, CHUNK)
                if not learners:
                    return [], []
                changed = await late_results.apply(
                    session, course_id, assessment_ids=assessment_ids, enrollment_ids=learners
                )
                await repository.move_on(session, course_id, learners[-1], len(changed), clock.now())
                await session.commit()
                return learners, changed
        except DBAPIError as error:
            code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
            if code not in _RETRYABLE or attempt == CHUNK_TRIES:
                raise
            log.info("late policy chunk of course %s met a concurrent write (%s); again", course_id, code)
    raise AssertionError("unreachable")


async def find_lost(sessionmaker: async_sessionmaker[AsyncSession], queue: jobs.Queue) -> int:
    """Cron: enqueue again the applications whose job was lost (queued for longer than ``LOST_AFTER``) or whose
    worker died (lease expired). The same request keeps its job id, so one still queued is not doubled."""
    async with sessionmaker() as session:
        rows = await repository.lost_applications(session, clock.now(), LOST_AFTER, LEASE)
    for course_id, requested_at in rows:
        await enqueue_application(queue, course_id, requested_at)
    return len(rows)


async def mark_missing(
    sessionmaker: async_sessionmaker[AsyncSession], queue: jobs.Queue, since: datetime | None, now: datetime
) -> int:
    """Apply the late policy to the assessments whose due dates passed in (since, now] (an application request per
    course, for the worker: a whole assessment may be every learner of a large course) and, inline, to learners
    enrolled since, in courses with a missing deduction (one transaction per course; idempotent: only what changes
    is written and audited); ask for each changed course's follow-up. A course whose application fails is logged
    and asked of the worker instead (whose job retries it): the others go on. How many learners' results changed
    inline."""
    async with sessionmaker() as session:
        passed = []
        for due in await repository.passed_due(session, since, now):
            # Only changed since with a past due date, while an application of every assessment is pending: that
            # one reads the due dates as they are at each chunk (the cron's look-back would otherwise ask for a
            # whole pass again every minute for minutes after a course is set up).
            if due.fell_due or not await repository.pending_for_every_assessment(session, due.course_id):
                passed.append((due.course_id, due.assessment_ids))
        learners_by_course: list[tuple[int, list[int]]] = []
        if since is not None:  # else every past due date is swept above, for every learner
            learners_by_course = await repository.new_learners(session, since)
        requested = []
        for course_id, assessment_ids in passed:
            requested.append((course_id, await request_application(session, course_id, assessment_ids)))
        await session.commit()
    for course_id, requested_at in requested:
        await enqueue_application(queue, course_id, requested_at)
    changed = 0
    for course_id, enrollment_ids in learners_by_course:
        if len(enrollment_ids) > CHUNK:  # a whole course enrolled at once: the worker's application, in chunks
            async with sessionmaker() as session:
                if await repository.pending_for_every_assessment(session, course_id):
                    continue  # one for every learner is pending already (new learners come last in its order)
                requested_at = await request_application(session, course_id, None)
                await session.commit()
            await enqueue_application(queue, course_id, requested_at)
            continue
        try:
            async with sessionmaker() as session:
                learners = await late_results.apply_at(session, course_id, now, enrollment_ids=enrollment_ids)
                await session.commit()
        except Exception:
            log.exception("the late policy failed for new learners of course %s; asking the worker", course_id)
            async with sessionmaker() as session:
                requested_at = await request_application(session, course_id, None)
                await session.commit()
            await enqueue_application(queue, course_id, requested_at)
            continue
        if learners:
            changed += len(learners)
            await followup.ask(queue, course_id)
    return changed
