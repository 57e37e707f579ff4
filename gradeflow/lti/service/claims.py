"""The LTI Advantage claims an LMS puts in the id_token when it launches a tool into a course: where the tool's
line items (AGS) and the course's roster (NRPS) are, for the scopes the tool may be granted."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from gradeflow.access.identity import CourseRef
from gradeflow.core.errors import NotFound
from gradeflow.lti.repository import ags
from gradeflow.lti.repository import tools as repository
from gradeflow.lti.scopes import ALL_SCOPES, Scope

_AGS_SCOPES = (Scope.AGS_LINEITEM, Scope.AGS_LINEITEM_READONLY, Scope.AGS_RESULT_READONLY, Scope.AGS_SCORE)


@dataclass(frozen=True, slots=True)
class AgsEndpoint:
    scope: list[str]
    lineitems: str
    lineitem: str | None


@dataclass(frozen=True, slots=True)
class NamesRoleService:
    context_memberships_url: str
    service_versions: list[str]


@dataclass(frozen=True, slots=True)
class LaunchClaims:
    deployment_id: str
    ags: AgsEndpoint | None  # None: the tool may not be granted any AGS scope
    nrps: NamesRoleService | None  # None: nor the NRPS scope


async def launch_claims(
    session: AsyncSession, ref: CourseRef, tool_id: int, resource_link_id: str | None, base_url: str
) -> LaunchClaims:
    """The claims for launching the tool into the course (404 unless the tool is the organization's and may reach
    the course); with a resource link, `lineitem` is the link's one line item the tool sees, if it has exactly one."""
    tool = await repository.tool(session, ref.organization_id, tool_id)
    if tool is None or (tool.courses is not None and ref.external_id not in tool.courses):
        raise NotFound(f"LTI tool {tool_id} not found for course {ref.external_id!r}.")
    course_url = f"{base_url}/lti/courses/{quote(ref.external_id, safe='')}"
    ags_scopes = [str(s) for s in ALL_SCOPES if s in _AGS_SCOPES and s in tool.scopes]
    endpoint = None
    if ags_scopes:
        lineitem = None
        if resource_link_id is not None:
            filters = ags.LineItemFilters(resource_link_id=resource_link_id)
            linked = await ags.line_items_page(session, ref.id, tool.id, filters, 0, 2)
            if len(linked) == 1:
                lineitem = f"{course_url}/lineitems/{linked[0].id}"
        endpoint = AgsEndpoint(ags_scopes, f"{course_url}/lineitems", lineitem)
    roster = None
    if Scope.NRPS_MEMBERSHIPS in tool.scopes:
        roster = NamesRoleService(f"{course_url}/memberships", ["2.0"])
    return LaunchClaims(tool.deployment_id, endpoint, roster)
