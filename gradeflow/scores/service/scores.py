"""Scores: one set-based path for a single PUT and for batches of 10,000 rows.

Rows are resolved against the course's assessments, learners and items in one statement; every bad
row is reported with its index; only when all rows are good are they written (all or nothing).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gradeflow import jobs
from gradeflow.access.identity import CourseRef
from gradeflow.access.service import access
from gradeflow.access.service.access import Action
from gradeflow.access.service.auth import Principal
from gradeflow.anonymity import service as anonymity
from gradeflow.audit import service as audit
from gradeflow.core import clock
from gradeflow.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from gradeflow.core.paging import Page, last_id_after, page_of
from gradeflow.core.statuses import AttemptStatus, LateStatus
from gradeflow.courses.service.assessments import get_assessment
from gradeflow.db.grouped import GroupCommit
from gradeflow.deadlines.service import late_results
from gradeflow.grades.service import followup, grades
from gradeflow.publishing.service import visibility as published
from gradeflow.scores.commands import ScoreIn, ScoreRow
from gradeflow.scores.repository import scores as repository
from gradeflow.scores.repository.scores import AttemptScore, ItemScore, RowError, SingleScore, StagedChange

MAX_REPORTED_ERRORS = 100


@dataclass(frozen=True, slots=True)
class ScoreView:
    """A learner's score as staff see it (the learner as the caller named them)."""

    assessment: str
    learner: str
    status: AttemptStatus
    earned: Decimal | None  # the result: the entered score less the late policy's deduction
    possible: Decimal | None
    entered: Decimal | None
    points_deducted: Decimal | None
    late_status: LateStatus | None
    source: str | None
    computed: Decimal | None  # the automatic score an override replaced
    confirmed: bool
    confirmed_by: str | None
    final: Decimal | None  # the result once grading is confirmed (None before)
    excused: bool
    graded_by: str | None
    graded_at: datetime | None
    publication: published.PublicationState
    items: list[ItemScore] | None  # with item detail (a single score of an assessment with items)


# The courses API keys write single scores to, by (organization, external id): their id. A course is never
# deleted nor given another external id, and an API key may write to every course of its organization, so
# the course a key names is looked up once per process; the single write checks it again in its statement.
_KEY_COURSES: dict[tuple[int, str], int] = {}
_KEY_COURSES_MAX = 100_000


def known_course(principal: Principal, course: str) -> CourseRef | None:
    """The course an API key names, when this process has resolved it before (no look-up); else None."""
    known = _KEY_COURSES.get((principal.organization_id, course)) if principal.is_key else None
    return None if known is None else CourseRef(known, principal.organization_id, course, frozenset())


async def course_to_score(session: AsyncSession, principal: Principal, course: str) -> CourseRef:
    """The course a single score is written to, checked for score.write (access.course_access: 404 for a
    course the caller may not see, 403 without the role), remembered for API keys."""
    known = known_course(principal, course)
    if known is not None:
        return known
    ref = await access.course_access(session, principal, course, Action.SCORE_WRITE)
    if principal.is_key:
        if len(_KEY_COURSES) >= _KEY_COURSES_MAX:
            _KEY_COURSES.clear()
        _KEY_COURSES[(principal.organization_id, course)] = ref.id
    return ref


async def stage(session: AsyncSession, ref: CourseRef, rows: list[ScoreRow], actor: str) -> list[RowError]:
    """Resolve rows against the course into the scratch table; return every bad row (nothing written).

    Once per transaction: the scratch table empties on commit.
    """
    columns: dict[str, list[Any]] = {
        "rn": list(range(len(rows))),
        "assessment": [r.assessment for r in rows],
        "learner": [r.learner for r in rows],
        "item": [r.item for r in rows],
        "earned": [r.earned for r in rows],
        "possible": [r.possible for r in rows],
        "source": [r.source for r in rows],
        "scored_by": [r.graded_by or actor for r in rows],
    }
    await repository.stage(session, ref.id, columns)
    return await repository.staged_problems(session, MAX_REPORTED_ERRORS)


async def staged_diff(session: AsyncSession) -> list[StagedChange]:
    """What applying the staged rows would change: create, change or unchanged, with old and new."""
    return await repository.staged_changes(session)


async def apply_staged(
    session: AsyncSession, ref: CourseRef, actor: str, any_items: bool, defer_grades: bool = False
) -> None:
    """Write the staged rows: audit entries, scores, derived totals, and the learners' stored grades
    (refreshed here, or with `defer_grades` marked stale for the worker or the next grade read)."""
    now = clock.now()
    await repository.audit_staged(session, audit.stamp(ref.organization_id, ref.id, actor))
    await repository.write_staged_totals(session, now)
    if any_items:
        touched = await repository.write_staged_items(session, now)
        await derive_totals(session, touched)
    # A new score can end a missing result or be a late one: the course's late policy, on these attempts only.
    # Without a policy a score changes no late figure (lateness follows submission times, due dates and
    # the excused flag, whose own writes apply it), so the application is skipped.
    written, late_policy = await repository.staged_attempts(session, ref.id)
    if late_policy:
        await late_results.apply(session, ref.id, attempt_ids=written, actor=actor)
    if defer_grades:
        await repository.mark_staged_stale(session, ref.id)
        return
    await grades.refresh_learners(session, ref.id, await repository.staged_learners(session))


async def derive_totals(session: AsyncSession, attempt_ids: list[int]) -> None:
    """Recompute these attempts' totals and status from their item scores."""
    await repository.derive_totals(session, attempt_ids, clock.now())


async def write_rows(
    session: AsyncSession, ref: CourseRef, rows: list[ScoreRow], actor: str, defer_grades: bool = False
) -> list[RowError]:
    """Stage and, when every row is good, write. Returns the row errors (nothing written then)."""
    errors = await stage(session, ref, rows, actor)
    if not errors:
        await apply_staged(session, ref, actor, any(r.item is not None for r in rows), defer_grades)
    return errors


async def write_batch(session: AsyncSession, ref: CourseRef, rows: list[ScoreRow], actor: str) -> int:
    """Write a batch, all rows or none; how many were written (does not commit: the caller commits it with
    its idempotency record)."""
    errors = await write_rows(session, ref, rows, actor)
    if errors:
        await session.rollback()
        raise ValidationFailed([FieldError(f"/scores/{e.row}/{e.field}", e.detail) for e in errors])
    return len(rows)


async def put_score(
    session: AsyncSession,
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    body: ScoreIn,
    actor: str,
) -> ScoreView:
    """Set one learner's score for an assessment (idempotent) and return it. The learner's course
    grade is refreshed a moment later (and before any read of it).

    The common case (put_common) is one statement; anything else, and every error, takes the general
    path, which writes the same rows."""
    if not NOT_COMMON.get():
        view = await put_common(session, queue, ref, assessment, learner, body, actor)
        if view is not None:
            return view
    base = {"assessment": assessment, "learner": learner, "source": body.source, "graded_by": body.graded_by}
    if body.items is not None:
        rows = [ScoreRow(item=i.item, earned=i.earned, possible=i.possible, **base) for i in body.items]
    else:
        assert body.earned is not None
        rows = [ScoreRow(earned=body.earned, possible=body.possible, **base)]
    errors = await write_rows(session, ref, rows, actor, defer_grades=True)
    if errors:
        await session.rollback()
        _raise_for_single(errors, body)
    score = await get_score(session, ref, assessment, learner)
    await session.commit()
    await followup.ask(queue, ref.id)
    return score


# Set (by the score PUT's fast lane) when put_common has just found that a request is not the common case:
# put_score then goes straight to the general path rather than asking the database the same again.
NOT_COMMON: ContextVar[bool] = ContextVar("scores_not_common", default=False)


def score_writes(engine: AsyncEngine) -> GroupCommit[SingleScore, AttemptScore | None]:
    """The process's group commit of put_common's writes."""
    return GroupCommit("score_put", engine, repository.put_scores, SingleScore.key)


async def put_common(
    db: AsyncSession | GroupCommit[SingleScore, AttemptScore | None],
    queue: jobs.Queue,
    ref: CourseRef,
    assessment: str,
    learner: str,
    body: ScoreIn,
    actor: str,
) -> ScoreView | None:
    """put_score's common case as one statement (repository.put_scores): an assessment-level score of an
    assessment without items, in a course without a late policy, the attempt not cancelled. Returns the
    score as put_score does, or None when it is not the common case (nothing written).

    `db`: the request's session (committed after the write), or the process's group commit of these writes
    (`score_writes`) for a caller that has none (the score PUT's fast lane)."""
    if body.items is not None or body.earned is None:
        return None
    single = SingleScore(
        ref.id,
        ref.organization_id,
        ref.external_id,
        assessment,
        learner,
        body.earned,
        body.possible,
        body.source,
        body.graded_by or actor,
        audit.stamp(ref.organization_id, ref.id, actor),
        clock.now(),
    )
    if isinstance(db, GroupCommit):
        written = await db.put(single)
    else:
        written = await repository.put_single(db, single)
    if written is None:
        return None
    if isinstance(db, AsyncSession) and db.in_transaction():
        await db.commit()  # the write, when it ran in the session; else what resolving the caller wrote
    await followup.ask(queue, ref.id)
    return _score_view(assessment, learner, written, None)


def _raise_for_single(errors: list[RowError], body: ScoreIn) -> None:
    first = errors[0]
    if first.code == "unknown" and first.field in ("assessment", "learner"):
        raise NotFound(f"{first.field.capitalize()}: {first.detail}.")
    if first.code == "cancelled":
        raise Conflict("The attempt is cancelled and takes no score.")
    if first.code == "mismatch":
        pointer = "/earned" if body.items is None else "/items"
        raise ValidationFailed.one(pointer, first.detail)
    raise ValidationFailed([FieldError(f"/items/{e.row}/item", e.detail) for e in errors])


async def get_score(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    learner: str,
    scope: list[str] | None = None,
    hide: bool = False,
) -> ScoreView:
    """The learner's attempt at the assessment with its total and item scores (within `scope`, the
    names of a grader who sees only allocated work; a concealed caller, `hide`, names and sees the
    learner of an anonymous assessment by candidate label)."""
    named = await anonymity.resolve(session, ref, hide, assessment, learner)
    found = await repository.score_of(session, ref.id, assessment, named.learner, scope)
    if found.assessment_id is None:
        raise NotFound(f"Assessment {assessment!r} not found in this course.")
    if found.enrollment_id is None:
        raise NotFound(f"Learner {learner!r} is not enrolled in this course.")
    if found.score is None or not found.in_scope:
        raise NotFound(
            f"Learner {learner!r} has no attempt at {assessment!r}" + (" allocated to you." if scope else ".")
        )
    items = None
    if found.has_items:
        items = await repository.item_scores_of(session, found.score.id, found.assessment_id)
    await anonymity.keep_numbers(session, named.mask)
    return _score_view(assessment, learner, found.score, items)


def _score_view(assessment: str, learner: str, attempt: AttemptScore, items: list[ItemScore] | None) -> ScoreView:
    confirmed = attempt.confirmed_at is not None
    # Marks are visible to staff at once; the result is final only once grading is confirmed.
    final_ready = attempt.status == "graded" and (confirmed or not attempt.needs_confirmation)
    return ScoreView(
        assessment=assessment,
        learner=learner,
        status=attempt.status,
        earned=attempt.earned,
        possible=attempt.possible,
        entered=attempt.entered,
        points_deducted=attempt.points_deducted,
        late_status=attempt.late_status,
        source=attempt.source,
        computed=attempt.computed_earned,
        confirmed=confirmed,
        confirmed_by=attempt.confirmed_by,
        final=attempt.earned if final_ready else None,
        excused=attempt.excused,
        graded_by=attempt.scored_by,
        graded_at=attempt.scored_at,
        publication=published.state(attempt.published_at, attempt.changed_since_published),
        items=items,
    )


async def list_scores(
    session: AsyncSession,
    ref: CourseRef,
    assessment: str,
    limit: int,
    cursor: str | None,
    scope: list[str] | None = None,
    hide: bool = False,
) -> Page[ScoreView]:
    """Assessment-level scores of every attempt at the assessment (candidate labels for a concealed
    caller on an anonymous one)."""
    view = await get_assessment(session, ref, assessment)
    labels = await anonymity.view(session, ref, hide, assessment)
    rows = await repository.scores_at(
        session, view.assessment.id, last_id_after(cursor), limit + 1, scope, labels.hidden
    )
    page = page_of(rows, limit, lambda r: r.number if labels.hidden else r.id)
    await anonymity.keep_numbers(session, labels)
    return Page([_score_view(assessment, labels.show(r.learner or ""), r, None) for r in page.items], page.next_cursor)
