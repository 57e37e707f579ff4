"""A course's late and missing submission policy (Canvas's ``LatePolicy``): read, replace, and the recompute a change
makes (shared/services/late_results.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import clock, jobs
from shared.errors import ValidationFailed
from shared.grading.late_policy import LatePolicy
from shared.services import audit, followup, late_results
from shared.services.access import CourseRef

FIELDS = tuple(LatePolicy.model_fields)
ENABLED = ("missing_submission_deduction_enabled", "late_submission_deduction_enabled")
# Presets without a late policy (Open edX has none): any enabled flag is refused with 422.
NO_LATE_POLICY = frozenset({"openedx"})

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
    """The first enabled deduction of the course's late policy (its field name), None when it deducts nothing."""
    row = (await session.execute(_SELECT, {"c": course_id})).mappings().first()
    return None if row is None else next((f for f in ENABLED if row[f]), None)


def _view(row: Any) -> dict[str, Any]:
    if row is None:
        return {**LatePolicy().model_dump(), "revision": 0, "updated_by": None, "updated_at": None}
    return dict(row)


async def get(session: AsyncSession, ref: CourseRef) -> dict[str, Any]:
    """The course's late policy (all off, revision 0, until someone sets one)."""
    return _view((await session.execute(_SELECT, {"c": ref.id})).mappings().first())


async def put(session: AsyncSession, queue: jobs.Queue, ref: CourseRef, body: LatePolicy, actor: str) -> dict[str, Any]:
    """Replace the course's late policy (revision + 1, audited ``late_policy.updated``) and recompute every result of
    the course under it (each changed result audited ``result.late_policy``); unchanged: nothing happens.

    422 under a preset without a late policy (``openedx``) for any enabled flag, naming it."""
    preset = await course_preset(session, ref.id)
    if preset in NO_LATE_POLICY:
        for field in (*ENABLED, "late_submission_minimum_percent_enabled"):
            if getattr(body, field):
                raise ValidationFailed.one(
                    f"/{field}", f"The course grades with the {preset!r} preset, which has no late policy."
                )
    # One change at a time per course (the row may not exist yet: lock the course's).
    await session.execute(text("SELECT 1 FROM courses WHERE id = :c FOR NO KEY UPDATE"), {"c": ref.id})
    current = (await session.execute(_SELECT, {"c": ref.id})).mappings().first()
    new = body.model_dump()
    old = None if current is None else {f: current[f] for f in FIELDS}
    if (old or LatePolicy().model_dump()) == new:
        return _view(current)
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
    await late_results.apply(session, ref.id, actor=actor)
    result = await get(session, ref)
    await session.commit()
    await followup.ask(queue, ref.id)
    return result


_PASSED = text(
    """
    SELECT a.course_id, array_agg(a.id ORDER BY a.id) AS assessments
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
    rows = await session.execute(_PASSED, {"since": since, "now": now})
    return [(r.course_id, list(r.assessments)) for r in rows]


async def mark_missing(
    sessionmaker: async_sessionmaker[AsyncSession], queue: jobs.Queue, since: datetime | None, now: datetime
) -> int:
    """Apply the late policy to the assessments whose due dates passed in (since, now], and to learners enrolled
    since, in courses with a missing deduction (one transaction per course and kind; idempotent: only what changes
    is written and audited); ask for each changed course's follow-up. How many learners' results changed."""
    async with sessionmaker() as session:
        # (course, assessments, learners): one of the two selects
        work: list[tuple[int, list[int] | None, list[int] | None]] = [
            (course_id, ids, None) for course_id, ids in await passed_due(session, since, now)
        ]
        if since is not None:  # else every past due date is swept above, for every learner
            rows = await session.execute(_NEW_LEARNERS, {"since": since})
            work += [(r.course_id, None, list(r.learners)) for r in rows]
    changed = 0
    for course_id, assessment_ids, enrollment_ids in work:
        async with sessionmaker() as session:
            learners = await late_results.apply_at(
                session, course_id, now, assessment_ids=assessment_ids, enrollment_ids=enrollment_ids
            )
            await session.commit()
        if learners:
            changed += len(learners)
            await followup.ask(queue, course_id)
    return changed
