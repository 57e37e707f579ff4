"""A learner's own view: their published results, with their own user token."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import PrincipalDep, SessionDep
from services.api.schemas.publishing import MyResults
from shared.services import publishing
from shared.services.inputs import ExternalId

router = APIRouter(prefix="/v1/me", tags=["learners"])


@router.get("/courses/{course}/results")
async def my_results(session: SessionDep, principal: PrincipalDep, course: ExternalId) -> MyResults:
    """Your published results in a course (user token whose `sub` is your enrollment's external id):
    each result as it was published with the feedback written for you (item detail and item feedback
    only where they were published), and your course grade once it is published. Nothing
    unpublished, nothing of anyone else, never the markers' own marks or comments."""
    return MyResults.model_validate(await publishing.my_results(session, principal, course))
