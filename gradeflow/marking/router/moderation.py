"""Moderation: the sample planners pick, moderators' decisions on it, and scalings of graders' marks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from gradeflow.access.identity import CourseRef
from gradeflow.access.service import access
from gradeflow.access.service.access import Action
from gradeflow.access.service.auth import Principal
from gradeflow.anonymity import service as anonymity
from gradeflow.core.commands import ExternalId
from gradeflow.core.errors import Forbidden
from gradeflow.core.statuses import SampleStatus
from gradeflow.http.deps import Cursor, Limit, PrincipalDep, SessionDep, actor
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.marking.commands import ModerationAdjustment, ModerationAgreement, ModerationSampleRequest, ScalingIn
from gradeflow.marking.schemas.moderation import ModerationOut, SampleAdded, SampleOut, ScalingResult
from gradeflow.marking.service import moderation

router = APIRouter(prefix="/v1/courses/{course}/assessments/{assessment}/moderation", tags=["moderation"])


async def _sampling(course: str, session: SessionDep, principal: PrincipalDep) -> CourseRef:
    return await access.course_access(session, principal, course, Action.MODERATION_SAMPLE)


async def _moderating(course: str, session: SessionDep, principal: PrincipalDep) -> CourseRef:
    return await access.course_access(session, principal, course, Action.MODERATE)


Sampling = Annotated[CourseRef, Depends(_sampling)]
Moderating = Annotated[CourseRef, Depends(_moderating)]
ModeratorParam = Annotated[
    ExternalId | None, Query(description="For API keys: the moderator acted for (default: the key itself).")
]


def _moderator(principal: Principal, given: str | None) -> str:
    """Who decides: a user as themselves; an API key for the moderator it names, or as itself."""
    if principal.is_key:
        return given or actor(principal)
    if given is not None and given != principal.subject:
        raise Forbidden("You can only act as yourself.")
    return principal.subject


@router.post("/sample")
async def sample(
    session: SessionDep, principal: PrincipalDep, ref: Sampling, assessment: ExternalId, body: ModerationSampleRequest
) -> SampleAdded:
    """Add to the moderation sample (planners): the listed learners' marked attempts and/or `percent` of
    each grader's marked attempts (an attempt is its first marker's), rounded up and at least one per
    grader, picked at random; attempts already sampled count towards the percentage and nothing leaves
    the sample. Answers the moderation status. Audited as `moderation.sampled`."""
    return SampleAdded.model_validate(await moderation.sample(session, ref, assessment, body, actor(principal)))


@router.get("")
async def get_status(session: SessionDep, ref: Moderating, assessment: ExternalId) -> ModerationOut:
    """The assessment's moderation status (not_required, not_started, in_progress, complete), the counts
    per grader (marked, sampled, pending, agreed, adjusted) and the scalings of graders' marks. Only
    graders' marks are moderated: work scored without marks (imported, PUT) is outside the sample, and
    an assessment none of whose work is marked is not_required even when moderation is required."""
    return ModerationOut.model_validate(await moderation.status(session, ref, assessment))


@router.get("/samples")
async def list_samples(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Moderating,
    assessment: ExternalId,
    state: Annotated[SampleStatus | None, Query(alias="status", description="Only samples with this status.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PageOut[SampleOut]:
    """The sampled attempts in the order they were picked: per manual item every grader's mark as given,
    the moderator's mark and the item's score; the decision. A moderator sees candidate labels, not
    learners, on an anonymous assessment."""
    page = await moderation.list_samples(
        session, ref, assessment, anonymity.concealed(principal, ref), limit, cursor, state
    )
    return PageOut(items=[SampleOut.model_validate(s) for s in page.items], next_cursor=page.next_cursor)


@router.post("/samples/{learner}:agree", responses=CONFLICT)
async def agree(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Moderating,
    assessment: ExternalId,
    learner: ExternalId,
    body: ModerationAgreement,
    moderator: ModeratorParam = None,
) -> SampleOut:
    """Agree with the graders' marks of a sampled attempt (the learner, or their candidate label on an
    anonymous assessment): they stand, and an earlier adjustment of it is withdrawn (an item whose graders'
    marks give no score yet has none again); a planner's override of an item stands. A grader who later
    changes a mark of the attempt sends it back to pending. Nobody moderates an attempt they marked (403).
    Audited as `moderation.agreed` (and each changed score as `item_score.set` or `item_score.removed`)."""
    return SampleOut.model_validate(
        await moderation.agree(
            session,
            ref,
            assessment,
            learner,
            anonymity.concealed(principal, ref),
            body,
            _moderator(principal, moderator),
        )
    )


@router.post("/samples/{learner}:adjust", responses=CONFLICT)
async def adjust(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Moderating,
    assessment: ExternalId,
    learner: ExternalId,
    body: ModerationAdjustment,
    moderator: ModeratorParam = None,
) -> SampleOut:
    """Adjust a sampled attempt: the moderator's marks for the listed manual items are kept beside the
    graders' own (which stay as given) and become the items' scores, replacing a planner's override of
    those items; totals, grades and confirmation follow as for any score change. A grader who later
    changes a mark of the attempt sends it back to pending (the moderator's marks stay and still decide).
    Only items a grader marked are moderated (422 otherwise); nobody
    moderates an attempt they marked (403). Audited as
    `moderation.adjusted` (and each changed score as `item_score.set`)."""
    return SampleOut.model_validate(
        await moderation.adjust(
            session,
            ref,
            assessment,
            learner,
            anonymity.concealed(principal, ref),
            body,
            _moderator(principal, moderator),
        )
    )


@router.put("/scalings/{grader}", responses=CONFLICT)
async def put_scaling(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Moderating,
    assessment: ExternalId,
    grader: ExternalId,
    body: ScalingIn,
    moderator: ModeratorParam = None,
) -> ScalingResult:
    """Scale a grader's marks on the assessment: wherever their marks decide an item's score they count
    times `factor`, capped at the item's points (6 decimals); the marks stay as given (whether markers
    disagree enough to need a third marker is judged on them), a moderator's mark still decides, an
    overridden score stands. Scores follow at once. 404 when the grader marked nothing
    here. Audited as `moderation.scaled`."""
    return ScalingResult.model_validate(
        await moderation.scale(session, ref, assessment, grader, body, _moderator(principal, moderator))
    )


@router.delete("/scalings/{grader}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
async def delete_scaling(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Moderating,
    assessment: ExternalId,
    grader: ExternalId,
    moderator: ModeratorParam = None,
) -> None:
    """Take a grader's scaling away: their marks count as given again and scores follow. Audited as
    `moderation.unscaled`."""
    await moderation.unscale(session, ref, assessment, grader, _moderator(principal, moderator))
