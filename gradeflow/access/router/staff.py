"""The organization's staff directory: usernames and names beside user ids (admin keys)."""

from __future__ import annotations

from fastapi import APIRouter

from gradeflow.access.schemas.staff import StaffIn, StaffOut
from gradeflow.access.service import staff
from gradeflow.access.service.access import require_key
from gradeflow.core.commands import ExternalId
from gradeflow.http.deps import Cursor, Limit, PrincipalDep, SessionDep, actor
from gradeflow.http.schemas import PageOut

router = APIRouter(prefix="/v1/staff", tags=["organization"])


@router.get("")
async def list_staff(
    session: SessionDep, principal: PrincipalDep, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[StaffOut]:
    """The staff directory, oldest entry first: each staff user's id with the username and name
    reports print beside it. Entries come from user tokens (`preferred_username`, `name` claims of
    a course member, updated when they change) and from `PUT /v1/staff/{user}`."""
    require_key(principal, admin=True)
    page = await staff.list_entries(session, principal.organization_id, limit, cursor)
    return PageOut(items=[StaffOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor)


@router.put("/{user}")
async def put_staff(session: SessionDep, principal: PrincipalDep, user: ExternalId, body: StaffIn) -> StaffOut:
    """Set a user's username and name, for LMSs whose tokens carry no names (both are replaced; a
    later token that names the user differently updates them again). Audited as `staff.updated`."""
    require_key(principal, admin=True)
    entry = await staff.put(
        session, principal.organization_id, user, staff.Names(body.username, body.name), actor(principal)
    )
    return StaffOut.model_validate(entry)
