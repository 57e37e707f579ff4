"""Attempts and the rule for how their status may move."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.service.access import IN_SCOPE, CourseRef
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, InvalidTransition, NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.courses.service.enrollments import get_enrollment
from gradeflow.deadlines.service import due_dates, late_results
from gradeflow.grades.service import followup, grades
from gradeflow.marking.service import anonymity
from gradeflow.scores.commands import AttemptIn

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


_SELECT = f"""
    SELECT t.id, e.external_id AS learner, a.external_id AS assessment, t.status, t.earned, t.possible,
           t.entered, t.points_deducted, t.late_status, t.excused, t.started_at, t.submitted_at, t.created_at,
           t.updated_at,
           t.attempt_number, {due_dates.allowed_attempts()} AS allowed_attempts,
           (SELECT n.number FROM candidate_numbers n
            WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id) AS candidate
    FROM attempts t JOIN enrollments e ON e.id = t.enrollment_id JOIN assessments a ON a.id = t.assessment_id
    {due_dates.overrides_join("t.assessment_id", "t.enrollment_id")}
"""  # noqa: S608 (constant SQL)


# The attempt's candidate number (anonymous assessments: what a concealed caller's lists are ordered by).
_NUMBER = (
    "(SELECT n.number FROM candidate_numbers n"
    " WHERE n.assessment_id = t.assessment_id AND n.enrollment_id = t.enrollment_id)"
)

# A handed-in attempt moved back to in_progress is the learner's next attempt (when they have one left).
_HANDED_IN = frozenset({"submitted", "pending_grading", "graded"})
# Work the late policy marked missing is graded by the policy, not handed in: the learner may still hand it in
# (late), so its status for the moves below is the one it had (started or not).
_CURRENT = f"""
    SELECT t.id,
           CASE WHEN t.late_status = 'missing' AND t.entered IS NULL
                THEN CASE WHEN t.started_at IS NULL THEN 'to_be_taken' ELSE 'in_progress' END
                ELSE t.status END AS status,
           t.entered, t.attempt_number, {due_dates.allowed_attempts()} AS allowed
    FROM attempts t JOIN assessments a ON a.id = t.assessment_id
    {due_dates.overrides_join("t.assessment_id", "t.enrollment_id")}
    WHERE t.assessment_id = :a AND t.enrollment_id = :e FOR UPDATE OF t
"""  # noqa: S608 (constant SQL)


async def put_attempt(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    body: AttemptIn,
    actor: str,
) -> dict[str, Any]:
    """Create the learner's attempt or move it to a new status (409 on an illegal move); a new
    status is audited (`attempt.status_changed`). A submission without a time is stamped now.

    Moving a handed-in attempt (submitted, pending grading, graded) back to in_progress starts the
    learner's next attempt when they have one left under their allowed attempts (due_dates: the
    assessment's plus their overrides' extra ones), else 409 naming how many they were allowed. The
    next attempt has the next number, starts at `started_at` (or now), has no submission time and no
    confirmation; the previous result stays on the audit entry (`attempt.started_again`) and its
    scores stay stored until the new attempt is scored (the latest attempt counts, as in Open edX),
    while it counts as not graded. The late policy is applied again to the attempt, and the
    learner's grade follows a moment later."""
    view = await get_assessment(session, ref, assessment)
    enrollment = await get_enrollment(session, ref, learner)
    key = {"a": view.assessment.id, "e": enrollment.id}
    current = (await session.execute(text(_CURRENT), key)).mappings().first()
    if current is not None and body.status == "in_progress" and current["status"] in _HANDED_IN:
        attempt_id = await _start_again(session, ref, assessment, learner, dict(current), body, actor)
    else:
        attempt_id = await _move(session, ref, assessment, learner, key, current, body, actor)
    changed = current is None or current["status"] != body.status
    # A submission time or a status can make the result late or missing, or no longer so.
    touched = await late_results.apply(session, ref.id, attempt_ids=[attempt_id], actor=actor)
    if changed:
        await grades.mark_stale(session, ref.id, [enrollment.id])
    await session.commit()
    if changed or touched:
        await followup.ask(queue, ref.id)
    return await get_attempt(session, ref, assessment, learner)


async def _move(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learner: str,
    key: dict[str, int],
    current: Any,
    body: AttemptIn,
    actor: str,
) -> int:
    status = None if current is None else str(current["status"])
    if status is not None:
        check_transition(status, body.status)
    # A submission is stamped when it arrives unless the LMS says when it was handed in (the late policy reads it).
    stamp = clock.now() if body.status == "submitted" else None
    attempt_id = await session.scalar(
        text(
            """
            INSERT INTO attempts (assessment_id, enrollment_id, status, started_at, submitted_at)
            VALUES (:a, :e, :status, :started,
                    coalesce(CAST(:submitted AS timestamptz), CAST(:stamp AS timestamptz)))
            ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET
              status = excluded.status,
              started_at = coalesce(excluded.started_at, attempts.started_at),
              submitted_at = coalesce(CAST(:submitted AS timestamptz), attempts.submitted_at,
                                      CAST(:stamp AS timestamptz)),
              -- a confirmed missing result was the policy's, not this work's: handing in (or any move) reopens it
              confirmed_at = CASE WHEN :moved AND attempts.late_status = 'missing' AND attempts.entered IS NULL
                                  THEN NULL ELSE attempts.confirmed_at END,
              confirmed_by = CASE WHEN :moved AND attempts.late_status = 'missing' AND attempts.entered IS NULL
                                  THEN NULL ELSE attempts.confirmed_by END,
              updated_at = now()
            RETURNING id
            """
        ),
        {
            **key,
            "status": body.status,
            "started": body.started_at,
            "submitted": body.submitted_at,
            "stamp": stamp,
            "moved": status != body.status,
        },
    )
    if status != body.status:
        await audit.record(
            session,
            ref.organization_id,
            ref.id,
            actor,
            "attempt.status_changed",
            learner=learner,
            assessment=assessment,
            old=None if status is None else {"status": status},
            new={"status": body.status},
        )
    return int(attempt_id)


async def _start_again(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learner: str,
    current: dict[str, Any],
    body: AttemptIn,
    actor: str,
) -> int:
    allowed, number = int(current["allowed"]), int(current["attempt_number"])
    if number >= allowed:
        raise Conflict(
            f"Learner {learner!r} was allowed {allowed} attempt{'s' if allowed != 1 else ''} at {assessment!r} and"
            f" has taken {number}; an override can grant extra attempts.",
            extra={"allowed_attempts": allowed, "attempt_number": number},
        )
    await session.execute(
        text(
            """
            UPDATE attempts SET status = 'in_progress', attempt_number = attempt_number + 1, started_at = :started,
              submitted_at = NULL, confirmed_at = NULL, confirmed_by = NULL, updated_at = now()
            WHERE id = :id
            """
        ),
        {"id": current["id"], "started": body.started_at or clock.now()},
    )
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "attempt.started_again",
        learner=learner,
        assessment=assessment,
        old={"status": current["status"], "entered": current["entered"], "attempt_number": number},
        new={"status": "in_progress", "attempt_number": number + 1, "allowed_attempts": allowed},
    )
    return int(current["id"])


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
    attempt_id = await session.scalar(
        text(
            """
            INSERT INTO attempts (assessment_id, enrollment_id, status, excused) VALUES (:a, :e, 'to_be_taken', :x)
            ON CONFLICT (assessment_id, enrollment_id) DO UPDATE SET excused = excluded.excused, updated_at = now()
            RETURNING id
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
    # An excused result is never late or missing: the late policy again for this attempt.
    await late_results.apply(session, ref.id, attempt_ids=[int(attempt_id)], actor=actor)
    # As a single score write does: the learner is marked stale here, the worker refreshes (and
    # announces grade.changed) a moment later, and every grade read refreshes what is stale first.
    await grades.mark_stale(session, ref.id, [enrollment.id])
    await session.commit()
    await followup.ask(queue, ref.id)


async def get_attempt(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learner: str,
    scope: list[str] | None = None,
    hide: bool = False,
) -> dict[str, Any]:
    """One learner's attempt; a concealed caller (`hide`) names and sees them by candidate label on an
    anonymous assessment."""
    labels = await anonymity.learner(session, ref, hide, assessment, learner)
    row = (
        (
            await session.execute(
                text(_SELECT + " WHERE a.course_id = :c AND a.external_id = :a AND e.external_id = :e AND " + IN_SCOPE),
                {"c": ref.id, "a": assessment, "e": anonymity.real(labels, learner), "scope": scope},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Learner {learner!r} has no attempt at {assessment!r}.")
    return labels.rows([_candidate(row)])[0]


async def list_attempts(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    limit: int,
    cursor: str | None,
    status: str | None,
    scope: list[str] | None = None,
    hide: bool = False,
) -> Page[dict[str, Any]]:
    """Attempts at the assessment (candidate labels for a concealed caller on an anonymous one)."""
    view = await get_assessment(session, ref, assessment)
    labels = await anonymity.mask(session, ref, hide, assessment)
    # Hidden from the caller: listed and paged by candidate number (attempt ids follow the roster's order).
    key = _NUMBER if labels.hidden else "t.id"
    rows = (
        (
            await session.execute(
                text(
                    _SELECT
                    + f" WHERE t.assessment_id = :a AND {key} > :after AND "
                    + IN_SCOPE
                    + (" AND t.status = :status" if status else "")
                    + f" ORDER BY {key} LIMIT :lim"
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
    page = page_of(list(rows), limit, lambda r: r["candidate"] if labels.hidden else r["id"])
    return Page(labels.rows(_candidate(r) for r in page.items), page.next_cursor)


def _candidate(row: Any) -> dict[str, Any]:
    """The attempt with its candidate label (anonymous assessments, once numbered)."""
    number = row["candidate"]
    return {**dict(row), "candidate": None if number is None else anonymity.label(number)}
