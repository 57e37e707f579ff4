"""Planners expose existing assessments to the course's LTI tools as AGS line items (and see every line item)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from gradeflow.core.commands import ExternalId
from gradeflow.core.paging import encode_cursor, last_id_after
from gradeflow.http.deps import AssessmentWrite, Cursor, Limit, PrincipalDep, RedisDep, SessionDep, SettingsDep, actor
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.lti.router.deps import base_url
from gradeflow.lti.schemas.ags import ExposeBody, StaffLineItemOut
from gradeflow.lti.service import line_items
from gradeflow.lti.service.line_items import LineItemFilters

router = APIRouter(prefix="/v1/courses/{course}/lti/line-items", tags=["lti"])


def _url(request: Request, settings: SettingsDep, course: str, line_item_id: int) -> str:
    return f"{base_url(request, settings)}/lti/courses/{quote(course, safe='')}/lineitems/{line_item_id}"


@router.get("")
async def list_line_items(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    ref: AssessmentWrite,
    course: str,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> PageOut[StaffLineItemOut]:
    """Every line item of the course: those tools created and the assessments exposed to every tool."""
    rows, next_after = await line_items.page(session, ref, None, LineItemFilters(), last_id_after(cursor), limit)
    return PageOut(
        items=[StaffLineItemOut.of(r, _url(request, settings, course, r.id)) for r in rows],
        next_cursor=None if next_after is None else encode_cursor(next_after),
    )


@router.put("/{assessment}", responses=CONFLICT)
async def expose(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: AssessmentWrite,
    course: str,
    assessment: ExternalId,
    body: ExposeBody,
) -> StaffLineItemOut:
    """Expose an assessment to every tool that may reach the course as a line item (idempotent; again, it sets
    the line item's fields; a label renames the assessment). Audited (`line_item.exposed`). 409 for a line item
    a tool created."""
    row = await line_items.expose(session, queue, ref, assessment, body.command(), actor(principal))
    return StaffLineItemOut.of(row, _url(request, settings, course, row.id))


@router.delete("/{assessment}", status_code=204, responses=CONFLICT)
async def unexpose(
    session: SessionDep, principal: PrincipalDep, ref: AssessmentWrite, assessment: ExternalId
) -> Response:
    """Tools no longer see the assessment; it and its scores stay. Audited (`line_item.unexposed`)."""
    await line_items.unexpose(session, ref, assessment, actor(principal))
    return Response(status_code=204)
