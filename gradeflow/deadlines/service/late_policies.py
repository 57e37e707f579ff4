"""A course's late and missing submission policy (Canvas's ``LatePolicy``): read, replace, and the recompute a change
makes (gradeflow/deadlines/service/late_results.py)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gradeflow import jobs
from gradeflow.access.service.access import CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import ValidationFailed
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import followup
from gradeflow.grading.late_policy import LatePolicy

log = logging.getLogger(__name__)

FIELDS = tuple(LatePolicy.model_fields)
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

_SELECT = text(
    f"""
    SELECT {", ".join(FIELDS)}, revision, updated_by, updated_at FROM late_policies WHERE course_id = :c
    """  # noqa: S608  (constant SQL)
)


async def course_preset(session: AsyncSession, course_id: int) -> str | None:
    """The preset of the course's active grading policy (None before it has one)."""
    preset: str | None = await session.scalar(
        text(
            """
            SELECT coalesce(p.body->>'preset', 'standard') FROM courses c
            JOIN grading_policies p ON p.course_id = c.id AND p.version = c.policy_version WHERE c.id = :c
            """
        ),
        {"c": course_id},
    )
    return preset


async def deducts(session: AsyncSession, course_id: int) -> str | None:
    """The first enabled field of the course's late policy a preset without one refuses (its name), else None."""
    row = (await session.execute(_SELECT, {"c": course_id})).mappings().first()
    return None if row is None else next((f for f in ENABLED if row[f]), None)


def _view(row: Any) -> dict[str, Any]:
    if row is None:
        return {**LatePolicy().model_dump(), "revision": 0, "updated_by": None, "updated_at": None}
    return dict(row)


async def get(session: AsyncSession, ref: CourseRef) -> dict[str, Any]:
    """The course's late policy (all off, revision 0, until someone sets one), with its application to the
    course's results (``application``)."""
    policy = _view((await session.execute(_SELECT, {"c": ref.id})).mappings().first())
    return {**policy, "application": await application(session, ref.id)}


async def put(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, body: LatePolicy, actor: str) -> dict[str, Any]:
    """Replace the course's late policy (revision + 1, audited ``late_policy.updated``) and ask the worker to apply
    it to every result of the course (``request_application``: each changed result audited ``result.late_policy``);
    unchanged: nothing happens (accepted, whatever the preset).

    422 under a preset without a late policy (``openedx``) for any enabled field of ``ENABLED``, naming it."""
    # One change at a time per course, and the preset read under the lock the grading-policy PUT takes too (the row
    # may not exist yet: lock the course's).
    await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": ref.id})
    current = (await session.execute(_SELECT, {"c": ref.id})).mappings().first()
    new = body.model_dump()
    old = None if current is None else {f: current[f] for f in FIELDS}
    if (old or LatePolicy().model_dump()) == new:
        await session.rollback()
        return await get(session, ref)
    preset = await course_preset(session, ref.id)
    if preset in NO_LATE_POLICY:
        for field in ENABLED:
            if getattr(body, field):
                raise ValidationFailed.one(
                    f"/{field}", f"The course grades with the {preset!r} preset, which has no late policy."
                )
    revision = 1 if current is None else current["revision"] + 1
    columns = ", ".join(FIELDS)
    await session.execute(
        text(
            f"""
            INSERT INTO late_policies (course_id, {columns}, revision, updated_by, updated_at)
            VALUES (:c, {", ".join(f":{f}" for f in FIELDS)}, :rev, :by, :now)
            ON CONFLICT (course_id) DO UPDATE SET {", ".join(f"{f} = excluded.{f}" for f in FIELDS)},
              revision = excluded.revision, updated_by = excluded.updated_by, updated_at = excluded.updated_at
            """  # noqa: S608  (column names from the model)
        ),
        {"c": ref.id, **new, "rev": revision, "by": actor, "now": clock.now()},
    )
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

# One row per course: assessment ids merged (null, every assessment, wins); a request made while a worker runs moves
# requested_at, which the worker notices when its pass ends: it makes one more pass, from the first learner, for
# the merged assessments (nothing is lost, and requests every few seconds cannot keep restarting a long pass).
_REQUEST = text(
    """
    INSERT INTO late_applications AS r (course_id, assessment_ids, requested_at)
    VALUES (:c, CAST(:a AS bigint[]), :now)
    ON CONFLICT (course_id) DO UPDATE SET
      assessment_ids = CASE WHEN r.assessment_ids IS NULL OR excluded.assessment_ids IS NULL THEN NULL
                            ELSE ARRAY(SELECT DISTINCT x FROM unnest(r.assessment_ids || excluded.assessment_ids) x
                                       ORDER BY x) END,
      requested_at = greatest(excluded.requested_at, r.requested_at + interval '1 microsecond')
    RETURNING requested_at
    """
)

_STATUS = text(
    """
    SELECT r.requested_at, r.started_at, r.changed,
           (SELECT count(*) FROM enrollments e WHERE e.course_id = r.course_id AND e.id <= r.after_enrollment)
             AS learners_done
    FROM late_applications r WHERE r.course_id = :c
    """
)


async def request_application(session: AsyncSession, course_id: int, assessment_ids: list[int] | None) -> datetime:
    """Ask for the course's late policy to be applied again to the given assessments (None: all) for every learner,
    by the worker: written in the caller's transaction; after its commit the caller calls ``enqueue_application``
    with the time this returns. Single-learner changes apply inline (``late_results.apply``) instead."""
    requested_at: datetime = await session.scalar(_REQUEST, {"c": course_id, "a": assessment_ids, "now": clock.now()})
    return requested_at


async def enqueue_application(queue: jobs.Queue, course_id: int, requested_at: datetime) -> None:
    """After the commit: the worker's job for the request (a lost one is found again by the sweep)."""
    try:
        await jobs.enqueue(queue, jobs.APPLY_LATE_POLICY, jobs.late_application_id(course_id, requested_at), course_id)
    except (OSError, RedisError):
        log.warning("could not enqueue the late policy application of course %s; the sweep will", course_id)


async def application(session: AsyncSession, course_id: int) -> dict[str, Any]:
    """Where the course's last requested application stands: applied (nothing waiting), queued or running."""
    row = (await session.execute(_STATUS, {"c": course_id})).mappings().first()
    if row is None:
        return {"status": "applied", "requested_at": None, "learners_done": None, "results_changed": None}
    return {
        "status": "queued" if row["started_at"] is None else "running",
        "requested_at": row["requested_at"],
        "learners_done": row["learners_done"],
        "results_changed": row["changed"],
    }


_CLAIM = text(
    """
    UPDATE late_applications SET started_at = :now
    WHERE course_id = :c AND (started_at IS NULL OR started_at < CAST(:now AS timestamptz) - CAST(:lease AS interval))
    RETURNING assessment_ids, requested_at, after_enrollment
    """
)
_CHUNK = text("SELECT id FROM enrollments WHERE course_id = :c AND id > :after ORDER BY id LIMIT :n")
_MOVE_ON = text(
    """
    UPDATE late_applications SET after_enrollment = :after, changed = changed + :n, started_at = :now
    WHERE course_id = :c
    """
)
_NEXT = text(
    """
    UPDATE late_applications SET started_at = :now, after_enrollment = 0, changed = 0 WHERE course_id = :c
    RETURNING assessment_ids, requested_at, after_enrollment
    """
)
_DONE = text("DELETE FROM late_applications WHERE course_id = :c AND requested_at = :req")


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
        row = (await session.execute(_CLAIM, {"c": course_id, "now": clock.now(), "lease": LEASE})).mappings().first()
        await session.commit()
    if row is None:
        return None
    try:
        return await _run(sessionmaker, queue, course_id, row)
    except BaseException:
        # Leave it to be taken again at once (the job's retry, or the sweep), not after the lease.
        async with sessionmaker() as session:
            await session.execute(_RELEASE, {"c": course_id})
            await session.commit()
        raise


_RELEASE = text("UPDATE late_applications SET started_at = NULL WHERE course_id = :c")


async def _run(sessionmaker: async_sessionmaker[AsyncSession], queue: jobs.Queue, course_id: int, row: Any) -> int:
    total = 0
    while row is not None:
        assessment_ids = None if row["assessment_ids"] is None else list(row["assessment_ids"])
        requested_at, after = row["requested_at"], row["after_enrollment"]
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
            done = await session.execute(_DONE, {"c": course_id, "req": requested_at})
            row = None
            if done.rowcount == 0:  # type: ignore[attr-defined]
                # A newer request came in meanwhile: one more pass, from the first learner, for its assessments.
                row = (await session.execute(_NEXT, {"c": course_id, "now": clock.now()})).mappings().first()
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
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                learners = list((await session.scalars(_CHUNK, {"c": course_id, "after": after, "n": CHUNK})).all())
                if not learners:
                    return [], []
                changed = await late_results.apply(
                    session, course_id, assessment_ids=assessment_ids, enrollment_ids=learners
                )
                params = {"c": course_id, "after": learners[-1], "n": len(changed), "now": clock.now()}
                await session.execute(_MOVE_ON, params)
                await session.commit()
                return learners, changed
        except DBAPIError as error:
            code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
            if code not in _RETRYABLE or attempt == CHUNK_TRIES:
                raise
            log.info("late policy chunk of course %s met a concurrent write (%s); again", course_id, code)
    raise AssertionError("unreachable")


_PENDING_ALL = text("SELECT EXISTS (SELECT 1 FROM late_applications WHERE course_id = :c AND assessment_ids IS NULL)")


_LOST = text(
    """
    SELECT course_id, requested_at FROM late_applications
    WHERE (started_at IS NULL AND requested_at < CAST(:now AS timestamptz) - CAST(:lost AS interval))
       OR started_at < CAST(:now AS timestamptz) - CAST(:lease AS interval)
    ORDER BY course_id
    """
)


async def find_lost(sessionmaker: async_sessionmaker[AsyncSession], queue: jobs.Queue) -> int:
    """Cron: enqueue again the applications whose job was lost (queued for longer than ``LOST_AFTER``) or whose
    worker died (lease expired). The same request keeps its job id, so one still queued is not doubled."""
    async with sessionmaker() as session:
        rows = (await session.execute(_LOST, {"now": clock.now(), "lost": LOST_AFTER, "lease": LEASE})).all()
    for course_id, requested_at in rows:
        await enqueue_application(queue, course_id, requested_at)
    return len(rows)


_PASSED = text(
    """
    SELECT a.course_id, array_agg(a.id ORDER BY a.id) AS assessments,
           -- a due date passed in the window (not only an assessment changed since with one already past)
           bool_or(a.due_at <= :now AND (CAST(:since AS timestamptz) IS NULL OR a.due_at > :since)
                   OR EXISTS (SELECT 1 FROM assessment_overrides o WHERE o.assessment_id = a.id AND o.due_at <= :now
                              AND (CAST(:since AS timestamptz) IS NULL OR o.due_at > :since))) AS fell_due
    FROM late_policies p JOIN assessments a ON a.course_id = p.course_id
    WHERE p.missing_submission_deduction_enabled AND (
      (a.due_at <= :now AND (CAST(:since AS timestamptz) IS NULL OR a.due_at > :since
                             -- created (or changed) since, already past due; the database's time, as below
                             OR a.updated_at > CAST(:since AS timestamptz) - interval '5 minutes'))
      OR EXISTS (SELECT 1 FROM assessment_overrides o WHERE o.assessment_id = a.id AND o.due_at <= :now
                 AND (CAST(:since AS timestamptz) IS NULL OR o.due_at > :since)))
    GROUP BY a.course_id ORDER BY a.course_id
    """
)


# Learners enrolled (or whose enrollment changed) since the last run, in courses with a missing deduction: their
# past due dates make them missing too. Enrollment times are the database's transaction start, so the window looks
# back a few minutes further (applying again changes nothing).
_NEW_LEARNERS = text(
    """
    SELECT e.course_id, array_agg(e.id ORDER BY e.id) AS learners
    FROM late_policies p JOIN enrollments e ON e.course_id = p.course_id
    WHERE p.missing_submission_deduction_enabled AND e.updated_at > CAST(:since AS timestamptz) - interval '5 minutes'
    GROUP BY e.course_id ORDER BY e.course_id
    """
)


async def passed_due(session: AsyncSession, since: datetime | None, now: datetime) -> list[tuple[int, list[int]]]:
    """The assessments of courses with a missing deduction on whose due date (their own or an override's) passed in
    (since, now] (``since`` None: ever), or that were created or changed since with a past due date, by course."""
    return [(c, ids) for c, ids, _ in await _passed(session, since, now)]


async def _passed(session: AsyncSession, since: datetime | None, now: datetime) -> list[tuple[int, list[int], bool]]:
    rows = await session.execute(_PASSED, {"since": since, "now": now})
    return [(r.course_id, list(r.assessments), bool(r.fell_due)) for r in rows]


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
        for course_id, assessment_ids, fell_due in await _passed(session, since, now):
            # Only changed since with a past due date, while an application of every assessment is pending: that
            # one reads the due dates as they are at each chunk (the cron's look-back would otherwise ask for a
            # whole pass again every minute for minutes after a course is set up).
            if fell_due or not await session.scalar(_PENDING_ALL, {"c": course_id}):
                passed.append((course_id, assessment_ids))
        learners_by_course: list[tuple[int, list[int]]] = []
        if since is not None:  # else every past due date is swept above, for every learner
            rows = await session.execute(_NEW_LEARNERS, {"since": since})
            learners_by_course = [(r.course_id, list(r.learners)) for r in rows]
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
                if await session.scalar(_PENDING_ALL, {"c": course_id}):
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
