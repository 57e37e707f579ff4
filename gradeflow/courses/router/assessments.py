"""Assessments with their items, in course order."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response, status

from gradeflow.core.commands import ExternalId
from gradeflow.courses.commands import AssessmentCreate, AssessmentFields, MarkingSettings, ReleaseSettings
from gradeflow.courses.schemas.records import AssessmentOut, ItemOut
from gradeflow.courses.service import assessments
from gradeflow.courses.service.assessments import AssessmentView
from gradeflow.http.deps import (
    AssessmentRead,
    AssessmentWrite,
    Cursor,
    Limit,
    PrincipalDep,
    RedisDep,
    SessionDep,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses/{course}/assessments", tags=["assessments"])


def _out(view: AssessmentView) -> AssessmentOut:
    a = view.assessment
    return AssessmentOut(
        external_id=a.external_id,
        title=a.title,
        category=a.category,
        points_possible=a.points_possible,
        position=a.position,
        due_at=a.due_at,
        items=[ItemOut.model_validate(i) for i in view.items],
        marking=MarkingSettings.model_validate(a.marking or {}),
        release=ReleaseSettings.model_validate(a.release or {}),
        initial_assessment=view.initial_assessment,
        allowed_attempts=a.allowed_attempts,
        anonymous=a.anonymous,
        anonymity_lifted_at=a.anonymity_lifted_at,
        moderation_required=a.moderation_required,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_assessment(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AssessmentWrite,
    body: AssessmentCreate,
    response: Response,
) -> AssessmentOut:
    """Create an assessment, with its items if it has any (points possible then come from the items).
    Items may carry skills (`[{"skill": ..., "weight": 1}]`) for the skills file. Audited (`assessment.created`)."""
    view = await assessments.create_assessment(session, queue, ref, body, actor(principal))
    response.headers["Location"] = (
        f"/v1/courses/{quote(ref.external_id, safe='')}/assessments/{quote(body.external_id, safe='')}"
    )
    return _out(view)


@router.get("")
async def list_assessments(
    session: SessionDep, ref: AssessmentRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[AssessmentOut]:
    """The course's assessments in course order."""
    page = await assessments.list_assessments(session, ref, limit, cursor)
    return PageOut(items=[_out(v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/{assessment}")
async def get_assessment(session: SessionDep, ref: AssessmentRead, assessment: ExternalId) -> AssessmentOut:
    """One assessment with its items."""
    return _out(await assessments.get_assessment(session, ref, assessment))


@router.patch("/{assessment}")
async def update_assessment(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AssessmentWrite,
    assessment: ExternalId,
    body: AssessmentFields,
) -> AssessmentOut:
    """Change an assessment. Items are upserted by external id; a change of an item's points or
    marking increases its revision, and scores given under an older revision show as stale. An item's
    `skills`, when given, replace its skills (no revision change: scores stand); omitted, they are kept.
    `initial_assessment` makes it a final test compared with that initial test in progression reports
    (null unlinks; 422 for an unknown assessment, itself, or a loop).
    Audited (`assessment.updated`, the fields that changed with their old and new values)."""
    return _out(await assessments.update_assessment(session, queue, ref, assessment, body, actor(principal)))
