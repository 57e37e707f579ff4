"""The audit trail: a course's (planners and API keys) and the organization's own (admin keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from gradeflow.access.service.access import require_key
from gradeflow.access.service.auth import Principal
from gradeflow.audit import service as audit
from gradeflow.audit.schemas import AuditEntryOut
from gradeflow.core.commands import Moment
from gradeflow.core.validation import CleanStr
from gradeflow.http.deps import AuditRead, Cursor, Limit, PrincipalDep, SessionDep, SessionFactoryDep
from gradeflow.http.schemas import PageOut
from gradeflow.http.streaming import primed

router = APIRouter(tags=["audit"])

Text = Annotated[CleanStr | None, Query(max_length=255)]
When = Annotated[Moment | None, Query()]


@dataclass
class AuditFilters:
    """Which entries: by learner, assessment, actor, action, and time range [since, until)."""

    learner: Text = None
    assessment: Text = None
    actor: Text = None
    action: Text = None
    since: When = None
    until: When = None

    def wanted(self) -> audit.Filters:
        return audit.Filters(**asdict(self))


Filters = Annotated[AuditFilters, Depends()]
CSV: dict[int | str, dict[str, object]] = {200: {"content": {"text/csv": {}}}}


def _csv(rows: AsyncIterator[str], name: str) -> StreamingResponse:
    return StreamingResponse(
        rows,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/v1/courses/{course}/audit")
async def list_audit(
    session: SessionDep, ref: AuditRead, filters: Filters, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[AuditEntryOut]:
    """Every change in the course, oldest first: who, when, what, the old and the new value, and
    the request id. Filter by learner, assessment, actor, action and time range."""
    page = await audit.list_entries(session, audit.course_scope(ref), limit, cursor, filters.wanted())
    return PageOut(
        items=[AuditEntryOut.model_validate(e, from_attributes=True) for e in page.items], next_cursor=page.next_cursor
    )


@router.get("/v1/courses/{course}/audit.csv", response_class=StreamingResponse, responses=CSV)
async def export_audit(sessions: SessionFactoryDep, ref: AuditRead, filters: Filters) -> StreamingResponse:
    """The same entries as a CSV file, streamed."""
    return _csv(await primed(audit.export_csv(sessions, audit.course_scope(ref), filters.wanted())), "audit.csv")


def _organization(principal: Principal) -> audit.Scope:
    require_key(principal, admin=True)
    return audit.Scope(principal.organization_id, None)


@router.get("/v1/audit")
async def list_organization_audit(
    session: SessionDep, principal: PrincipalDep, filters: Filters, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[AuditEntryOut]:
    """The organization's own changes (admin keys), oldest first: API keys, user token keys and
    webhook endpoints - who, when, what, old and new value (never a secret). Course changes are in
    each course's audit."""
    page = await audit.list_entries(session, _organization(principal), limit, cursor, filters.wanted())
    return PageOut(
        items=[AuditEntryOut.model_validate(e, from_attributes=True) for e in page.items], next_cursor=page.next_cursor
    )


@router.get("/v1/audit.csv", response_class=StreamingResponse, responses=CSV)
async def export_organization_audit(
    sessions: SessionFactoryDep, principal: PrincipalDep, filters: Filters
) -> StreamingResponse:
    """The organization's own entries as a CSV file, streamed."""
    scope = _organization(principal)
    return _csv(await primed(audit.export_csv(sessions, scope, filters.wanted())), "organization-audit.csv")
