"""Attempts and the rule for how their status may move."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.anonymity import service as anonymity
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, InvalidTransition, NotFound
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.core.statuses import ATTEMPT_MOVES, HANDED_IN_STATUSES
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.courses.service.enrollments import get_enrollment
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import followup, grades
from gradeflow.scores.commands import AttemptIn
from gradeflow.scores.repository import attempts as repository
from gradeflow.scores.repository.attempts import AttemptRow, CurrentAttempt


def check_transition(current: str, target: str) -> None:
    moves = ATTEMPT_MOVES[current]
    if current != target and target not in moves:
        allowed = ", ".join(sorted(moves)) or "none"
        raise InvalidTransition(f"An attempt cannot go from {current} to {target} (allowed: {allowed}).")


@dataclass(frozen=True, slots=True)
class AttemptView(AttemptRow):
    """An attempt as the caller sees it, with its candidate label (anonymous assessments, once numbered)."""

    candidate: str | None


async def put_attempt(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    body: AttemptIn,
    actor: str,
) -> AttemptView:
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
    current = await repository.lock_current(session, view.assessment.id, enrollment.id)
    if current is not None and body.status == "in_progress" and current.status in HANDED_IN_STATUSES:
        attempt_id = await _start_again(session, ref, assessment, learner, current, body, actor)
    else:
        attempt_id = await _move(
            session, ref, assessment, learner, (view.assessment.id, enrollment.id), current, body, actor
        )
    changed = current is None or current.status != body.status
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
    key: tuple[int, int],
    current: CurrentAttempt | None,
    body: AttemptIn,
    actor: str,
) -> int:
    status = None if current is None else current.status
    if status is not None:
        check_transition(status, body.status)
    # A submission is stamped when it arrives unless the LMS says when it was handed in (the late policy reads it).
    stamp = clock.now() if body.status == "submitted" else None
    attempt_id = await repository.move(
        session, *key, body.status, body.started_at, body.submitted_at, stamp, moved=status != body.status
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
    return attempt_id


async def _start_again(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learner: str,
    current: CurrentAttempt,
    body: AttemptIn,
    actor: str,
) -> int:
    allowed, number = current.allowed, current.attempt_number
    if number >= allowed:
        raise Conflict(
            f"Learner {learner!r} was allowed {allowed} attempt{'s' if allowed != 1 else ''} at {assessment!r} and"
            f" has taken {number}; an override can grant extra attempts.",
            extra={"allowed_attempts": allowed, "attempt_number": number},
        )
    await repository.start_again(session, current.id, body.started_at or clock.now())
    await audit.record(
        session,
        ref.organization_id,
        ref.id,
        actor,
        "attempt.started_again",
        learner=learner,
        assessment=assessment,
        old={"status": current.status, "entered": current.entered, "attempt_number": number},
        new={"status": "in_progress", "attempt_number": number + 1, "allowed_attempts": allowed},
    )
    return current.id


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
    was = await repository.lock_excused(session, view.assessment.id, enrollment.id)
    if bool(was) == excused:
        return
    attempt_id = await repository.set_excused(session, view.assessment.id, enrollment.id, excused)
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
    await late_results.apply(session, ref.id, attempt_ids=[attempt_id], actor=actor)
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
) -> AttemptView:
    """One learner's attempt; a concealed caller (`hide`) names and sees them by candidate label on an
    anonymous assessment."""
    named = await anonymity.resolve(session, ref, hide, assessment, learner)
    row = await repository.attempt_of(session, ref.id, assessment, named.learner, scope)
    if row is None:
        raise NotFound(f"Learner {learner!r} has no attempt at {assessment!r}.")
    await anonymity.keep_numbers(session, named.mask)
    return named.mask.rows([_candidate(row)])[0]


async def list_attempts(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    limit: int,
    cursor: str | None,
    status: str | None,
    scope: list[str] | None = None,
    hide: bool = False,
) -> Page[AttemptView]:
    """Attempts at the assessment (candidate labels for a concealed caller on an anonymous one)."""
    view = await get_assessment(session, ref, assessment)
    labels = await anonymity.view(session, ref, hide, assessment)
    # Hidden from the caller: listed and paged by candidate number (attempt ids follow the roster's order).
    rows = await repository.attempts_at(
        session, view.assessment.id, last_id_after(cursor), limit + 1, status, scope, labels.hidden
    )
    page = page_of(rows, limit, lambda r: r.number if labels.hidden else r.id)
    await anonymity.keep_numbers(session, labels)
    return Page(labels.rows(_candidate(r) for r in page.items), page.next_cursor)


def _candidate(row: AttemptRow) -> AttemptView:
    """The attempt with its candidate label (anonymous assessments, once numbered)."""
    return AttemptView(**asdict(row), candidate=None if row.number is None else anonymity.label(row.number))
