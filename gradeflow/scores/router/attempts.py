"""Learners' attempts at assessments, and excusing a learner from an assessment."""

from __future__ import annotations

from fastapi import APIRouter, Query

from gradeflow.anonymity import service as anonymity
from gradeflow.core.commands import ExternalId
from gradeflow.core.statuses import AttemptStatus
from gradeflow.courses.schemas.records import AttemptOut
from gradeflow.http.deps import (
    AttemptWrite,
    Cursor,
    Limit,
    PrincipalDep,
    RedisDep,
    ResultScope,
    ScoreRead,
    SessionDep,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.scores.commands import AttemptIn
from gradeflow.scores.service import attempts

router = APIRouter(prefix="/v1/courses/{course}/assessments/{assessment}", tags=["attempts"])


@router.get("/attempts")
async def list_attempts(
    session: SessionDep,
    principal: PrincipalDep,
    ref: ScoreRead,
    scope: ResultScope,
    assessment: ExternalId,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: AttemptStatus | None = Query(default=None),
) -> PageOut[AttemptOut]:
    """Attempts at the assessment, optionally by status. On an anonymous assessment graders see
    candidate labels as `learner`."""
    hide = anonymity.concealed(principal, ref)
    page = await attempts.list_attempts(session, ref, assessment, limit, cursor, status, scope, hide)
    return PageOut(items=[AttemptOut.model_validate(a) for a in page.items], next_cursor=page.next_cursor)


@router.put("/attempts/{learner}", responses=CONFLICT)
async def put_attempt(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AttemptWrite,
    assessment: ExternalId,
    learner: ExternalId,
    body: AttemptIn,
) -> AttemptOut:
    """Create a learner's attempt or move its status: to_be_taken -> in_progress -> submitted ->
    pending_grading -> graded, or cancelled before graded. Other moves are 409. A cancelled attempt
    counts as not attempted (as if the learner had no attempt); to take an assessment out of a
    learner's grade, excuse them (`PUT .../excused/{learner}`). A submission without `submitted_at` is
    stamped now. A change of status is audited (`attempt.status_changed`).

    Another try: moving a submitted, pending or graded attempt back to `in_progress` starts the
    learner's next attempt (`attempt_number` + 1) when `attempt_number` < their `allowed_attempts`
    (the assessment's plus their overrides' extra attempts), else 409 naming how many they were
    allowed. The previous result is kept on the audit entry (`attempt.started_again`) and its scores
    stay until the new attempt is scored; meanwhile the result counts as not graded."""
    view = await attempts.put_attempt(session, queue, ref, assessment, learner, body, actor(principal))
    return AttemptOut.model_validate(view)


@router.get("/attempts/{learner}")
async def get_attempt(
    session: SessionDep,
    principal: PrincipalDep,
    ref: ScoreRead,
    scope: ResultScope,
    assessment: ExternalId,
    learner: ExternalId,
) -> AttemptOut:
    """One learner's attempt (`excused` says whether they are excused from the assessment). On an
    anonymous assessment a grader names the learner by candidate label."""
    hide = anonymity.concealed(principal, ref)
    return AttemptOut.model_validate(await attempts.get_attempt(session, ref, assessment, learner, scope, hide))


@router.put("/excused/{learner}")
async def excuse(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AttemptWrite,
    assessment: ExternalId,
    learner: ExternalId,
) -> AttemptOut:
    """Excuse the learner from the assessment (no body; idempotent; planners and API keys). Allowed
    at any time, before or after grading: the attempt's status and scores stay as they are, and a
    learner with no attempt gets one (`to_be_taken`) that carries the flag. Every preset then leaves
    the result out of the course grade as it defines excused work (docs/grading.md), and the
    gradebook, results table, reports and, once published, the learner show it as `Excused`. The
    course grade is refreshed a moment later (and before any read of it), with a `grade.changed`
    event if it changes. Audited as `result.excused`. Answers the attempt."""
    await attempts.set_excused(session, queue, ref, assessment, learner, True, actor(principal))
    return AttemptOut.model_validate(await attempts.get_attempt(session, ref, assessment, learner))


@router.delete("/excused/{learner}", status_code=204)
async def unexcuse(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AttemptWrite,
    assessment: ExternalId,
    learner: ExternalId,
) -> None:
    """Clear the learner's excuse for the assessment (idempotent: 204 whether or not they were
    excused). The result counts again as its scores say. Audited as `result.unexcused` when it
    changes something."""
    await attempts.set_excused(session, queue, ref, assessment, learner, False, actor(principal))
