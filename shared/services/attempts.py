"""Attempts and the rule for how their status may move."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared import jobs
from shared.errors import InvalidTransition, NotFound
from shared.services import audit, followup, grades
from shared.services.access import IN_SCOPE, CourseRef
from shared.services.assessments import get_assessment
from shared.services.enrollments import get_enrollment
from shared.services.inputs import AttemptIn
from shared.services.paging import Page, last_id_after, page_of

# Where an attempt may go from each status. A new attempt may start in any status.
TRANSITIONS: dict[str, frozenset[str]] = {
    "to_be_taken": frozenset({"in_progress", "submitted", "cancelled"}),
    "in_progress": frozenset({"submitted", "cancelled"}),
    "submitted": frozenset({"pending_grading", "graded", "cancelled"}),
    "pending_grading": frozenset({"graded", "cancelled"}),
    "graded": frozenset({"pending_grading"}),  # re-marking reopens it
    "cancelled": frozenset(),
}


def check_transition(current: str, target: str) -> None:
    if current != target and target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise InvalidTransition(f"An attempt cannot go from {current} to {target} (allowed: {allowed}).")


_SELECT = """
    SELECT t.id, e.external_id AS learner, a.external_id AS assessment, t.status, t.earned, t.possible,
           t.excused, t.started_at, t.submitted_at, t.created_at, t.updated_at
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id JOIN assessments a ON a.id = t.assessment_id
"""


async def put_attempt(
    session: AsyncSession, ref: CourseRef, assessment: str, learner: str, body: AttemptIn, actor: str
) -> dict[str, Any]:
    """Create the learner's attempt or move it to a new status (409 on an illegal move); a new
    status is audited (`attempt.status_changed`)."""
    view = await get_assessment(session, ref, assessment)
    enrollment = await get_enrollment(session, ref, learner)
    key = {"a": view.assessment.id, "e": enrollment.id}
    current = await session.scalar(
        text("SELECT status FROM attempts WHERE assessment_id = :a AND enrollment_id = :e FOR UPDATE"), key
    )
    if current is not None:
        check_transition(current, body.status)
    await session.execute(
        text(
            """
            INSERT INTO attempts (assessment_id, enrollment_id, status, started_at, submitted_at)
            VALUES (:a, :e, :status, :started, :submitted)
            ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET
              status = excluded.status,
              started_at = coalesce(excluded.started_at, attempts.started_at),
              submitted_at = coalesce(excluded.submitted_at, attempts.submitted_at),
              updated_at = now()
            """
        ),
        {**key, "status": body.status, "started": body.started_at, "submitted": body.submitted_at},
    )
    if current != body.status:
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "attempt.status_changed",
            learner=learner,
            assessment=assessment,
            old=None if current is None else {"status": current},
            new={"status": body.status},
        )
    await session.commit()
    return await get_attempt(session, ref, assessment, learner)


async def set_excused(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    excused: bool,
    actor: str,
) -> None:
    """Excuse the learner from the assessment, or clear it (idempotent), at any time: the flag is
    independent of the attempt's status and scores, which stay as they are. A learner without an
    attempt gets one (to_be_taken) to carry it. A change is audited (`result.excused` /
    `result.unexcused`) and the learner's stored grade refreshed, as after a score write."""
    view = await get_assessment(session, ref, assessment)
    enrollment = await get_enrollment(session, ref, learner)
    key = {"a": view.assessment.id, "e": enrollment.id}
    was = await session.scalar(
        text("SELECT excused FROM attempts WHERE assessment_id = :a AND enrollment_id = :e FOR UPDATE"), key
    )
    if bool(was) == excused:
        return
    await session.execute(
        text(
            """
            INSERT INTO attempts (assessment_id, enrollment_id, status, excused) VALUES (:a, :e, 'to_be_taken', :x)
            ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET excused = excluded.excused, updated_at = now()
            """
        ),
        {**key, "x": excused},
    )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "result.excused" if excused else "result.unexcused",
        learner=learner,
        assessment=assessment,
        old={"excused": bool(was)},
        new={"excused": excused},
    )
    # As a single score write does: the learner is marked stale here, the worker refreshes (and
    # announces grade.changed) a moment later, and every grade read refreshes what is stale first.
    await grades.mark_stale(session, ref.id, [enrollment.id])
    await session.commit()
    await followup.ask(queue, ref.id)


async def get_attempt(
    session: AsyncSession, ref: CourseRef, assessment: str, learner: str, scope: list[str] | None = None
) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                text(_SELECT + " WHERE a.course_id = :c AND a.external_id = :a AND e.external_id = :e AND " + IN_SCOPE),
                {"c": ref.id, "a": assessment, "e": learner, "scope": scope},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Learner {learner!r} has no attempt at {assessment!r}.")
    return dict(row)


async def list_attempts(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    limit: int,
    cursor: str | None,
    status: str | None,
    scope: list[str] | None = None,
) -> Page[dict[str, Any]]:
    view = await get_assessment(session, ref, assessment)
    rows = (
        (
            await session.execute(
                text(
                    _SELECT
                    + " WHERE t.assessment_id = :a AND t.id > :after AND "
                    + IN_SCOPE
                    + (" AND t.status = :status" if status else "")
                    + " ORDER BY t.id LIMIT :lim"
                ),
                {
                    "a": view.assessment.id,
                    "after": last_id_after(cursor),
                    "lim": limit + 1,
                    "status": status,
                    "scope": scope,
                },
            )
        )
        .mappings()
        .all()
    )
    return page_of([dict(r) for r in rows], limit, lambda r: r["id"])
