"""NRPS 2.0: a course's roster for a tool holding the context membership scope."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from gradeflow.http.deps import SessionDep, SettingsDep
from gradeflow.lti.router.deps import LtiGrant, base_url, lti_course, require
from gradeflow.lti.schemas.nrps import MEMBERSHIP_CONTAINER, MembershipContainerOut
from gradeflow.lti.scopes import Scope
from gradeflow.lti.service import nrps

router = APIRouter(tags=["lti"])

NrpsGrant = Annotated[LtiGrant, require(Scope.NRPS_MEMBERSHIPS)]
Role = Annotated[
    str | None,
    Query(max_length=500, description="A LIS context role: full URI or short name (Learner, Instructor, ...)."),
]
PageSize = Annotated[int, Query(ge=1, le=1000, description="Members per page (at most 1000).")]
MemberCursor = Annotated[
    str | None, Query(max_length=2048, pattern=r"^[0-9a-fA-F]+$", description="From the `next` link of a page.")
]
Rlid = Annotated[
    str | None,
    Query(max_length=255, description="A resource link id: every member of the course is a member of its links."),
]


def _wants_plain_json(accept: str) -> bool:
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "application/json" in types and MEMBERSHIP_CONTAINER not in types


@router.get(
    "/lti/courses/{course}/memberships",
    response_model=MembershipContainerOut,
    responses={200: {"content": {MEMBERSHIP_CONTAINER: {}}}},
)
async def memberships(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    course: str,
    grant: NrpsGrant,
    role: Role = None,
    limit: PageSize = 100,
    cursor: MemberCursor = None,
    rlid: Rlid = None,
) -> JSONResponse:
    """The course's members (NRPS 2.0): learners (`Learner`; Active, or Inactive once unenrolled) and staff with
    their roles as LIS context roles (planner: Instructor; grader: Instructor#TeachingAssistant; moderator:
    Instructor#Grader, both with Instructor; publisher: Manager; viewer: Mentor), `user_id` being the LMS's
    user id. Ordered by user id; `Link: <...>; rel="next"` while more follow (the filters kept). Answered as
    `application/vnd.ims.lti-nrps.v2.membershipcontainer+json`, or `application/json` when only that is accepted.
    404 unless the tool may reach the course."""
    found = await lti_course(session, grant, course)
    page = await nrps.memberships(session, found, grant.organization_id, role, limit, cursor)
    here = f"{base_url(request, settings)}/lti/courses/{quote(course, safe='')}/memberships"
    query = {"role": role, "limit": limit, "rlid": rlid}
    this_page = f"{here}?{urlencode({k: v for k, v in (query | {'cursor': cursor}).items() if v is not None})}"
    headers = {}
    if page.next_cursor is not None:
        following = urlencode({k: v for k, v in (query | {"cursor": page.next_cursor}).items() if v is not None})
        headers["Link"] = f'<{here}?{following}>; rel="next"'
    body = MembershipContainerOut.of(page, this_page).model_dump(exclude_none=True)
    media_type = "application/json" if _wants_plain_json(request.headers.get("accept", "")) else MEMBERSHIP_CONTAINER
    return JSONResponse(body, media_type=media_type, headers=headers)
