"""A course's late and missing submission policy: read and replace (every result recomputed under it by the worker)."""

from __future__ import annotations

from fastapi import APIRouter

from gradeflow.deadlines.schemas.late import LatePolicyOut
from gradeflow.deadlines.service import late_policies
from gradeflow.grading.late_policy import LatePolicy
from gradeflow.http.deps import PolicyRead, PolicyWrite, PrincipalDep, RedisDep, SessionDep, actor

router = APIRouter(prefix="/v1/courses/{course}/late-policy", tags=["grading policy"])


@router.get("")
async def get_late_policy(session: SessionDep, ref: PolicyRead) -> LatePolicyOut:
    """The course's late policy, with Canvas's field names (everything off, revision 0, until one is set)."""
    return LatePolicyOut.model_validate(await late_policies.get(session, ref))


@router.put("")
async def put_late_policy(
    session: SessionDep, queue: RedisDep, principal: PrincipalDep, ref: PolicyWrite, body: LatePolicy
) -> LatePolicyOut:
    """Replace the course's late policy (fields left out are off or 0, as in a new policy). Every result of the
    course is then recomputed under it by the worker (`application.status` "queued", then "running", then
    "applied"; GET shows it): late results get their deduction (`points_deducted`, `late_status`
    "late"), unsubmitted work past the learner's own due date becomes missing; excused results and entered scores
    are never changed. Audited as `late_policy.updated`, and each changed result as `result.late_policy`. 422 when
    the course grades with the `openedx` preset (Open edX has no late policy) and a deduction or the floor is enabled
    (a PUT that changes nothing is accepted)."""
    return LatePolicyOut.model_validate(await late_policies.put(session, queue, ref, body, actor(principal)))
