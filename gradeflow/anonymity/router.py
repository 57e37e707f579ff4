"""Anonymous marking: lifting anonymity (graders see identities from then on)."""

from __future__ import annotations

from fastapi import APIRouter

from gradeflow.anonymity import service as anonymity
from gradeflow.anonymity.schemas import AnonymityOut
from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import AssessmentWrite, PrincipalDep, SessionDep, actor
from gradeflow.http.errors import CONFLICT

router = APIRouter(prefix="/v1/courses/{course}/assessments/{assessment}", tags=["marking"])


@router.post("/anonymity:lift", responses=CONFLICT)
async def lift_anonymity(
    session: SessionDep, principal: PrincipalDep, ref: AssessmentWrite, assessment: ExternalId
) -> AnonymityOut:
    """Lift anonymity on an anonymous assessment (planners and API keys): from now on graders and
    moderators see learners' ids where they saw candidate labels (`candidate-4821`), and address work
    by learner id. Final, and idempotent: lifting again answers the first lift. 409 when the assessment
    is not anonymous. Audited as `assessment.anonymity_lifted`."""
    return AnonymityOut.model_validate(await anonymity.lift(session, ref, assessment, actor(principal)))
