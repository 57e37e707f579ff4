"""Scores: one learner at a time, or batches of up to 10,000 rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from gradeflow.access.identity import CourseRef
from gradeflow.access.service import idempotency
from gradeflow.anonymity import service as anonymity
from gradeflow.core.commands import ExternalId
from gradeflow.courses.schemas.records import BatchResult, ScoreOut
from gradeflow.http.deps import (
    Cursor,
    Limit,
    PrincipalDep,
    RedisDep,
    ResultScope,
    ScoreRead,
    ScoreWrite,
    SessionDep,
    SettingsDep,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.scores.commands import ScoreBatch, ScoreIn
from gradeflow.scores.service import scores

router = APIRouter(prefix="/v1/courses/{course}", tags=["scores"])


async def _score_write(course: str, session: SessionDep, principal: PrincipalDep) -> CourseRef:
    return await scores.course_to_score(session, principal, course)


# ScoreWrite, with the course an API key names remembered (the single write's common case reads nothing first).
SingleScoreWrite = Annotated[CourseRef, Depends(_score_write)]


@router.put("/assessments/{assessment}/scores/{learner}", responses=CONFLICT)
async def put_score(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: SingleScoreWrite,
    assessment: ExternalId,
    learner: ExternalId,
    body: ScoreIn,
) -> ScoreOut:
    """Set a learner's score (idempotent): `earned` for an assessment without items, `items` for
    one with items (the total is their sum; unscored items leave the attempt pending grading)."""
    view = await scores.put_score(session, queue, ref, assessment, learner, body, actor(principal))
    return ScoreOut.model_validate(view, from_attributes=True)


@router.get("/assessments/{assessment}/scores/{learner}")
async def get_score(
    session: SessionDep,
    principal: PrincipalDep,
    ref: ScoreRead,
    scope: ResultScope,
    assessment: ExternalId,
    learner: ExternalId,
) -> ScoreOut:
    """A learner's score with item detail. On an anonymous assessment a grader names the learner by
    candidate label."""
    hide = anonymity.concealed(principal, ref)
    view = await scores.get_score(session, ref, assessment, learner, scope, hide)
    return ScoreOut.model_validate(view, from_attributes=True)


@router.get("/assessments/{assessment}/scores")
async def list_scores(
    session: SessionDep,
    principal: PrincipalDep,
    ref: ScoreRead,
    scope: ResultScope,
    assessment: ExternalId,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PageOut[ScoreOut]:
    """Assessment-level scores of every attempt at the assessment (a grader: the attempts
    allocated to them; on an anonymous assessment, by candidate label)."""
    hide = anonymity.concealed(principal, ref)
    page = await scores.list_scores(session, ref, assessment, limit, cursor, scope, hide)
    return PageOut(
        items=[ScoreOut.model_validate(s, from_attributes=True) for s in page.items], next_cursor=page.next_cursor
    )


@router.post("/scores:batch", response_model=BatchResult, responses=CONFLICT)
async def batch_scores(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    ref: ScoreWrite,
    body: ScoreBatch,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=255,
            description="Replays the first response for 24 h; the same key with another body is 409.",
        ),
    ] = None,
) -> JSONResponse:
    """Write up to 10,000 scores (assessment or item level) all or nothing. Every bad row is
    reported by its JSON pointer and nothing is written."""
    scope = f"POST {request.url.path}"
    stored = await idempotency.run_once(
        session,
        principal.organization_id,
        idempotency_key,
        scope,
        idempotency.fingerprint(scope, await request.body()),
        timedelta(hours=settings.limits.idempotency_ttl_hours),
        lambda: _write(session, ref, body, actor(principal)),
    )
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else None
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


async def _write(session: SessionDep, ref: ScoreWrite, body: ScoreBatch, who: str) -> tuple[int, dict[str, int]]:
    return 200, {"written": await scores.write_batch(session, ref, body.scores, who)}
