"""Learners' attempts at assessments."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.api.deps import AttemptWrite, Cursor, Limit, ResultScope, ScoreRead, SessionDep
from services.api.errors import CONFLICT
from services.api.schemas.common import PageOut
from services.api.schemas.records import AttemptOut
from shared.services import attempts
from shared.services.inputs import AttemptIn, AttemptStatus, ExternalId

router = APIRouter(prefix="/v1/courses/{course}/assessments/{assessment}/attempts", tags=["attempts"])


@router.get("")
async def list_attempts(
    session: SessionDep,
    ref: ScoreRead,
    scope: ResultScope,
    assessment: ExternalId,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: AttemptStatus | None = Query(default=None),
) -> PageOut[AttemptOut]:
    """Attempts at the assessment, optionally by status."""
    page = await attempts.list_attempts(session, ref, assessment, limit, cursor, status, scope)
    return PageOut(items=[AttemptOut.model_validate(a) for a in page.items], next_cursor=page.next_cursor)


@router.put("/{learner}", responses=CONFLICT)
async def put_attempt(
    session: SessionDep, ref: AttemptWrite, assessment: ExternalId, learner: ExternalId, body: AttemptIn
) -> AttemptOut:
    """Create a learner's attempt or move its status: to_be_taken -> in_progress -> submitted ->
    pending_grading -> graded, or cancelled before graded. Other moves are 409."""
    return AttemptOut.model_validate(await attempts.put_attempt(session, ref, assessment, learner, body))


@router.get("/{learner}")
async def get_attempt(
    session: SessionDep, ref: ScoreRead, scope: ResultScope, assessment: ExternalId, learner: ExternalId
) -> AttemptOut:
    """One learner's attempt."""
    return AttemptOut.model_validate(await attempts.get_attempt(session, ref, assessment, learner, scope))
