"""Feedback to learners: written by planners and by graders on their allocated work, published
with the result (never the markers' marks or comments)."""

from __future__ import annotations

from fastapi import APIRouter

from gradeflow.anonymity import service as anonymity
from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import MarkScope, MarkWrite, PrincipalDep, ResultScope, ScoreRead, SessionDep, actor
from gradeflow.scores.commands import FeedbackIn
from gradeflow.scores.schemas.feedback import FeedbackOut
from gradeflow.scores.service import feedback

router = APIRouter(prefix="/v1/courses/{course}/assessments/{assessment}/feedback", tags=["marking"])


@router.get("/{learner}")
async def get_feedback(
    session: SessionDep,
    principal: PrincipalDep,
    ref: ScoreRead,
    scope: ResultScope,
    assessment: ExternalId,
    learner: ExternalId,
) -> FeedbackOut:
    """The feedback on a learner's attempt, on the assessment and on its items, as it stands now
    (learners see what was published). Graders see it on work allocated to them (by candidate label
    on an anonymous assessment)."""
    hide = anonymity.concealed(principal, ref)
    return FeedbackOut.model_validate(await feedback.get(session, ref, assessment, learner, scope, hide))


@router.put("/{learner}")
async def put_feedback(
    session: SessionDep,
    principal: PrincipalDep,
    ref: MarkWrite,
    scope: MarkScope,
    assessment: ExternalId,
    learner: ExternalId,
    body: FeedbackIn,
) -> FeedbackOut:
    """Set the feedback on a learner's attempt as a whole (`text: null` removes it). Planners on
    every attempt, graders on attempts allocated to them (or their workgroups). The learner sees it
    when the result is next published; a change after publication shows as `publication.state:
    changed`. Audited as `feedback.set`."""
    view = await feedback.put(session, ref, principal, scope, assessment, learner, None, body, actor(principal))
    return FeedbackOut.model_validate(view)


@router.put("/{learner}/{item}")
async def put_item_feedback(
    session: SessionDep,
    principal: PrincipalDep,
    ref: MarkWrite,
    scope: MarkScope,
    assessment: ExternalId,
    learner: ExternalId,
    item: ExternalId,
    body: FeedbackIn,
) -> FeedbackOut:
    """Set the feedback on one item of a learner's attempt (`text: null` removes it): published
    with item detail (`show: with_items`). Same writers and audit as the assessment's feedback."""
    view = await feedback.put(session, ref, principal, scope, assessment, learner, item, body, actor(principal))
    return FeedbackOut.model_validate(view)
