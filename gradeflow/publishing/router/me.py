"""A learner's own view: their published results, with their own user token."""

from __future__ import annotations

from fastapi import APIRouter

from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import PrincipalDep, SessionDep
from gradeflow.publishing.schemas.publishing import MyResults
from gradeflow.publishing.schemas.reviews import MyReview
from gradeflow.publishing.service import publishing, reviews

router = APIRouter(prefix="/v1/me", tags=["learners"])


@router.get("/courses/{course}/results")
async def my_results(session: SessionDep, principal: PrincipalDep, course: ExternalId) -> MyResults:
    """Your published results in a course (user token whose `sub` is your enrollment's external id):
    each result as it was published with the feedback written for you (item detail and item feedback
    only where they were published), and your course grade once it is published. Nothing
    unpublished, nothing of anyone else, never the markers' own marks or comments. `review_sessions`
    lists your review sessions open now or still to come."""
    return MyResults.model_validate(await publishing.my_results(session, principal, course), from_attributes=True)


@router.get("/courses/{course}/assessments/{assessment}/review")
async def my_review(
    session: SessionDep, principal: PrincipalDep, course: ExternalId, assessment: ExternalId
) -> MyReview:
    """Review your published result of an assessment while a review session that includes you is open
    (from its `starts_at`, included, to its `ends_at`, excluded): the result as published, your item
    scores and the feedback written for you (never the markers' marks or comments). Outside every
    window: 403 with `next_opens_at`, when the next session that includes you opens; 404 when none
    is to come (or you have no published result of it)."""
    return MyReview.model_validate(
        await reviews.my_review(session, principal, course, assessment), from_attributes=True
    )
