"""Extensions and extra attempts: an assessment's due date and number of attempts for one learner or one group."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from gradeflow.anonymity import service as anonymity
from gradeflow.core.commands import ExternalId
from gradeflow.core.validation import CleanStr
from gradeflow.deadlines.commands import OverrideIn
from gradeflow.deadlines.schemas.overrides import OverrideOut
from gradeflow.deadlines.service import overrides
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
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses/{course}/assessments/{assessment}/overrides", tags=["assessments"])

GroupName = Annotated[CleanStr, Path(min_length=1, max_length=255, description="A group as enrollments name it.")]


@router.get("")
async def list_overrides(
    db: SessionDep,
    principal: PrincipalDep,
    ref: AssessmentRead,
    assessment: ExternalId,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PageOut[OverrideOut]:
    """The assessment's overrides (learners' and groups'), in the order they were made. A learner's own due date
    is the latest due date among the overrides that apply to them (their own and their groups'), else the
    assessment's; their attempts are the assessment's `allowed_attempts` plus the most extra attempts among them.
    Graders and moderators on an anonymous assessment see the groups' overrides only."""
    hide = anonymity.concealed(principal, ref)
    page = await overrides.list_overrides(db, ref, assessment, limit, cursor, hide)
    return PageOut(items=[OverrideOut.model_validate(o) for o in page.items], next_cursor=page.next_cursor)


@router.put("/learners/{learner}")
async def put_learner_override(
    db: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AssessmentWrite,
    assessment: ExternalId,
    learner: ExternalId,
    body: OverrideIn,
) -> OverrideOut:
    """Give a learner their own due date, extra attempts or both (replaces their override; 404 for a learner not
    enrolled). The late policy is applied again to their result at once and their grade follows a moment later;
    automatic releases after the last attempt wait for their date. Audited as `override.set` (old and new)."""
    found = await overrides.put_learner(db, queue, ref, assessment, learner, body, actor(principal))
    return OverrideOut.model_validate(found)


@router.delete("/learners/{learner}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_learner_override(
    db: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AssessmentWrite,
    assessment: ExternalId,
    learner: ExternalId,
) -> None:
    """Remove a learner's own override (404 when they have none); their groups' overrides still apply. Audited as
    `override.removed`."""
    await overrides.delete_learner(db, queue, ref, assessment, learner, actor(principal))


# `:path`: a group's name may hold a slash ("2024/25"), which arrives decoded from its %2F before routing.
@router.put("/groups/{group:path}")
async def put_group_override(
    db: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AssessmentWrite,
    assessment: ExternalId,
    group: GroupName,
    body: OverrideIn,
) -> OverrideOut:
    """Give every learner of a group a due date, extra attempts or both (replaces the group's override; 404 for a
    group no enrollment names). A learner in several groups, or with an override of their own too, gets the latest
    due date and the most extra attempts among them. Audited as `override.set` (old and new, naming the group)."""
    found = await overrides.put_group(db, queue, ref, assessment, group, body, actor(principal))
    return OverrideOut.model_validate(found)


@router.delete("/groups/{group:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group_override(
    db: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AssessmentWrite,
    assessment: ExternalId,
    group: GroupName,
) -> None:
    """Remove a group's override (404 when it has none). Audited as `override.removed`."""
    await overrides.delete_group(db, queue, ref, assessment, group, actor(principal))
