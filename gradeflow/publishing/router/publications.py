"""Publishing results to learners (publishers), and what is published (staff who oversee results)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from fastapi import APIRouter, Response, status

from gradeflow.access.identity import CourseRef, Principal
from gradeflow.anonymity import service as anonymity
from gradeflow.http.deps import (
    Cursor,
    Limit,
    PrincipalDep,
    PublicationRead,
    Publish,
    RecordId,
    RedisDep,
    SessionDep,
    actor,
)
from gradeflow.http.errors import CONFLICT
from gradeflow.http.schemas import PageOut
from gradeflow.publishing.commands import PublicationRequest
from gradeflow.publishing.schemas.publishing import PublicationOut, PublicationSummary
from gradeflow.publishing.service import publishing

router = APIRouter(prefix="/v1/courses/{course}", tags=["publishing"])


async def _shown(
    session: SessionDep, principal: Principal, ref: CourseRef, views: list[publishing.PublicationRow]
) -> list[PublicationOut]:
    """Publications as the caller sees them: one who also marks (anonymity.concealed) gets no skipped result
    of an anonymous assessment (a learner id beside the state of their work there); the counts stay."""
    hidden = await anonymity.hidden_assessments(session, ref.id) if anonymity.concealed(principal, ref) else None
    if hidden:
        views = [replace(v, skipped_detail=[d for d in v.skipped_detail if d.assessment not in hidden]) for v in views]
    return [PublicationOut.model_validate(v, from_attributes=True) for v in views]


@router.post("/publications", status_code=status.HTTP_201_CREATED)
async def create_publication(
    session: SessionDep,
    queue: RedisDep,
    principal: PrincipalDep,
    ref: Publish,
    body: PublicationRequest,
    response: Response,
) -> PublicationOut:
    """Publish (or retract) results: assessments and/or the course grade, for all learners, a list,
    cohorts, groups, or every result not yet published. Only graded (and, with manual marking,
    confirmed) results are published; the answer lists what was skipped and why. With `publish_at`
    in the future the publication is scheduled and the worker runs it then. Needs the publisher role. One who also
    marks an anonymous assessment (grader or moderator, not planner) may not name learners in its audience until
    its anonymity is lifted (403)."""
    hide = anonymity.concealed(principal, ref)
    view = await publishing.create(session, queue, ref, principal, body, actor(principal), hide)
    response.headers["Location"] = f"/v1/courses/{quote(ref.external_id, safe='')}/publications/{view.id}"
    return (await _shown(session, principal, ref, [view]))[0]


@router.get("/publications")
async def list_publications(
    session: SessionDep, principal: PrincipalDep, ref: PublicationRead, limit: Limit = 100, cursor: Cursor = None
) -> PageOut[PublicationOut]:
    """Publications and retractions, most recent first, with their e-mail counts."""
    page = await publishing.list_publications(session, ref, limit, cursor)
    return PageOut(items=await _shown(session, principal, ref, list(page.items)), next_cursor=page.next_cursor)


@router.get("/publications/{publication_id}")
async def get_publication(
    session: SessionDep, principal: PrincipalDep, ref: PublicationRead, publication_id: RecordId
) -> PublicationOut:
    """One publication: what it published, what it skipped and why, e-mails sent and failed (for one who
    also marks an anonymous assessment, without its skipped results while its anonymity holds)."""
    return (await _shown(session, principal, ref, [await publishing.get(session, ref, publication_id)]))[0]


@router.post("/publications/{publication_id}:cancel", responses=CONFLICT)
async def cancel_publication(
    session: SessionDep, principal: PrincipalDep, ref: Publish, publication_id: RecordId
) -> PublicationOut:
    """Cancel a scheduled publication before it runs (409 once it has run: retract instead). A
    publisher limited to some assessments may cancel only publications within them (403)."""
    view = await publishing.cancel(session, ref, principal, publication_id, actor(principal))
    return (await _shown(session, principal, ref, [view]))[0]


@router.get("/publication-summary")
async def publication_summary(session: SessionDep, ref: PublicationRead) -> PublicationSummary:
    """Per assessment and for the course grade: participants, published, and whether every
    participant's result is published."""
    return PublicationSummary.model_validate(await publishing.summary(session, ref), from_attributes=True)
