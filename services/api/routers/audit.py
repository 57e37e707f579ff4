"""The course's audit trail (planners and API keys)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from services.api.deps import AuditRead, Cursor, Limit, SessionDep, SessionFactoryDep
from services.api.schemas.audit import AuditEntryOut
from services.api.schemas.common import PageOut
from services.api.streaming import primed
from shared.services import audit
from shared.validation import CleanStr

router = APIRouter(prefix="/v1/courses/{course}", tags=["audit"])

Text = Annotated[CleanStr | None, Query(max_length=255)]
When = Annotated[AwareDatetime | None, Query()]


@dataclass
class AuditFilters:
    """Which entries: by learner, assessment, actor, action, and time range [since, until)."""

    learner: Text = None
    assessment: Text = None
    actor: Text = None
    action: Text = None
    since: When = None
    until: When = None


Filters = Annotated[AuditFilters, Depends()]


@router.get("/audit")
async def list_audit(
    session: SessionDep, ref: AuditRead, filters: Filters, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[AuditEntryOut]:
    """Every change in the course, oldest first: who, when, what, the old and the new value, and
    the request id. Filter by learner, assessment, actor, action and time range."""
    page = await audit.list_entries(session, ref, limit, cursor, **asdict(filters))
    return PageOut(items=[AuditEntryOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/audit.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def export_audit(sessions: SessionFactoryDep, ref: AuditRead, filters: Filters) -> StreamingResponse:
    """The same entries as a CSV file, streamed."""
    rows = await primed(audit.export_csv(sessions, ref, **asdict(filters)))
    return StreamingResponse(
        rows, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'}
    )
