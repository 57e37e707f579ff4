"""Candidate review sessions: windows in which learners review their published result of an assessment.

Scheduling takes the publishing permission (publishers and API keys): a review shows learners item
scores and item feedback that a publication without items kept from them, so it is a release decision,
made by those who release results; a publisher limited to some assessments schedules reviews of those
only. Those who oversee results (planners, viewers, publishers) read the schedule.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response, status

from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import Cursor, Limit, PrincipalDep, PublicationRead, Publish, SessionDep, actor
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.publishing.commands import ReviewSessionIn, ReviewSessionPatch
from gradeflow.publishing.schemas.reviews import ReviewSessionOut
from gradeflow.publishing.service import reviews

router = APIRouter(prefix="/v1/courses/{course}/assessments/{assessment}/review-sessions", tags=["publishing"])


@router.get("")
async def list_review_sessions(
    session: SessionDep, ref: PublicationRead, assessment: ExternalId, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[ReviewSessionOut]:
    """The assessment's review sessions in the order they open, each with its state (scheduled, open,
    ended) and how many learners it includes now (in its audience, with a published result)."""
    page = await reviews.list_sessions(session, ref, assessment, limit, cursor)
    return PageOut(
        items=[ReviewSessionOut.model_validate(r, from_attributes=True) for r in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_review_session(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Publish,
    assessment: ExternalId,
    body: ReviewSessionIn,
    response: Response,
) -> ReviewSessionOut:
    """Schedule a review session: from `starts_at` (included) to `ends_at` (excluded) the learners of
    the audience who have a published result of the assessment see it with their item scores and
    item feedback (`GET /v1/me/courses/{course}/assessments/{assessment}/review`). An empty audience
    is every learner with a published result; a learner named must be enrolled (422 naming them).
    409 when the external id is taken for this assessment. Audited as `review_session.created`."""
    view = await reviews.create(session, ref, principal, assessment, body, actor(principal))
    c, a, r = (quote(x, safe="") for x in (ref.external_id, assessment, view.external_id))
    response.headers["Location"] = f"/v1/courses/{c}/assessments/{a}/review-sessions/{r}"
    return ReviewSessionOut.model_validate(view, from_attributes=True)


@router.get("/{review}")
async def get_review_session(
    session: SessionDep, ref: PublicationRead, assessment: ExternalId, review: ExternalId
) -> ReviewSessionOut:
    """One review session."""
    return ReviewSessionOut.model_validate(await reviews.get(session, ref, assessment, review), from_attributes=True)


@router.patch("/{review}")
async def update_review_session(
    session: SessionDep,
    principal: PrincipalDep,
    ref: Publish,
    assessment: ExternalId,
    review: ExternalId,
    body: ReviewSessionPatch,
) -> ReviewSessionOut:
    """Change a review session's title, window or audience (the audience is replaced as a whole); the
    change applies at once, to an open window too. Audited as `review_session.updated`."""
    view = await reviews.update(session, ref, principal, assessment, review, body, actor(principal))
    return ReviewSessionOut.model_validate(view, from_attributes=True)


@router.delete("/{review}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_review_session(
    session: SessionDep, principal: PrincipalDep, ref: Publish, assessment: ExternalId, review: ExternalId
) -> None:
    """Cancel a review session (an open one closes at once). Audited as `review_session.deleted`."""
    await reviews.delete(session, ref, principal, assessment, review, actor(principal))
