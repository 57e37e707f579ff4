"""A course's late policy (`late_policies`) and the requests to apply it to many results (`late_applications`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.grading.late_policy import LatePolicy

FIELDS = tuple(LatePolicy.model_fields)


@dataclass(frozen=True, slots=True)
class StoredLatePolicy:
    """A course's late policy as stored (the fields of ``LatePolicy``), with its revision."""

    missing_submission_deduction_enabled: bool
    missing_submission_deduction: Decimal
    late_submission_deduction_enabled: bool
    late_submission_deduction: Decimal
    late_submission_interval: str
    late_submission_minimum_percent_enabled: bool
    late_submission_minimum_percent: Decimal
    revision: int
    updated_by: str | None
    updated_at: datetime | None

    def fields(self) -> dict[str, Any]:
        """The policy's fields (``FIELDS``) by name."""
        return {f: getattr(self, f) for f in FIELDS}


assert tuple(StoredLatePolicy.__dataclass_fields__)[: len(FIELDS)] == FIELDS

_SELECT = text(
    f"""
    SELECT {", ".join(FIELDS)}, revision, updated_by, updated_at FROM late_policies WHERE course_id = :c
    """  # noqa: S608  (constant SQL)
)


async def policy_of(session: AsyncSession, course_id: int) -> StoredLatePolicy | None:
    """The course's late policy (None: it never had one)."""
    row = (await session.execute(_SELECT, {"c": course_id})).mappings().first()
    return None if row is None else StoredLatePolicy(**row)


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


async def lock_course(session: AsyncSession, course_id: int) -> None:
    """The course's row lock the grading-policy PUT takes too: one policy change at a time per course."""
    await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": course_id})


async def put_policy(
    session: AsyncSession, course_id: int, policy: dict[str, Any], revision: int, actor: str, now: datetime
) -> None:
    """Insert or replace the course's policy (`policy`: a value for each of ``FIELDS``)."""
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
        {"c": course_id, **policy, "rev": revision, "by": actor, "now": now},
    )


# --- requests to apply the policy (one row per course) ---------------------------------------------------------

# Assessment ids merged (null, every assessment, wins); a request made while a worker runs moves requested_at, which
# the worker notices when its pass ends: it makes one more pass, from the first learner, for the merged assessments
# (nothing is lost, and requests every few seconds cannot keep restarting a long pass).
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


@dataclass(frozen=True, slots=True)
class ApplicationStatus:
    """A pending application: when asked for, when a worker took it (None: queued), how far it got."""

    requested_at: datetime
    started_at: datetime | None
    changed: int
    learners_done: int


@dataclass(frozen=True, slots=True)
class ApplicationRequest:
    """What a worker that takes (or goes on with) an application applies: the assessments (None: all), for the
    request made at `requested_at`, from the learner after `after_enrollment`."""

    assessment_ids: list[int] | None
    requested_at: datetime
    after_enrollment: int


async def request_application(
    session: AsyncSession, course_id: int, assessment_ids: list[int] | None, now: datetime
) -> datetime:
    """Record (or merge into the pending one) a request to apply the course's policy; its time."""
    requested_at: datetime = await session.scalar(_REQUEST, {"c": course_id, "a": assessment_ids, "now": now})
    return requested_at


async def application_status(session: AsyncSession, course_id: int) -> ApplicationStatus | None:
    """The course's pending application (None: nothing pending)."""
    row = (await session.execute(_STATUS, {"c": course_id})).first()
    return None if row is None else ApplicationStatus(*row)


async def pending_for_every_assessment(session: AsyncSession, course_id: int) -> bool:
    """An application of every assessment of the course is pending."""
    pending = await session.scalar(
        text("SELECT EXISTS (SELECT 1 FROM late_applications WHERE course_id = :c AND assessment_ids IS NULL)"),
        {"c": course_id},
    )
    return bool(pending)


def _request(row: Any) -> ApplicationRequest | None:
    if row is None:
        return None
    ids = None if row.assessment_ids is None else list(row.assessment_ids)
    return ApplicationRequest(ids, row.requested_at, row.after_enrollment)


_CLAIM = text(
    """
    UPDATE late_applications SET started_at = :now
    WHERE course_id = :c AND (started_at IS NULL OR started_at < CAST(:now AS timestamptz) - CAST(:lease AS interval))
    RETURNING assessment_ids, requested_at, after_enrollment
    """
)


async def claim_application(
    session: AsyncSession, course_id: int, now: datetime, lease: timedelta
) -> ApplicationRequest | None:
    """Take the course's application (one not taken, or whose worker's lease ran out); None: none to take."""
    return _request((await session.execute(_CLAIM, {"c": course_id, "now": now, "lease": lease})).first())


async def learners_after(session: AsyncSession, course_id: int, after: int, limit: int) -> list[int]:
    """Up to `limit` of the course's enrollment ids after `after`, in id order."""
    rows = await session.scalars(
        text("SELECT id FROM enrollments WHERE course_id = :c AND id > :after ORDER BY id LIMIT :n"),
        {"c": course_id, "after": after, "n": limit},
    )
    return list(rows.all())


async def move_on(session: AsyncSession, course_id: int, after: int, changed: int, now: datetime) -> None:
    """Record the application's position (the last learner done) and the results it changed."""
    await session.execute(
        text(
            """
            UPDATE late_applications SET after_enrollment = :after, changed = changed + :n, started_at = :now
            WHERE course_id = :c
            """
        ),
        {"c": course_id, "after": after, "n": changed, "now": now},
    )


async def finish(session: AsyncSession, course_id: int, requested_at: datetime) -> bool:
    """Delete the application if no newer request came in since `requested_at`; False when one did."""
    done = await session.execute(
        text("DELETE FROM late_applications WHERE course_id = :c AND requested_at = :req"),
        {"c": course_id, "req": requested_at},
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def restart(session: AsyncSession, course_id: int, now: datetime) -> ApplicationRequest | None:
    """Start the application again from the first learner (a newer request came in during a pass)."""
    row = (
        await session.execute(
            text(
                """
                UPDATE late_applications SET started_at = :now, after_enrollment = 0, changed = 0 WHERE course_id = :c
                RETURNING assessment_ids, requested_at, after_enrollment
                """
            ),
            {"c": course_id, "now": now},
        )
    ).first()
    return _request(row)


async def release(session: AsyncSession, course_id: int) -> None:
    """Let the application be taken again at once."""
    await session.execute(text("UPDATE late_applications SET started_at = NULL WHERE course_id = :c"), {"c": course_id})


_LOST = text(
    """
    SELECT course_id, requested_at FROM late_applications
    WHERE (started_at IS NULL AND requested_at < CAST(:now AS timestamptz) - CAST(:lost AS interval))
       OR started_at < CAST(:now AS timestamptz) - CAST(:lease AS interval)
    ORDER BY course_id
    """
)


async def lost_applications(
    session: AsyncSession, now: datetime, lost_after: timedelta, lease: timedelta
) -> list[tuple[int, datetime]]:
    """(course, requested_at) of the applications queued for longer than `lost_after`, or whose lease ran out."""
    rows = await session.execute(_LOST, {"now": now, "lost": lost_after, "lease": lease})
    return [(r.course_id, r.requested_at) for r in rows]


# --- the cron's look for due dates that passed ----------------------------------------------------------------

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


@dataclass(frozen=True, slots=True)
class PassedDue:
    """A course's assessments whose due date passed (or that changed since with one past); `fell_due`: a due date
    passed in the window."""

    course_id: int
    assessment_ids: list[int]
    fell_due: bool


async def passed_due(session: AsyncSession, since: datetime | None, now: datetime) -> list[PassedDue]:
    """By course with a missing deduction on: the assessments whose due date (their own or an override's) passed in
    (since, now] (``since`` None: ever), or that were created or changed since with a past due date."""
    rows = await session.execute(_PASSED, {"since": since, "now": now})
    return [PassedDue(r.course_id, list(r.assessments), bool(r.fell_due)) for r in rows]


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


async def new_learners(session: AsyncSession, since: datetime) -> list[tuple[int, list[int]]]:
    """(course, enrollment ids) of the learners enrolled or changed since `since` in courses with a missing
    deduction on."""
    rows = await session.execute(_NEW_LEARNERS, {"since": since})
    return [(r.course_id, list(r.learners)) for r in rows]


async def read_as_of_one_moment(session: AsyncSession) -> None:
    """Run the session's transaction (not begun yet) at REPEATABLE READ: everything it reads is as of one moment, and
    a row written meanwhile by another transaction makes its update fail (a serialization failure)."""
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
