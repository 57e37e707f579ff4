"""LTI tool registrations (admin API keys)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from gradeflow.access.service.access import require_key
from gradeflow.http.deps import PrincipalDep, RecordId, SessionDep, SettingsDep, actor
from gradeflow.lti.commands import ToolIn, ToolPatch
from gradeflow.lti.router.deps import base_url
from gradeflow.lti.schemas.tools import ToolOut
from gradeflow.lti.service import tools

router = APIRouter(prefix="/v1/lti/tools", tags=["lti"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_tool(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: ToolIn,
    response: Response,
) -> ToolOut:
    """Register an LTI 1.3 tool: Gradeflow generates its client id and deployment id. Give its public keys inline
    (`jwks`: RSA of 2048 bits or more, or EC P-256 / P-384, each with a `kid`, no private members) or where it
    publishes them (`jwks_url`, fetched now and checked: https, or http to the private networks webhooks may reach).
    `scopes` defaults to all five; `courses` null lets the tool reach every course of the organization. The answer
    holds the `token_url` to give the tool. Audited as `lti_tool.created`."""
    require_key(principal, admin=True)
    tool = await tools.create(session, principal.organization_id, body, settings.webhooks, actor(principal))
    response.headers["Location"] = f"/v1/lti/tools/{tool.id}"
    return ToolOut.of(tool, base_url(request, settings))


@router.get("")
async def list_tools(
    request: Request, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> list[ToolOut]:
    """The organization's tools, in the order they were registered."""
    require_key(principal, admin=True)
    found = await tools.list_tools(session, principal.organization_id)
    return [ToolOut.of(t, base_url(request, settings)) for t in found]


@router.get("/{tool_id}")
async def get_tool(
    request: Request, session: SessionDep, settings: SettingsDep, principal: PrincipalDep, tool_id: RecordId
) -> ToolOut:
    """One tool."""
    require_key(principal, admin=True)
    tool = await tools.get(session, principal.organization_id, tool_id)
    return ToolOut.of(tool, base_url(request, settings))


@router.patch("/{tool_id}")
async def update_tool(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    tool_id: RecordId,
    body: ToolPatch,
) -> ToolOut:
    """Change the fields sent (keys checked as on registration; the same `jwks_url` fetches its keys again).
    Narrower scopes or courses apply to access tokens already issued within a second. Audited as
    `lti_tool.updated` with the old and new values of the changed fields."""
    require_key(principal, admin=True)
    tool = await tools.update(session, principal.organization_id, tool_id, body, settings.webhooks, actor(principal))
    return ToolOut.of(tool, base_url(request, settings))


@router.delete("/{tool_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tool(session: SessionDep, principal: PrincipalDep, tool_id: RecordId) -> None:
    """Remove a tool: its access tokens stop working within a second; the line items it created are line items no
    more (their assessments and scores stay). Audited as `lti_tool.deleted`."""
    require_key(principal, admin=True)
    await tools.delete(session, principal.organization_id, tool_id, actor(principal))
