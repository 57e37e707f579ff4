"""A course's grading policy: read, change (versioned, If-Match), history, what-if preview."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from gradeflow.core.errors import ValidationFailed
from gradeflow.grades.schemas import PolicyOut, PolicyVersionOut, PreviewOut
from gradeflow.grades.service import policies
from gradeflow.grading.policy import PolicyRules
from gradeflow.http.deps import Cursor, Limit, PolicyRead, PolicyWrite, PrincipalDep, RedisDep, SessionDep, actor
from gradeflow.http.errors import PRECONDITION
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/courses/{course}/policy", tags=["grading policy"])


def _etag(version: int) -> str:
    return f'"v{version}"'


def _version_from(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"').removeprefix("v")
    if not value.isdigit():
        raise ValidationFailed.one("If-Match", 'Send the ETag of the version you edited, such as "v3".', "header")
    return int(value)


@router.get("")
async def get_policy(session: SessionDep, ref: PolicyRead, response: Response) -> PolicyOut:
    """The active policy (ETag = its version), which version's grades are served, and the latest
    recompute's progress."""
    policy = await policies.get_policy(session, ref)
    response.headers["ETag"] = _etag(policy.version)
    return PolicyOut.model_validate(policy)


@router.put("", responses=PRECONDITION)
async def put_policy(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: PolicyWrite,
    body: PolicyRules,
    response: Response,
    if_match: Annotated[str | None, Header(description='ETag of the version edited ("v3"); stale is 412.')] = None,
) -> PolicyOut:
    """Store a new version of the policy. The course's grades are recomputed in the worker; until
    that finishes the previous version's grades are served, then all switch at once."""
    policy = await policies.put_policy(session, queue, ref, body, _version_from(if_match), actor(principal))
    response.headers["ETag"] = _etag(policy.version)
    return PolicyOut.model_validate(policy)


@router.get("/versions")
async def list_versions(
    session: SessionDep, ref: PolicyRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[PolicyVersionOut]:
    """Every version of the course's policy, newest first."""
    page = await policies.list_versions(session, ref, limit, cursor)
    return PageOut(items=[PolicyVersionOut.model_validate(v) for v in page.items], next_cursor=page.next_cursor)


@router.post(":preview")
async def preview(session: SessionDep, ref: PolicyWrite, body: PolicyRules) -> PreviewOut:
    """Apply a draft policy to the course's real scores without saving it: the grade distribution
    before and after, and the learners whose final letter changes."""
    return PreviewOut.model_validate(await policies.preview(session, ref, body))
