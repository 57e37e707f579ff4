"""The launch claims helper: what an LMS puts in a tool's id_token for a course (API keys, planners)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from gradeflow.http.deps import CourseWrite, SessionDep, SettingsDep
from gradeflow.lti.router.deps import base_url
from gradeflow.lti.schemas.claims import LaunchClaimsOut
from gradeflow.lti.service import claims

router = APIRouter(prefix="/v1/courses/{course}/lti", tags=["lti"])


@router.get("/claims", response_model_exclude_none=True)
async def launch_claims(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    ref: CourseWrite,
    tool: Annotated[int, Query(ge=1, le=2**63 - 1, description="The tool's id.")],
    resource_link_id: Annotated[str | None, Query(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")] = None,
) -> LaunchClaimsOut:
    """The LTI claims to launch `tool` into the course: the AGS endpoint claim (the tool's AGS scopes, the line item
    container, and with `resource_link_id` the link's line item when it has exactly one), the NRPS claim (the
    course's memberships URL) and the deployment id. A service claim is left out when the tool may not be granted
    its scopes. 404 when the tool is not the organization's or may not reach the course."""
    found = await claims.launch_claims(session, ref, tool, resource_link_id, base_url(request, settings))
    return LaunchClaimsOut.of(found)
